"""PDEDataset on tiny schema-v1 files: every value is compared with the raw h5py arrays."""

import pickle

import h5py
import numpy as np
import pytest
import torch
from _files import DT, make_grid_file, make_ragged_file, make_timeseries_file

from neuralops.data import (
    DataFileError,
    FieldNotFoundError,
    IncompleteDatasetError,
    NonFiniteError,
    PDEDataset,
    SchemaVersionError,
    TimeWindow,
)
from neuralops.data.source import H5Source
from neuralops.data.timewindow import AllToAll


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid_file(tmp_path_factory.mktemp("d") / "grid.h5", failed=(1, 6), vector=True)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return make_timeseries_file(tmp_path_factory.mktemp("d") / "ts.h5", n=4, failed=(3,))


@pytest.fixture(scope="module")
def ragged(tmp_path_factory):
    return make_ragged_file(tmp_path_factory.mktemp("d") / "mesh.h5", failed=(2,))


@pytest.fixture
def h5_reads(monkeypatch):
    """Every h5py dataset read as (dataset name, selection key)."""
    seen = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        seen.append((self.name, key))
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    return seen


def raw(path, name):
    with h5py.File(path) as f:
        return f["fields"][name][...]


# ---------------------------------------------------------------------- grid view
def test_items_equal_the_raw_arrays(grid):
    ds = PDEDataset(grid)
    with h5py.File(grid) as f:
        train = f["splits/train"][...]
        a, u, x, y = f["fields/a"][...], f["fields/u"][...], f["coords/x"][...], f["coords/y"][...]
        k, bc = f["params/k"][...], f["params/bc"][...]
    np.testing.assert_array_equal(ds.indices, [0, 2, 3])  # sample 1 failed
    np.testing.assert_array_equal(train, ds.indices)
    assert len(ds) == 3 and ds.param_names == ["bc[0]", "bc[1]", "k"]  # /params in file order
    for item, i in zip(ds, ds.indices, strict=True):
        assert set(item) == {"input", "target", "coords", "params"}
        assert item["input"].dtype == torch.float32 and item["input"].shape == (1, 16, 16)
        np.testing.assert_array_equal(item["input"][0].numpy(), a[i])
        np.testing.assert_array_equal(item["target"][0].numpy(), u[i])  # default targets: u, v
        np.testing.assert_allclose(item["params"].numpy(), [*bc[i], k[i]], rtol=1e-7)
        gx, gy = np.meshgrid(x, y, indexing="ij")
        np.testing.assert_allclose(item["coords"].numpy(), np.stack([gx, gy]), rtol=1e-7)


def test_vector_fields_are_channels_first_and_stacked(grid):
    ds = PDEDataset(
        grid, split="all", inputs="a", targets=["v", "u"], include=(), dtype=torch.float64
    )
    v, u = raw(grid, "v"), raw(grid, "u")
    assert ds.target_channels == ["vx", "vy", "u"] and ds.target_shape == (3, 16, 16)
    item = ds[3]
    i = int(ds.indices[3])
    assert set(item) == {"input", "target"} and item["target"].dtype == torch.float64
    np.testing.assert_array_equal(item["target"][:2].numpy(), np.moveaxis(v[i], -1, 0))
    np.testing.assert_array_equal(item["target"][2].numpy(), u[i])


def test_failed_and_pending_samples_are_never_returned(tmp_path):
    path = make_grid_file(tmp_path / "p.h5", n=8, failed=(2,), pending=(5, 6))
    with pytest.raises(IncompleteDatasetError, match="2 of 8 samples are pending.*--resume"):
        PDEDataset(path)
    ds = PDEDataset(path, split="all", allow_incomplete=True)
    np.testing.assert_array_equal(ds.indices, [0, 1, 3, 4, 7])
    with pytest.raises(ValueError, match=r"indices \[2, 5\] are not ok samples \(status \[2, 0\]"):
        PDEDataset(path, indices=[0, 2, 5], allow_incomplete=True)


