"""PDEBench and The Well files open through PDEDataset with the neuralops sample dict."""

import h5py
import numpy as np
import pytest

from neuralops.data import PDEDataset
from neuralops.data.errors import DataFileError
from neuralops.data.foreign import PDEBenchSource, WellSource
from neuralops.data.timewindow import TimeWindow
from neuralops.models import FNO, FNOConfig
from neuralops.train import TrainConfig, Trainer

RNG = np.random.default_rng(0)


def _darcy(path, n=10, s=16):
    nu, u = RNG.random((n, s, s)).astype(np.float32), RNG.random((n, 1, s, s)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["nu"], f["tensor"] = nu, u
        f["x-coordinate"] = np.linspace(0, 1, s)
        f["y-coordinate"] = np.linspace(0, 1, s)
    return nu, u


def test_pdebench_darcy_values_and_a_training_step(tmp_path):
    nu, u = _darcy(tmp_path / "darcy.hdf5")
    ds = PDEDataset(tmp_path / "darcy.hdf5", "train")
    assert isinstance(ds.source, PDEBenchSource) and len(ds) == 9  # last 10 % is the test split
    s = ds[3]
    np.testing.assert_array_equal(s["input"].numpy(), nu[3][None])
    np.testing.assert_array_equal(s["target"].numpy(), u[3])
    assert len(PDEDataset(tmp_path / "darcy.hdf5", "test")) == 1
    model = FNO(FNOConfig(modes=(4, 4), width=8, lifting_channels=8, projection_channels=8))
    cfg = TrainConfig(max_steps=2, batch_size=4, out_dir=str(tmp_path / "run"))
    result = Trainer(model, cfg, train_data=ds, normalizer=ds.normalizer("gaussian")).fit(
        resume=None
    )
    assert result["step"] == 2


def test_pdebench_1d_time_series(tmp_path):
    u = RNG.random((5, 11, 32)).astype(np.float32)  # (N, T, X), as 1D_Burgers_Sols_Nu*.hdf5
    with h5py.File(tmp_path / "burgers.hdf5", "w") as f:
        f["tensor"] = u
        f["t-coordinate"] = np.linspace(0, 2, 12)  # PDEBench stores T + 1 times
        f["x-coordinate"] = np.linspace(0, 1, 32)
    traj = PDEDataset(tmp_path / "burgers.hdf5", "all", time="trajectory")
    np.testing.assert_array_equal(traj[2]["input"][:, 0].numpy(), u[2])
    np.testing.assert_allclose(traj[2]["time"].numpy(), np.linspace(0, 2, 12)[:11], rtol=1e-6)
    win = PDEDataset(tmp_path / "burgers.hdf5", "all", time=TimeWindow(n_in=2, n_out=1))
    w = win[0]
    np.testing.assert_array_equal(w["input"][:, 0].numpy(), u[0, :2])
    np.testing.assert_array_equal(w["target"][:, 0].numpy(), u[0, 2:3])
    sub = PDEDataset(tmp_path / "burgers.hdf5", "all", time="trajectory", subsample=2)
    np.testing.assert_array_equal(sub[1]["input"][:, 0].numpy(), u[1][:, ::2])


def test_pdebench_cfd_quantities_become_channels(tmp_path):
    q = {
        k: RNG.random((4, 3, 8, 8)).astype(np.float32) for k in ("density", "pressure", "Vx", "Vy")
    }
    with h5py.File(tmp_path / "cfd.hdf5", "w") as f:
        for k, v in q.items():
            f[k] = v
    s = PDEDataset(tmp_path / "cfd.hdf5", "all", time="trajectory")[1]
    assert s["input"].shape == (3, 4, 8, 8)
    names = PDEDataset(tmp_path / "cfd.hdf5", "all").source.fields
    for c, name in enumerate(names):
        np.testing.assert_array_equal(s["input"][:, c].numpy(), q[name][1])


def test_pdebench_seed_groups(tmp_path):
    data = {f"{k:04d}": RNG.random((6, 8, 8, 2)).astype(np.float32) for k in range(5)}
    with h5py.File(tmp_path / "rdb.h5", "w") as f:
        for k, v in data.items():
            f[f"{k}/data"] = v
            f[f"{k}/grid/x"] = np.linspace(0, 1, 8)
            f[f"{k}/grid/y"] = np.linspace(0, 1, 8)
            f[f"{k}/grid/t"] = np.linspace(0, 1, 6)
    ds = PDEDataset(tmp_path / "rdb.h5", "all", time="trajectory")
    s = ds[3]
    assert s["input"].shape == (6, 2, 8, 8)
    np.testing.assert_array_equal(s["input"].numpy(), np.moveaxis(data["0003"], -1, 1))


def test_the_well_fields(tmp_path):
    t0 = RNG.random((3, 5, 8, 6)).astype(np.float32)
    t1 = RNG.random((3, 5, 8, 6, 2)).astype(np.float32)
    static = RNG.random((3, 8, 6)).astype(np.float32)
    with h5py.File(tmp_path / "well.hdf5", "w") as f:
        f.attrs["dataset_name"] = "toy_flow"
        f.attrs["n_spatial_dims"] = 2
        f["t0_fields/pressure"] = t0
        f["t1_fields/velocity"] = t1
        f["t0_fields/mask"] = static
        f["t0_fields/mask"].attrs["time_varying"] = False
        f["dimensions/x"] = np.linspace(0, 1, 8)
        f["dimensions/y"] = np.linspace(0, 1, 6)
        f["dimensions/time"] = np.linspace(0, 0.4, 5)
    ds = PDEDataset(tmp_path / "well.hdf5", "all", time="trajectory")
    assert isinstance(ds.source, WellSource) and ds.source.pde == "toy_flow"
    s = ds[2]
    assert s["input"].shape == (5, 4, 8, 6)  # pressure, velocity_0, velocity_1, mask
    chans = [str(c) for c in ds.input_channels]
    np.testing.assert_array_equal(s["input"][:, chans.index("pressure")].numpy(), t0[2])
    np.testing.assert_array_equal(s["input"][:, chans.index("velocity_1")].numpy(), t1[2, ..., 1])
    for k in range(5):  # a field constant in time is repeated over the frames
        np.testing.assert_array_equal(s["input"][k, chans.index("mask")].numpy(), static[2])


def test_unknown_layout_names_the_ones_understood(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(DataFileError, match="PDEBench.*The Well"):
        PDEDataset(tmp_path / "x.h5", "all")
