"""Normalizers: statistics from /stats and from streaming agree with numpy, encode/decode invert, JSON round trip."""

import json

import h5py
import numpy as np
import pytest
import torch
from _files import make_grid_file, make_timeseries_file

from neuralops.data import (
    GaussianNormalizer,
    IdentityNormalizer,
    Normalizer,
    PDEDataset,
    RangeNormalizer,
)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid_file(
        tmp_path_factory.mktemp("n") / "grid.h5", n=10, s=8, failed=(2,), vector=True
    )


def train_arrays(path):
    """Train-split a (N, S, S), u (N, S, S), v (N, S, S, 2) in float64."""
    with h5py.File(path) as f:
        idx = f["splits/train"][...]
        return {k: f["fields"][k][...][idx].astype(np.float64) for k in ("a", "u", "v")}


def test_gaussian_from_file_stats_matches_numpy(grid):
    ds = PDEDataset(grid, "test")  # statistics always come from the train split
    norm = ds.normalizer("gaussian")
    t = train_arrays(grid)
    target = [t["u"], t["v"][..., 0], t["v"][..., 1]]
    assert norm.stats["input"]["mean"].shape == (1, 1, 1) and norm.stats["target"]["std"].shape == (
        3,
        1,
        1,
    )
    np.testing.assert_allclose(norm.stats["input"]["mean"].flatten(), [t["a"].mean()], rtol=1e-10)
    np.testing.assert_allclose(norm.stats["input"]["std"].flatten(), [t["a"].std()], rtol=1e-10)
    np.testing.assert_allclose(
        norm.stats["target"]["mean"].flatten(), [c.mean() for c in target], rtol=1e-10
    )
    np.testing.assert_allclose(
        norm.stats["target"]["std"].flatten(), [c.std() for c in target], rtol=1e-10
    )


def test_encode_decode_values_and_shapes(grid):
    ds = PDEDataset(grid, dtype=torch.float64)
    norm = ds.normalizer("gaussian", eps=1e-6)
    item = ds[0]
    mean, std = norm.stats["target"]["mean"], norm.stats["target"]["std"]
    enc = norm.encode(item["target"], "target")
    torch.testing.assert_close(enc, (item["target"] - mean) / (std + 1e-6), rtol=1e-12, atol=0)
    batch = torch.stack([ds[k]["target"] for k in range(len(ds))])  # (batch, C, *S)
    torch.testing.assert_close(norm.encode(batch, "target")[0], enc, rtol=1e-12, atol=0)
    torch.testing.assert_close(
        norm.decode(norm.encode(batch, "target")), batch, rtol=1e-12, atol=1e-12
    )
    series = batch[None].expand(2, *batch.shape)  # (batch, T, C, *S) broadcasts too
    torch.testing.assert_close(
        norm.encode(series, "target")[1], norm.encode(batch, "target"), rtol=0, atol=0
    )
    assert norm.encode(item["input"].float()).dtype == torch.float32
    with pytest.raises(
        ValueError,
        match=r"shape \(3, 1, 1\) and do not broadcast over a tensor of shape \(2, 8, 8\)",
    ):
        norm.encode(batch[0, :2], "target")
    with pytest.raises(KeyError, match=r"no statistics for 'coords'; it has \['input', 'target'\]"):
        norm.encode(item["coords"], "coords")


def test_range_maps_train_data_onto_unit_interval(grid):
    ds = PDEDataset(grid, dtype=torch.float64)
    norm = ds.normalizer("range", eps=0.0)
    enc = torch.stack([norm.encode(ds[k]["target"], "target") for k in range(len(ds))])
    per_channel = enc.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(
        per_channel.min(1).values, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        per_channel.max(1).values, torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12
    )
    sym = ds.normalizer("range", low=-1.0, high=1.0)
    x = ds[1]["input"]
    torch.testing.assert_close(sym.decode(sym.encode(x), "input"), x, rtol=1e-12, atol=1e-12)


def test_fit_streams_the_same_statistics(grid):
    ds = PDEDataset(grid, dtype=torch.float64)
    fitted = Normalizer.fit(ds, "gaussian")
    stored = ds.normalizer("gaussian")
    for key in ("input", "target"):
        for s in ("mean", "std"):
            torch.testing.assert_close(
                fitted.stats[key][s], stored.stats[key][s], rtol=1e-10, atol=0
            )
    ranged = RangeNormalizer.fit(ds, keys=("target",))
    t = train_arrays(grid)
    np.testing.assert_allclose(
        ranged.stats["target"]["max"].flatten(), [t["u"].max(), *t["v"].max((0, 1, 2))]
    )


