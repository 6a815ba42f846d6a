"""Schema v1 writer: every value written is read back; statistics, digest, chunking, bad input."""

from __future__ import annotations

import datetime as dt
import hashlib

import h5py
import numpy as np
import pytest

import neuralops
from neuralops.data.errors import DataFileError, SchemaVersionError
from neuralops.data.schema import (
    FAILED,
    OK,
    PENDING,
    SCHEMA_ID,
    DatasetWriter,
    FieldSpec,
    ParamSpec,
    SolverRecord,
    check_schema,
    content_digest,
    open_file,
    read_sample_field,
    str_list,
)

N, T, SX, SY = 7, 3, 8, 6
RECIPE = '[dataset]\nname = "tiny"\npde = "darcy"\n'
X = np.linspace(0.0, 1.0, SX)
Y = np.array([0.0, 0.1, 0.3, 0.6, 0.8, 1.0])  # non-uniform on purpose
TT = np.array([0.0, 0.5, 1.0])
FIELDS = [
    FieldSpec("a", "input", (SX, SY), ("sample", "x", "y"), units="1", description="coefficient"),
    FieldSpec(
        "v",
        "target",
        (T, SX, SY, 2),
        ("sample", "time", "x", "y", "component"),
        units="m/s",
        channels=("vx", "vy"),
        dtype="float64",
    ),
]
PARAMS = [
    ParamSpec("k", units="1/m", distribution="U(0,1)"),
    ParamSpec("bc", shape=(2,), units="K", distribution="U(0,100)"),
]
FAILED_I, PENDING_I = 5, 6
TRAIN, VAL, TEST = [0, 1, 2, 3], [4, FAILED_I], [PENDING_I]


def _data(seed: int = 0) -> dict[int, dict]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(N):
        out[i] = {
            "fields": {"a": rng.random((SX, SY)) + i, "v": rng.standard_normal((T, SX, SY, 2))},
            "params": {"k": rng.random(), "bc": rng.random(2) * 100},
            "solver": SolverRecord(
                iterations=10 + i,
                residual=1e-9 * (i + 1),
                seconds=0.01 * (i + 1),
                converged=i != FAILED_I,
            ),
        }
    return out


def _write(path, *, data=None, seconds_offset=0.0, **kw):
    data = _data() if data is None else data
    w = DatasetWriter(
        path,
        pde="darcy",
        n_samples=N,
        fields=FIELDS,
        spatial_dims=["x", "y"],
        coords={"x": X, "y": Y, "t": TT},
        params=PARAMS,
        seed=42,
        recipe_text=RECIPE,
        **kw,
    )
    with w:
        for i, d in data.items():
            if i == PENDING_I:
                continue
            rec = d["solver"]
            rec = SolverRecord(
                rec.iterations, rec.residual, rec.seconds + seconds_offset, rec.converged
            )
            if i == FAILED_I:
                w.write_sample(
                    i,
                    params=d["params"],
                    solver=rec,
                    status=FAILED,
                    error="CG did not converge in 100 iterations",
                )
            else:
                w.write_sample(i, fields=d["fields"], params=d["params"], solver=rec)
        w.write_splits({"train": TRAIN, "val": VAL, "test": TEST})
        digest = w.finalize()
    return digest


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "ds.h5"
    digest = _write(path)
    return path, digest, _data()


def test_root_attributes_round_trip(written):
    path, digest, _ = written
    with h5py.File(path) as f:
        a = f.attrs
        assert a["schema"] == SCHEMA_ID
        assert a["pde"] == "darcy"
        assert a["recipe"] == RECIPE
        assert a["recipe_sha256"] == hashlib.sha256(RECIPE.encode()).hexdigest()
        assert a["package_version"] == neuralops.__version__
        assert a["seed"] == 42
        assert a["grid"] == "cartesian"
        assert a["n_samples"] == N
        assert str_list(a["spatial_dims"]) == ["x", "y"]
        assert not a["complete"]  # sample 6 is pending
        assert a["content_sha256"] == digest and len(digest) == 64
        created = dt.datetime.fromisoformat(a["created"])
        assert created.utcoffset() == dt.timedelta(0)
        assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 600