def test_splits_and_indices(grid):
    with h5py.File(grid) as f:
        splits = {k: f["splits"][k][...] for k in f["splits"]}
    for name, idx in splits.items():
        np.testing.assert_array_equal(PDEDataset(grid, name).indices, idx)
    assert 1 not in PDEDataset(grid, "all").indices and len(PDEDataset(grid, "all")) == 6
    ds = PDEDataset(grid, indices=[7, 0])
    np.testing.assert_array_equal(ds[0]["input"][0].numpy(), raw(grid, "a")[7])
    with pytest.raises(
        ValueError, match=r"no split 'validation'; the file has \['test', 'train', 'val'\]"
    ):
        PDEDataset(grid, "validation")
    with pytest.raises(IndexError, match=r"item 3 out of range for a dataset of 3 items"):
        PDEDataset(grid)[3]
    np.testing.assert_array_equal(PDEDataset(grid)[-1]["input"], PDEDataset(grid)[2]["input"])


@pytest.mark.parametrize(
    "subsample,shape,res",
    [
        (2, (8, 8), "8x8 (stored 16x16, subsample 2)"),
        ((3, 1), (6, 16), "6x16 (stored 16x16, subsample (3, 1))"),
    ],
)
def test_subsample_reads_one_sample_and_strides_it(grid, subsample, shape, res, h5_reads):
    ds = PDEDataset(grid, subsample=subsample, targets="u")
    sx, sy = (subsample, subsample) if isinstance(subsample, int) else subsample
    assert ds.spatial_shape == shape and ds[0]["input"].shape == (1, *shape)
    h5_reads.clear()
    item = ds[1]
    # one read of sample 2 per field, nothing else: never the whole file, never HDF5's slow strided selection
    assert h5_reads == [("/fields/a", 2), ("/fields/u", 2)]
    np.testing.assert_array_equal(item["target"][0].numpy(), raw(grid, "u")[2, ::sx, ::sy])
    with h5py.File(grid) as f:
        np.testing.assert_allclose(item["coords"][0, :, 0].numpy(), f["coords/x"][::sx], rtol=1e-7)
        np.testing.assert_allclose(item["coords"][1, 0, :].numpy(), f["coords/y"][::sy], rtol=1e-7)
    assert f"resolution={res}" in repr(ds)


def test_repr_names_path_pde_split_fields_and_resolution(grid):
    text = repr(PDEDataset(grid, "val", subsample=2))
    assert f"path='{grid}', pde='darcy', split='val', n=2 (2 samples)" in text
    assert "input=a (1, 8, 8), target=u+v (3, 8, 8)" in text
    assert "resolution=8x8 (stored 16x16, subsample 2)" in text


# ---------------------------------------------------------------------- errors
def test_unknown_field_lists_fields_and_roles(grid):
    with pytest.raises(FieldNotFoundError) as info:
        PDEDataset(grid, targets="pressure")
    msg = str(info.value)
    assert "no field 'pressure'" in msg
    assert "a (input, 1x16x16, 1), u (target, 1x16x16, m), v (target, 2x16x16, m/s)" in msg


def test_other_schema_version_is_refused(tmp_path):
    path = make_grid_file(tmp_path / "s.h5", n=4)
    with h5py.File(path, "a") as f:
        f.attrs["schema"] = "neuralops-pde/2"
    with pytest.raises(
        SchemaVersionError, match="found 'neuralops-pde/2', this neuralops reads 'neuralops-pde/1'"
    ):
        PDEDataset(path)


def test_check_finite_names_field_and_sample(tmp_path):
    path = make_grid_file(tmp_path / "n.h5", n=4, nan=(1,))
    assert torch.isnan(PDEDataset(path)[1]["target"]).sum() == 1  # physical data, unchecked
    ds = PDEDataset(path, check_finite=True)
    ds[0]
    with pytest.raises(
        NonFiniteError, match=r"field 'u' of sample 1 \(status ok\) holds 1 NaN/Inf values of 256"
    ):
        ds[1]