def test_pointwise_statistics(grid):
    ds = PDEDataset(grid, "val", subsample=2)
    norm = ds.normalizer("gaussian", pointwise=True)
    t = train_arrays(grid)
    assert norm.pointwise and norm.stats["input"]["mean"].shape == (1, 4, 4)
    np.testing.assert_allclose(
        norm.stats["input"]["mean"][0].numpy(), t["a"][:, ::2, ::2].mean(0), rtol=1e-12
    )
    np.testing.assert_allclose(
        norm.stats["target"]["std"][1:].numpy(),
        np.moveaxis(t["v"][:, ::2, ::2].std(0), -1, 0),
        rtol=1e-12,
    )


def test_time_series_statistics_reduce_time_and_space(tmp_path):
    path = make_timeseries_file(tmp_path / "ts.h5", n=6, t=4)
    ds = PDEDataset(path, "train", inputs="w", dtype=torch.float64)
    with h5py.File(path) as f:
        w = f["fields/w"][...][f["splits/train"][...]].astype(np.float64)
    fitted = GaussianNormalizer.fit(ds)  # items are (T, C, *S)
    np.testing.assert_allclose(fitted.stats["input"]["mean"].flatten(), [w.mean()], rtol=1e-12)
    np.testing.assert_allclose(fitted.stats["target"]["std"].flatten(), [w.std()], rtol=1e-12)
    np.testing.assert_allclose(
        ds.normalizer().stats["input"]["std"].flatten(), [w.std()], rtol=1e-10
    )


def test_json_round_trip_and_save(grid, tmp_path):
    ds = PDEDataset(grid, dtype=torch.float64)
    x = ds[0]["target"]
    for norm in (ds.normalizer("gaussian", eps=1e-5), ds.normalizer("range", low=-1.0, high=2.0)):
        back = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
        assert type(back) is type(norm) and back._options() == norm._options()
        torch.testing.assert_close(
            back.encode(x, "target"), norm.encode(x, "target"), rtol=0, atol=0
        )
    per_channel = ds.normalizer()
    path = per_channel.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["normalizer.json"]
    torch.testing.assert_close(
        Normalizer.load(tmp_path / "model").decode(x), per_channel.decode(x), rtol=0, atol=0
    )
    assert json.loads(path.read_text())["kind"] == "gaussian"
    pointwise = ds.normalizer(pointwise=True)
    pointwise.save(tmp_path / "pw" / "normalizer.json")
    assert sorted(p.name for p in (tmp_path / "pw").iterdir()) == [
        "normalizer.json",
        "normalizer.safetensors",
    ]
    assert (
        "data"
        not in json.loads((tmp_path / "pw" / "normalizer.json").read_text())["stats"]["input"][
            "mean"
        ]
    )
    loaded = Normalizer.load(tmp_path / "pw")
    torch.testing.assert_close(
        loaded.encode(x, "target"), pointwise.encode(x, "target"), rtol=0, atol=0
    )
    with pytest.raises(ValueError, match="unknown normalizer kind 'minmax'"):
        Normalizer.from_dict({**per_channel.to_dict(), "kind": "minmax"})


def test_identity_and_channels_last():
    ident = IdentityNormalizer()
    x = torch.randn(3, 2, 5)
    assert (
        ident.encode(x, "anything") is x
        and Normalizer.from_dict(ident.to_dict()).kind == "identity"
    )
    norm = GaussianNormalizer({"input": [1.0, 2.0]}, {"input": [2.0, 4.0]}, eps=0.0, spatial_ndim=2)
    nodes = torch.tensor([[3.0, 6.0], [1.0, 2.0]])  # (n_nodes, C) graph features
    torch.testing.assert_close(
        norm.encode(nodes, channels_last=True), torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    )
    with pytest.raises(ValueError, match=r"pass spatial_ndim=d"):
        GaussianNormalizer({"input": [1.0]}, {"input": [1.0]})


def test_files_without_stats_stream_the_train_split(tmp_path, grid):
    path = make_grid_file(tmp_path / "nostats.h5", n=10, s=8, failed=(2,), vector=True)
    with h5py.File(path, "a") as f:
        del f["stats"]
    streamed = PDEDataset(path, "val").normalizer("range")
    stored = PDEDataset(grid, "val").normalizer("range")  # same data, with /stats
    for key in ("input", "target"):
        for s in ("min", "max"):
            torch.testing.assert_close(
                streamed.stats[key][s], stored.stats[key][s], rtol=1e-12, atol=0
            )
    with pytest.raises(
        ValueError, match=r"kind must be one of \['gaussian', 'identity', 'range'\], got 'robust'"
    ):
        PDEDataset(path).normalizer("robust")