def test_fields_coords_params_round_trip(written):
    path, _, data = written
    with h5py.File(path) as f:
        a, v = f["fields/a"], f["fields/v"]
        assert a.dtype == np.float32 and v.dtype == np.float64
        assert a.shape == (N, SX, SY) and v.shape == (N, T, SX, SY, 2)
        assert (a.attrs["role"], a.attrs["units"], a.attrs["description"]) == (
            "input",
            "1",
            "coefficient",
        )
        assert "channels" not in a.attrs
        assert str_list(a.attrs["dims"]) == ["sample", "x", "y"]
        assert v.attrs["role"] == "target" and v.attrs["units"] == "m/s"
        assert str_list(v.attrs["dims"]) == ["sample", "time", "x", "y", "component"]
        assert str_list(v.attrs["channels"]) == ["vx", "vy"]
        for i in range(N):
            if i in (FAILED_I, PENDING_I):
                assert np.isnan(a[i]).all() and np.isnan(v[i]).all()
                continue
            np.testing.assert_array_equal(a[i], data[i]["fields"]["a"].astype(np.float32))
            np.testing.assert_array_equal(v[i], data[i]["fields"]["v"])
            np.testing.assert_array_equal(read_sample_field(f, "v", i), data[i]["fields"]["v"])
        for name, axis in (("x", X), ("y", Y), ("t", TT)):
            assert f[f"coords/{name}"].dtype == np.float64
            np.testing.assert_array_equal(f[f"coords/{name}"][...], axis)
        k, bc = f["params/k"], f["params/bc"]
        assert k.shape == (N,) and bc.shape == (N, 2)
        assert (k.attrs["units"], k.attrs["distribution"]) == ("1/m", "U(0,1)")
        assert (bc.attrs["units"], bc.attrs["distribution"]) == ("K", "U(0,100)")
        for i in range(N):
            if i == PENDING_I:
                assert np.isnan(k[i]) and np.isnan(bc[i]).all()
                continue
            assert k[i] == data[i]["params"]["k"]
            np.testing.assert_array_equal(bc[i], data[i]["params"]["bc"])


def test_solver_status_error_splits_round_trip(written):
    path, _, data = written
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["status"][...], [OK, OK, OK, OK, OK, FAILED, PENDING])
        errors = list(f["error"].asstr()[...])
        assert errors == [""] * 5 + ["CG did not converge in 100 iterations", ""]
        s = f["solver"]
        assert s["iterations"].dtype == np.int32 and s["converged"].dtype == bool
        assert s["seconds"].attrs["nondeterministic"]
        for i in range(N):
            rec = data[i]["solver"]
            if i == PENDING_I:  # fill values
                assert (s["iterations"][i], s["seconds"][i], s["converged"][i]) == (0, 0.0, False)
                assert np.isnan(s["residual"][i])
                continue
            assert s["iterations"][i] == rec.iterations
            assert s["residual"][i] == rec.residual
            assert s["seconds"][i] == rec.seconds
            assert s["converged"][i] == rec.converged
        # failed and pending samples are dropped from their splits, nothing is replaced
        assert f["splits/train"].dtype == np.int64
        np.testing.assert_array_equal(f["splits/train"][...], TRAIN)
        np.testing.assert_array_equal(f["splits/val"][...], [4])
        assert f["splits/test"].shape == (0,)


def test_stats_equal_numpy_over_train_split_in_float64(written):
    path, _, data = written
    a = np.stack([data[i]["fields"]["a"].astype(np.float32) for i in TRAIN]).astype(np.float64)
    v = np.stack([data[i]["fields"]["v"] for i in TRAIN]).reshape(-1, 2)
    with h5py.File(path) as f:
        st = f["stats"]
        assert st["a"].attrs["n_samples"] == len(TRAIN)
        for key, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
            assert st[f"a/{key}"].dtype == np.float64 and st[f"a/{key}"].shape == (1,)
            np.testing.assert_allclose(st[f"a/{key}"][...], [fn(a)], rtol=1e-12)
            assert st[f"v/{key}"].shape == (2,)  # one value per component
            np.testing.assert_allclose(st[f"v/{key}"][...], fn(v, axis=0), rtol=1e-12, atol=1e-15)


