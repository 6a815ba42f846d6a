"""PDEDataset.to_xarray: dims, coordinates, per-sample variables and attributes against the raw file."""

import h5py
import numpy as np
import pytest
import xarray as xr
from _files import DT, make_grid_file, make_ragged_file, make_timeseries_file

from neuralops.data import PDEDataset


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid_file(
        tmp_path_factory.mktemp("x") / "grid.h5", n=6, s=8, failed=(1,), vector=True
    )


def test_grid_export(grid):
    ds = PDEDataset(grid, "all")
    out = ds.to_xarray()
    with h5py.File(grid) as f:
        a, v = f["fields/a"][...], f["fields/v"][...]
        x, y, k, bc = (
            f["coords/x"][...],
            f["coords/y"][...],
            f["params/k"][...],
            f["params/bc"][...],
        )
        iters, residual = f["solver/iterations"][...], f["solver/residual"][...]
        attrs = dict(f.attrs)
    idx = [0, 2, 3, 4, 5]
    assert dict(out.sizes) == {"sample": 5, "x": 8, "y": 8, "v_component": 2, "param_bc_dim1": 2}
    assert out["a"].dims == ("sample", "x", "y") and out["v"].dims == (
        "sample",
        "x",
        "y",
        "v_component",
    )
    np.testing.assert_array_equal(out["sample"], idx)
    np.testing.assert_array_equal(out["x"], x)
    np.testing.assert_array_equal(out["y"], y)
    assert out["v_component"].values.tolist() == ["vx", "vy"]
    np.testing.assert_array_equal(out["a"], a[idx])
    np.testing.assert_array_equal(out["v"], v[idx])
    np.testing.assert_array_equal(out["param_k"], k[idx])
    np.testing.assert_array_equal(out["param_bc"], bc[idx])
    np.testing.assert_array_equal(out["solver_iterations"], iters[idx])
    np.testing.assert_array_equal(out["solver_residual"], residual[idx])
    assert out["status"].values.tolist() == [1] * 5
    assert out["param_k"].attrs["units"] == "1/m"
    assert out["u"].attrs["units"] == "m" and out["u"].attrs["role"] == "target"
    assert out["a"].attrs["role"] == "input" and out["a"].attrs["description"] == "coefficient"
    for key in ("schema", "pde", "recipe", "package_version", "content_sha256"):
        assert out.attrs[key] == attrs[key]
    assert out.attrs["spatial_dims"] == "x,y" and out.attrs["complete"] == 1


def test_field_and_index_selection_includes_failed_samples(grid):
    out = PDEDataset(grid).to_xarray(indices=[1, 3], fields=["u"])
    assert set(out.data_vars) >= {"u", "status", "error"} and "a" not in out.data_vars
    assert out["status"].values.tolist() == [2, 1]
    assert out["error"].values.tolist() == ["CG stalled at sample 1", ""]
    assert np.isnan(out["u"].sel(sample=1)).all() and np.isfinite(out["u"].sel(sample=3)).all()
    assert PDEDataset(grid, "val").to_xarray()["sample"].values.tolist() == [3]


def test_netcdf_round_trip(grid, tmp_path):
    out = PDEDataset(grid, "all").to_xarray()
    path = tmp_path / "grid.nc"
    out.to_netcdf(path, engine="scipy")  # netCDF3: the strictest attribute rules
    with xr.open_dataset(path, engine="scipy") as back:
        np.testing.assert_array_equal(back["v"], out["v"])
        assert back.attrs["schema"] == "neuralops-pde/1" and back["u"].attrs["units"] == "m"


def test_time_series_export(tmp_path):
    path = make_timeseries_file(tmp_path / "ts.h5", n=3, t=5)
    out = PDEDataset(path, "all").to_xarray()
    with h5py.File(path) as f:
        w = f["fields/w"][...]
    assert out["w"].dims == ("sample", "time", "x", "y") and out["f"].dims == ("sample", "x", "y")
    np.testing.assert_allclose(out["time"], DT * np.arange(5))
    np.testing.assert_array_equal(out["w"], w)


def test_mesh_export_has_node_dim_and_sample_coordinate(tmp_path):
    path = make_ragged_file(tmp_path / "mesh.h5", n=4, failed=(1,))
    out = PDEDataset(path, "all").to_xarray()
    with h5py.File(path) as f:
        off, pos, temp = f["mesh/offsets"][...], f["mesh/pos"][...], f["fields/T"][...]
    idx = [0, 2, 3]
    rows = np.concatenate([np.arange(off[i], off[i + 1]) for i in idx])
    assert (
        out["T"].dims == ("node",) and out.sizes["node"] == len(rows) and out.sizes["sample"] == 3
    )
    np.testing.assert_array_equal(out["T"], temp[rows, 0])
    np.testing.assert_array_equal(out["x"], pos[rows, 0])
    np.testing.assert_array_equal(out["y"], pos[rows, 1])
    np.testing.assert_array_equal(out["node_sample"], np.repeat(idx, np.diff(off)[idx]))
    np.testing.assert_array_equal(
        out["T"].where(out["node_sample"] == 2, drop=True), temp[off[2] : off[3], 0]
    )