def test_corrupt_chunk_raises_data_file_error_naming_dataset_and_sample(tmp_path):
    path = make_grid_file(tmp_path / "c.h5", n=4)
    u = raw(path, "u")
    with h5py.File(path) as f:
        chunk = f["fields/u"].id.get_chunk_info_by_coord((2, 0, 0))
    raw_bytes = bytearray(path.read_bytes())
    raw_bytes[chunk.byte_offset + 100] ^= 0xFF
    path.write_bytes(bytes(raw_bytes))
    ds = PDEDataset(path, split="all")
    np.testing.assert_array_equal(ds[1]["target"][0].numpy(), u[1])
    with pytest.raises(
        DataFileError, match=r"c\.h5: reading /fields/u sample 2 failed .*re-download or regenerate"
    ):
        ds[2]


def test_static_data_refuses_a_time_mode(grid):
    with pytest.raises(
        ValueError, match=r"needs a time-series field, but \['a', 'u', 'v'\] are static"
    ):
        PDEDataset(grid, time=TimeWindow(1, 1))
    with pytest.raises(ValueError, match="view must be one of"):
        PDEDataset(grid, view="mesh")
    with pytest.raises(ValueError, match=r"include has unknown entries \['pos'\]"):
        PDEDataset(grid, include=("pos",))


# ---------------------------------------------------------------------- handles
def test_per_item_mode_reads_the_same_and_keeps_no_handle(grid):
    persistent, per_item = PDEDataset(grid, "all"), PDEDataset(grid, "all", open_mode="per_item")
    for k in range(len(persistent)):
        for key in ("input", "target"):
            torch.testing.assert_close(persistent[k][key], per_item[k][key], rtol=0, atol=0)
    assert per_item.source._handle is None and per_item.source._scoped is None
    assert persistent.source._handle is not None and persistent.source._handle.file.id.valid