def test_chunks_are_one_sample_and_fletcher32_is_on(written):
    path, _, _ = written
    with h5py.File(path) as f:
        assert f["fields/a"].chunks == (1, SX, SY)
        assert f["fields/v"].chunks == (1, T, SX, SY, 2)
        assert f["fields/a"].fletcher32 and f["fields/v"].fletcher32
        assert f["fields/a"].compression is None


def test_large_time_sample_is_chunked_per_frame(tmp_path):
    spec = FieldSpec("w", "target", (2, 1100, 1100), ("sample", "time", "x", "y"))
    w = DatasetWriter(
        tmp_path / "big.h5",
        pde="ns2d_vorticity",
        n_samples=2,
        spatial_dims=["x", "y"],
        fields=[FieldSpec("w0", "input", (4, 4), ("sample", "x", "y")), spec],
    )
    with w, h5py.File(tmp_path / "big.h5") as f:
        assert f["fields/w"].chunks == (1, 1, 1100, 1100)  # 9.7 MB per sample > 4 MiB
        assert f["fields/w0"].chunks == (1, 4, 4)


def test_gzip_option(tmp_path):
    _write(tmp_path / "gz.h5", compression="gzip")
    with h5py.File(tmp_path / "gz.h5") as f:
        assert f["fields/a"].compression == "gzip" and f["fields/a"].shuffle
        assert f["fields/a"].fletcher32


def test_digest_is_stable_and_ignores_seconds_and_created(tmp_path):
    d1 = _write(tmp_path / "one.h5")
    d2 = _write(tmp_path / "two.h5", seconds_offset=3.5)
    assert d1 == d2
    with h5py.File(tmp_path / "two.h5", "r+") as f:
        assert f["solver/seconds"][0] == pytest.approx(3.51)
        f.attrs["created"] = "1999-01-01T00:00:00+00:00"
        assert content_digest(f) == d1
    data = _data()
    data[2]["fields"]["a"][3, 4] += 1e-3
    assert _write(tmp_path / "three.h5", data=data) != d1
    data = _data()
    data[1]["params"]["k"] += 1e-12
    assert _write(tmp_path / "four.h5", data=data) != d1
    with h5py.File(tmp_path / "one.h5", "r+") as f:
        f["solver/iterations"][0] += 1
        assert content_digest(f) != d1


def test_ragged_round_trip(tmp_path):
    rows = [4, 0, 5]
    rng = np.random.default_rng(1)
    pos = [rng.random((r, 2)) for r in rows]
    kappa = [rng.random((r, 1)) for r in rows]
    temp = [rng.random((r, 1)) for r in rows]
    fields = [
        FieldSpec("kappa", "input", (1,), ("node", "component")),
        FieldSpec("T", "target", (1,), ("node", "component"), units="K"),
    ]
    path = tmp_path / "mesh.h5"
    with DatasetWriter(
        path, pde="heat", n_samples=3, fields=fields, spatial_dims=["x", "y"], ragged=True
    ) as w:
        w.write_sample(0, fields={"kappa": kappa[0], "T": temp[0]}, pos=pos[0])
        w.write_sample(1, status=FAILED, error="mesher failed")
        w.write_sample(2, fields={"kappa": kappa[2], "T": temp[2]}, pos=pos[2])
        w.write_splits({"train": [0, 2]})
        w.finalize()
    with open_file(path) as f:
        assert f.attrs["grid"] == "mesh" and f.attrs["complete"]
        np.testing.assert_array_equal(f["mesh/offsets"][...], [0, 4, 4, 9])
        assert f["fields/T"].shape == (9, 1)
        for i in (0, 2):
            np.testing.assert_array_equal(
                f["mesh/pos"][f["mesh/offsets"][i] : f["mesh/offsets"][i + 1]],
                pos[i].astype(np.float32),
            )
            np.testing.assert_array_equal(read_sample_field(f, "T", i), temp[i].astype(np.float32))
        both = np.concatenate([temp[0], temp[2]]).astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(f["stats/T/mean"][...], [both.mean()], rtol=1e-12)
        np.testing.assert_allclose(f["stats/T/std"][...], [both.std()], rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(role="output"), "role 'output' is not one of"),
        (dict(dtype="int32"), "dtype must be floating"),
        (dict(dims=("sample", "x")), r"dims \('sample', 'x'\) must name the sample axis"),
        (dict(channels=("p", "q")), "channels .* need a trailing 'component' axis"),
    ],
)
def test_fieldspec_rejects_bad_input(kwargs, match):
    base = dict(name="a", role="input", shape=(4, 4), dims=("sample", "x", "y"))
    with pytest.raises(ValueError, match=match):
        FieldSpec(**(base | kwargs))


def test_writer_rejects_bad_input(tmp_path):
    a = FieldSpec("a", "input", (4,), ("sample", "x"))
    u = FieldSpec("u", "target", (4,), ("sample", "x"))
    kw = dict(pde="p", spatial_dims=["x"])
    with pytest.raises(ValueError, match="n_samples must be >= 1, got 0"):
        DatasetWriter(tmp_path / "w.h5", n_samples=0, fields=[a, u], **kw)
    with pytest.raises(ValueError, match="at least one input field and one target field"):
        DatasetWriter(tmp_path / "w.h5", n_samples=2, fields=[a], **kw)
    with pytest.raises(ValueError, match="compression must be None or 'gzip', got 'lzf'"):
        DatasetWriter(tmp_path / "w.h5", n_samples=2, fields=[a, u], compression="lzf", **kw)
    ok = {"a": np.zeros(4), "u": np.zeros(4)}
    with DatasetWriter(
        tmp_path / "w.h5", n_samples=2, fields=[a, u], params=[ParamSpec("k")], **kw
    ) as w:
        with pytest.raises(IndexError, match=r"sample index 2 out of range \[0, 2\)"):
            w.write_sample(2, fields=ok)
        with pytest.raises(ValueError, match="status must be OK"):
            w.write_sample(0, fields=ok, status=PENDING)
        with pytest.raises(ValueError, match="sample 0 is failed but has no error message"):
            w.write_sample(0, status=FAILED)
        with pytest.raises(ValueError, match=r"fields \['u'\] missing from an ok sample"):
            w.write_sample(0, fields={"a": np.zeros(4)})
        with pytest.raises(ValueError, match=r"unknown fields \['b'\]"):
            w.write_sample(0, fields=ok | {"b": np.zeros(4)})
        with pytest.raises(ValueError, match=r"field 'u' has shape \(5,\), expected \(4,\)"):
            w.write_sample(0, fields={"a": np.zeros(4), "u": np.zeros(5)})
        with pytest.raises(ValueError, match="unknown param 'q'"):
            w.write_sample(0, fields=ok, params={"q": 1.0})
    ra = FieldSpec("a", "input", (1,), ("node", "component"))
    ru = FieldSpec("u", "target", (1,), ("node", "component"))
    with DatasetWriter(tmp_path / "r.h5", n_samples=2, fields=[ra, ru], ragged=True, **kw) as w:
        with pytest.raises(ValueError, match="written in index order: got 1, expected 0"):
            w.write_sample(1, fields={"a": np.zeros((3, 1)), "u": np.zeros((3, 1))})


def test_open_file_and_check_schema_errors(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        open_file(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        with pytest.raises(SchemaVersionError, match="no 'schema' attribute"):
            check_schema(f, "s.h5")
        f.attrs["schema"] = "neuralops-pde/2"
        with pytest.raises(
            SchemaVersionError,
            match="found 'neuralops-pde/2', this neuralops reads 'neuralops-pde/1'",
        ):
            check_schema(f, "s.h5")
        f.attrs["schema"] = SCHEMA_ID
        check_schema(f)


def test_str_list_decodes_arrays_json_and_bytes():
    assert str_list(np.array([b"x", b"y"])) == ["x", "y"]
    assert str_list('["sample", "x"]') == ["sample", "x"]
    assert str_list(b'["t"]') == ["t"]
    assert str_list(np.array(["a"], dtype=h5py.string_dtype())) == ["a"]