def test_pickle_drops_the_handle_and_reopens(grid):
    ds = PDEDataset(grid)
    first = ds[0]
    assert ds.source._handle is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.source._handle is None
    torch.testing.assert_close(clone[0]["target"], first["target"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="open_mode must be one of"):
        H5Source(grid, open_mode="shared")


# ---------------------------------------------------------------------- time series
def test_time_windows_select_the_right_frames(series):
    w, f = raw(series, "w"), raw(series, "f")
    tw = TimeWindow(n_in=2, n_out=2, stride=1, dt_stride=1)
    ds = PDEDataset(series, "all", time=tw, inputs=["w", "f"])
    assert ds.n_samples == 3 and len(ds) == 3 * 3  # T = 6, span 4
    for k in range(len(ds)):
        i, frames = ds.locate(k)
        s = k % 3
        item = ds[k]
        assert item["input"].shape == (2, 2, 8, 8) and item["target"].shape == (2, 1, 8, 8)
        np.testing.assert_array_equal(item["input"][:, 0].numpy(), w[i, s : s + 2])
        np.testing.assert_array_equal(item["input"][:, 1].numpy(), np.stack([f[i], f[i]]))
        np.testing.assert_array_equal(item["target"][:, 0].numpy(), w[i, s + 2 : s + 4])
        np.testing.assert_allclose(item["time"].numpy(), [DT, 2 * DT], rtol=1e-6)


def test_time_window_with_dt_stride(series, h5_reads):
    w = raw(series, "w")
    ds = PDEDataset(series, "all", time=TimeWindow(1, 2, stride=2, dt_stride=2), inputs="w")
    assert len(ds) == 3 * 1  # span 5 of 6 snapshots, stride 2: start 0 only
    h5_reads.clear()
    item = ds[2]
    assert h5_reads == [
        ("/fields/w", (2, slice(0, 5)))
    ]  # one box read, frames 0, 2, 4 taken in memory
    np.testing.assert_array_equal(item["input"][:, 0].numpy(), w[2, [0]])
    np.testing.assert_array_equal(item["target"][:, 0].numpy(), w[2, [2, 4]])
    np.testing.assert_allclose(item["time"].numpy(), [2 * DT, 4 * DT], rtol=1e-6)


def test_all2all_counts_and_pairs(series):
    w = raw(series, "w")
    ds = PDEDataset(
        series, "all", time="all2all", time_options=dict(max_steps=4, t_norm=0.4), inputs="w"
    )
    assert len(ds) == 3 * (4 + 1) * (4 + 2) // 2
    pairs = [(i, j) for i in range(5) for j in range(i, 5)]
    for k in range(len(ds)):
        sample, frames = ds.locate(k)
        i, j = pairs[k % 15]
        assert (frames.input.start, frames.target.start) == (i, j)
        item = ds[k]
        assert item["input"].shape == (1, 8, 8) and item["time"].shape == ()
        np.testing.assert_array_equal(item["input"][0].numpy(), w[sample, i])
        np.testing.assert_array_equal(item["target"][0].numpy(), w[sample, j])
        assert item["time"].item() == pytest.approx((j - i) * DT / 0.4, rel=1e-6)
    step2 = PDEDataset(series, "all", time=AllToAll(step=2, consecutive_only=True))
    assert len(step2) == 3 * 2 and step2.input_shape == (2, 8, 8)
    np.testing.assert_array_equal(step2[1]["target"][0].numpy(), w[0, 4])


def test_trajectory_is_the_default_for_time_series(series):
    w, f = raw(series, "w"), raw(series, "f")
    ds = PDEDataset(series, "all")
    assert ds.time == "trajectory" and len(ds) == 3
    assert ds.inputs == ["f", "w"] and ds.targets == ["w"]  # roles, in file order
    item = ds[1]
    assert item["input"].shape == (6, 2, 8, 8) and item["target"].shape == (6, 1, 8, 8)
    np.testing.assert_array_equal(item["target"][:, 0].numpy(), w[1])
    np.testing.assert_array_equal(item["input"][:, 1].numpy(), w[1])
    np.testing.assert_array_equal(
        item["input"][3, 0].numpy(), f[1]
    )  # static input broadcast over time
    np.testing.assert_allclose(item["time"].numpy(), DT * np.arange(6), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="time_options only apply to time='all2all'"):
        PDEDataset(series, time="trajectory", time_options=dict(max_steps=2))


# ---------------------------------------------------------------------- mesh files
def test_mesh_samples_are_channels_first_with_node_coords(ragged):
    with h5py.File(ragged) as f:
        off, pos, kappa, temp = (
            f[k][...] for k in ("mesh/offsets", "mesh/pos", "fields/kappa", "fields/T")
        )
        q = f["params/q"][...]
    ds = PDEDataset(ragged, "all")
    np.testing.assert_array_equal(ds.indices, [0, 1, 3, 4])
    for item, i in zip(ds, ds.indices, strict=True):
        rows = slice(off[i], off[i + 1])
        assert item["input"].shape == (1, off[i + 1] - off[i])
        np.testing.assert_array_equal(item["input"].numpy(), kappa[rows].T)
        np.testing.assert_array_equal(item["target"].numpy(), temp[rows].T)
        np.testing.assert_array_equal(item["coords"].numpy(), pos[rows].T)
        np.testing.assert_allclose(item["params"].numpy(), [q[i]], rtol=1e-7)
    strided = PDEDataset(ragged, "all", subsample=3)[0]
    np.testing.assert_array_equal(strided["target"].numpy(), temp[off[0] : off[1] : 3].T)
    assert "input=kappa (1, n_nodes)" in repr(ds)


def test_frame_chunked_series_read_only_the_frames_needed(tmp_path, h5_reads):
    path = make_timeseries_file(
        tmp_path / "big.h5", n=2, t=5, s=512
    )  # 5 MiB per sample: a chunk per frame
    with h5py.File(path) as f:
        assert f["fields/w"].chunks == (1, 1, 512, 512)
        w = f["fields/w"][1]
    ds = PDEDataset(path, indices=[1], time=TimeWindow(1, 1, dt_stride=4), inputs="w", subsample=8)
    h5_reads.clear()
    item = ds[0]
    assert h5_reads == [("/fields/w", (1, 0)), ("/fields/w", (1, 4))]
    np.testing.assert_array_equal(item["input"][0, 0].numpy(), w[0, ::8, ::8])
    np.testing.assert_array_equal(item["target"][0, 0].numpy(), w[4, ::8, ::8])
