"""Validator and ``neuralops info``: hand-broken files, each giving its problem code."""

from __future__ import annotations

import json
import re
import shutil

import h5py
import numpy as np
import pytest

from neuralops.data.errors import DataFileError
from neuralops.data.info_cli import main
from neuralops.data.schema import (
    FAILED,
    DatasetWriter,
    FieldSpec,
    SolverRecord,
    read_sample_field,
)
from neuralops.data.validate import CODES, Problem, ValidationReport, info_dict, validate

N, S = 6, 8
SPLITS = {"train": [0, 1, 2], "val": [3], "test": [4, 5]}
RECIPE = '[dataset]\nname = "tiny"\npde = "darcy"\n'


def _write(path, *, failed=(), pending=(), nan_at=None, splits=None, ragged=False, **kw):
    """A small clean darcy-like file; ``nan_at=(field, sample, index)`` plants one NaN."""
    rng = np.random.default_rng(0)
    if ragged:
        fields = [
            FieldSpec("a", "input", (1,), ("node", "component")),
            FieldSpec("u", "target", (1,), ("node", "component")),
        ]
        w = DatasetWriter(
            path,
            pde="heat",
            n_samples=N,
            fields=fields,
            spatial_dims=["x", "y"],
            ragged=True,
            recipe_text=RECIPE,
            **kw,
        )
    else:
        fields = [
            FieldSpec("a", "input", (S, S), ("sample", "x", "y")),
            FieldSpec("u", "target", (S, S), ("sample", "x", "y"), units="m"),
        ]
        axis = np.linspace(0.0, 1.0, S)
        w = DatasetWriter(
            path,
            pde="darcy",
            n_samples=N,
            fields=fields,
            spatial_dims=["x", "y"],
            coords={"x": axis, "y": axis},
            recipe_text=RECIPE,
            **kw,
        )
    with w:
        for i in range(N):
            if i in pending:
                continue
            rec = SolverRecord(iterations=20 + i, residual=1e-10, seconds=0.01, converged=True)
            if i in failed:
                w.write_sample(
                    i,
                    status=FAILED,
                    error=f"CG stalled at sample {i}",
                    solver=SolverRecord(500, 1e-3, 0.1, False),
                    pos=np.zeros((0, 2)),
                )
                continue
            shape = (3 + i, 1) if ragged else (S, S)
            values = {"a": rng.random(shape) + 1.0, "u": rng.standard_normal(shape)}
            if nan_at is not None and nan_at[1] == i:
                values[nan_at[0]][nan_at[2]] = np.nan
            w.write_sample(
                i, fields=values, solver=rec, pos=rng.random((shape[0], 2)) if ragged else None
            )
        w.write_splits(SPLITS if splits is None else splits)
        w.finalize()
    return path


@pytest.fixture
def clean(tmp_path):
    return _write(tmp_path / "clean.h5")


def _codes(path, deep=False) -> set[str]:
    return validate(path, deep=deep).codes


def _only(report: ValidationReport, code: str) -> Problem:
    found = [p for p in report.problems if p.code == code]
    assert len(found) == 1, report.problems
    return found[0]


def _set_split(path, name, values):
    with h5py.File(path, "r+") as f:
        del f[f"splits/{name}"]
        f.create_dataset(f"splits/{name}", data=np.asarray(values, dtype=np.int64))


def _flip_byte(path, field, sample):
    with h5py.File(path) as f:
        info = f[f"fields/{field}"].id.get_chunk_info_by_coord((sample, 0, 0))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        b = fh.read(1)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([b[0] ^ 0xFF]))


# ---------------------------------------------------------------------- clean files
def test_clean_file_has_no_problems(clean):
    for deep in (False, True):
        report = validate(clean, deep=deep)
        assert report.problems == [] and report.ok and not report.unreadable
    assert (
        repr(report) == f"ValidationReport({str(clean)!r}, deep=True, 0 errors, 0 warnings: clean)"
    )


def test_clean_ragged_file_has_no_problems(tmp_path):
    assert validate(_write(tmp_path / "mesh.h5", ragged=True), deep=True).problems == []


def test_problem_rejects_unknown_codes():
    with pytest.raises(ValueError, match="unknown problem code 'oops'"):
        Problem("oops", "/", "x")
    assert str(Problem("pending", "/status", "2 pending")) == "pending  /status  2 pending"


# ---------------------------------------------------------------------- unreadable files
def test_truncated_file(clean, tmp_path):
    raw = clean.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    report = validate(cut)
    p = _only(report, "truncated")
    assert report.codes == {"truncated"} and report.unreadable and not report.ok
    assert (
        f"is truncated ({len(raw) // 2} of {len(raw)} bytes); re-download or regenerate"
        in p.message
    )


def test_html_page_saved_as_h5(tmp_path):
    page = tmp_path / "page.h5"
    page.write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n")
    p = _only(validate(page), "not-hdf5")
    assert "is an HTML page, not HDF5" in p.message


def test_missing_and_random_files(tmp_path):
    assert _codes(tmp_path / "absent.h5") == {"not-found"}
    junk = tmp_path / "junk.h5"
    junk.write_bytes(bytes(range(256)) * 8)
    assert _codes(junk) == {"not-hdf5"}


def test_flipped_byte_in_a_chunk(clean):
    _flip_byte(clean, "u", 2)
    assert validate(clean).ok  # the shallow check reads no field data
    report = validate(clean, deep=True)
    p = _only(report, "chunk-corrupt")
    assert report.codes == {"chunk-corrupt"}
    assert p.location == "/fields/u[2]"
    assert "/fields/u sample 2" in p.message and "re-download or regenerate" in p.message
    with h5py.File(clean) as f:
        np.testing.assert_array_equal(read_sample_field(f, "u", 1).shape, (S, S))
        with pytest.raises(DataFileError, match=r"reading /fields/u sample 2 failed"):
            read_sample_field(f, "u", 2, clean)


# ---------------------------------------------------------------------- schema, attrs, fields
def test_schema_wrong_or_missing(clean):
    with h5py.File(clean, "r+") as f:
        f.attrs["schema"] = "neuralops-pde/2"
    p = _only(validate(clean), "schema-version")
    assert "found 'neuralops-pde/2', this neuralops reads 'neuralops-pde/1'" in p.message
    with h5py.File(clean, "r+") as f:
        del f.attrs["schema"]
    assert _codes(clean) == {"schema-missing"}


def test_required_attributes(clean):
    with h5py.File(clean, "r+") as f:
        del f.attrs["pde"]
        f.attrs["seed"] = "zero"
        f.attrs["grid"] = "hexagonal"
    report = validate(clean)
    assert report.codes == {"attr-missing", "attr-type", "attr-value"}
    assert "'pde' is missing" in _only(report, "attr-missing").message
    assert "'seed' is str 'zero', expected int" in _only(report, "attr-type").message


def test_missing_target_field(clean):
    with h5py.File(clean, "r+") as f:
        del f["fields/u"]
    report = validate(clean)
    assert "no-target" in report.codes and "no-input" not in report.codes
    with h5py.File(clean, "r+") as f:
        f["fields/a"].attrs["role"] = "param"
    assert {"no-input", "no-target"} <= _codes(clean)


def test_field_role_dims_length_and_coords(clean):
    with h5py.File(clean, "r+") as f:
        f["fields/a"].attrs["role"] = "output"
        f["fields/u"].attrs["dims"] = np.array(["sample", "x"], dtype=h5py.string_dtype())
        f.create_dataset("fields/b", shape=(N - 1, S, S), dtype=np.float32)
        f["fields/b"].attrs.update(
            role="input", units="1", dims=np.array(["sample", "x", "y"], dtype=h5py.string_dtype())
        )
        del f["coords/x"]
        f["coords/x"] = np.linspace(0, 1, S + 1)
        del f["coords/y"]
    report = validate(clean)
    assert "role 'output'" in _only(report, "field-role").message
    assert (
        "dims ['sample', 'x'] name 2 axes, but the dataset has 3"
        in _only(report, "field-dims").message
    )
    assert "expected n_samples = 6" in _only(report, "field-length").message
    assert {p.location for p in report.problems if p.code == "coords-mismatch"} == {"/coords/x"}
    assert {p.location for p in report.problems if p.code == "coords-missing"} == {
        "/fields/a",
        "/fields/b",
    }


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("fields", {"layout-missing"}),
        ("status", {"layout-missing"}),
        ("error", {"layout-missing", "failed-no-error"}),
        ("solver", {"layout-missing"}),
        ("splits", {"layout-missing", "stats-mismatch"}),  # stats now over every ok sample
        ("coords", {"layout-missing", "coords-missing"}),
        ("stats", {"stats-missing"}),
    ],
)
def test_missing_group_is_reported_not_crashed_on(tmp_path, name, codes):
    path = _write(tmp_path / "g.h5", failed=(4,))
    with h5py.File(path, "r+") as f:
        del f[name]
    report = validate(path, deep=True)
    assert codes <= report.codes, report.problems
    assert report.codes - codes <= {"failed", "digest-mismatch"}
    assert (main([str(path), "--deep"]) == 0) == report.ok


def test_malformed_dims_attribute(clean):
    with h5py.File(clean, "r+") as f:
        f["fields/a"].attrs["dims"] = "sample x y"  # not a list of names
    p = _only(validate(clean, deep=True), "attr-type")
    assert p.location == "/fields/a" and "'dims'" in p.message


# ---------------------------------------------------------------------- status
def test_pending_samples(tmp_path):
    report = validate(_write(tmp_path / "p.h5", pending=(4, 5)))
    assert report.codes == {"pending"} and not report.ok
    p = _only(report, "pending")
    assert "2 of 6 samples are pending" in p.message
    assert "neuralops generate RECIPE --resume" in p.message and "'tiny'" in p.message


def test_failed_samples_are_a_warning_with_their_own_code(tmp_path):
    report = validate(_write(tmp_path / "f.h5", failed=(2, 4)), deep=True)
    assert report.codes == {"failed"} and report.ok
    p = _only(report, "failed")
    assert p.severity == "warning"
    assert "2 of 6 samples failed (e.g. sample 2: 'CG stalled at sample 2')" in p.message


def test_failed_without_error_and_bad_status(tmp_path):
    path = _write(tmp_path / "f.h5", failed=(2,))
    with h5py.File(path, "r+") as f:
        f["error"][2] = ""
        f["status"][0] = 7
    report = validate(path)
    assert "sample 2" in _only(report, "failed-no-error").message
    assert "e.g. sample 0 = 7" in _only(report, "status-value").message
    assert "split-not-ok" in report.codes  # sample 0 is in train


def test_complete_flag_contradicts_pending(tmp_path):
    path = _write(tmp_path / "p.h5", pending=(5,))
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = True
    assert _codes(path) == {"pending", "complete-flag"}


# ---------------------------------------------------------------------- splits
def test_split_overlap(clean):
    _set_split(clean, "val", [2, 3])
    p = _only(validate(clean), "split-overlap")
    assert p.location == "/splits/train"
    assert "shares 1 samples with /splits/val, e.g. sample 2" in p.message


def test_split_unsorted(clean):
    _set_split(clean, "train", [2, 0, 1])
    assert "2 then 0 at positions 0, 1" in _only(validate(clean), "split-unsorted").message
    _set_split(clean, "train", [0, 1, 1, 2])
    assert _codes(clean) == {"split-unsorted"}


def test_split_out_of_range(clean):
    _set_split(clean, "test", [4, 5, 9])
    p = _only(validate(clean), "split-range")
    assert p.location == "/splits/test" and "1 indices outside [0, 6), e.g. 9" in p.message


def test_failed_or_pending_sample_in_split(tmp_path):
    path = _write(tmp_path / "f.h5", failed=(1,), pending=(5,))
    _set_split(path, "train", [0, 1, 2])
    _set_split(path, "test", [4, 5])
    report = validate(path)
    assert "e.g. sample 1" in _only(report, "failed-in-split").message
    assert "sample 5 with status 0" in _only(report, "split-not-ok").message


def test_split_dtype_and_names(clean):
    with h5py.File(clean, "r+") as f:
        f["splits/extra"] = np.array([0.5])
    report = validate(clean)
    assert report.codes == {"split-dtype", "split-name"}
    assert _only(report, "split-name").severity == "warning"


# ---------------------------------------------------------------------- offsets, recipe
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda off: off.__setitem__(0, 1), "starts at 1, expected 0"),
        (lambda off: off.__setitem__(3, 2), "decreases at sample 2: 7 -> 2"),
        (lambda off: off.__setitem__(6, 40), "ends at 40, but /fields/a has 33 rows"),
    ],
)
def test_bad_ragged_offsets(tmp_path, edit, message):
    path = _write(tmp_path / "mesh.h5", ragged=True)
    with h5py.File(path, "r+") as f:
        off = f["mesh/offsets"][...]
        np.testing.assert_array_equal(off, [0, 3, 7, 12, 18, 25, 33])
        edit(off)
        f["mesh/offsets"][...] = off
    report = validate(path)
    assert report.codes == {"offsets"}
    assert any(message in p.message for p in report.problems), report.problems


def test_recipe_hash_mismatch(clean):
    with h5py.File(clean, "r+") as f:
        f.attrs["recipe"] = RECIPE.replace("tiny", "huge")
    p = _only(validate(clean), "recipe-hash")
    assert p.location == "/" and "does not match the stored recipe text" in p.message


# ---------------------------------------------------------------------- deep
def test_nan_in_ok_sample_found_by_deep_check(tmp_path):
    path = _write(tmp_path / "nan.h5", nan_at=("u", 4, (5, 3)))
    assert validate(path).ok  # only the deep pass reads sample values
    report = validate(path, deep=True)
    assert report.codes == {"nonfinite"}
    p = _only(report, "nonfinite")
    assert p.location == "/fields/u[4]"
    assert "ok sample 4 holds 1 non-finite values, the first nan at index (5, 3)" in p.message


def test_stats_mismatch(clean):
    with h5py.File(clean, "r+") as f:
        f["stats/a/mean"][0] *= 1 + 1e-5
    report = validate(clean, deep=True)
    assert report.codes == {"stats-mismatch", "digest-mismatch"}
    assert _only(report, "stats-mismatch").location == "/stats/a/mean"
    with h5py.File(clean, "r+") as f:
        del f["stats/u/std"]
        f["stats/u/std"] = np.ones(2)
    assert "expected (1,)" in _only(validate(clean), "stats-mismatch").message


def test_stats_within_tolerance_pass(clean):
    with h5py.File(clean, "r+") as f:
        f["stats/a/mean"][0] *= 1 + 1e-8
        f.attrs["content_sha256"] = __import__("neuralops").data.content_digest(f)
    assert validate(clean, deep=True).problems == []


def test_digest_mismatch(clean):
    with h5py.File(clean, "r+") as f:
        f["fields/u"][4, 0, 0] += 1.0  # a test sample: statistics are unchanged
    assert _codes(clean, deep=True) == {"digest-mismatch"}


def test_no_checksum_is_a_warning(tmp_path):
    report = validate(_write(tmp_path / "n.h5", fletcher32=False))
    assert report.codes == {"no-checksum"} and report.ok


def test_every_code_is_documented():
    assert all(isinstance(v, str) and v for v in CODES.values())
    assert {"truncated", "chunk-corrupt", "pending", "failed", "split-overlap", "offsets"} <= set(
        CODES
    )


# ---------------------------------------------------------------------- neuralops info
def test_info_summary_text(tmp_path, capsys):
    path = _write(tmp_path / "f.h5", failed=(5,))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "pde         darcy" in out
    assert "samples     6 (5 ok, 1 failed, 0 pending; complete)" in out
    assert "u     target  (6, 8, 8)  m      float32" in out
    assert "x: 8 points in [0, 1] (uniform)" in out
    assert "splits      train 3, val 1, test 1" in out
    assert "over 5 ok samples, 5 converged" in out
    assert re.search(r"iterations\s+20\s+20.4\s+22\s+23.6\s+24\s+22\n", out)
    assert "schema      neuralops-pde/1" in out and "digest      sha256 " in out
    assert "check" not in out


def test_info_check_return_codes(tmp_path, capsys):
    clean = _write(tmp_path / "c.h5")
    assert main([str(clean), "--check"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("check: ok, no problems")
    failed = _write(tmp_path / "f.h5", failed=(1,))
    assert main([str(failed), "--check"]) == 0
    out = capsys.readouterr().out
    assert "check: 0 errors, 1 warning\nwarnings:\n  failed  /status  1 of 6 samples failed" in out
    pending = _write(tmp_path / "p.h5", pending=(3,))
    assert main([str(pending)]) == 0  # info alone describes, it does not judge
    assert "1 pending; incomplete" in capsys.readouterr().out
    assert main([str(pending), "--check"]) == 1
    assert "errors:\n  pending  /status  1 of 6 samples are pending" in capsys.readouterr().out


def test_info_deep_finds_corrupt_chunk(clean, capsys):
    _flip_byte(clean, "a", 0)
    assert main([str(clean), "--check"]) == 0
    capsys.readouterr()
    assert main([str(clean), "--deep"]) == 1
    assert "chunk-corrupt  /fields/a[0]" in capsys.readouterr().out


def test_info_unreadable_file(tmp_path, capsys):
    page = tmp_path / "page.h5"
    page.write_text("<html><head><title>Error</title></head></html>")
    for extra in ([], ["--check"]):
        assert main([str(page), *extra]) == 1
        err = capsys.readouterr().err
        assert "is an HTML page, not HDF5" in err and "re-download or regenerate" in err


def test_info_json(tmp_path, capsys):
    path = _write(tmp_path / "f.h5", failed=(5,))
    assert main([str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d == info_dict(path)
    assert d["status"] == {"ok": 5, "failed": 1, "pending": 0}
    assert d["fields"]["u"]["role"] == "target" and d["fields"]["u"]["shape"] == [6, 8, 8]
    assert d["splits"] == {"train": 3, "val": 1, "test": 1}
    assert d["solver"]["iterations"]["max"] == 24.0 and d["solver"]["converged"] == 5
    assert d["spatial_dims"] == ["x", "y"] and d["complete"] is True
    assert main([str(path), "--json", "--check"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["check"]["ok"] is True
    assert [p["code"] for p in d["check"]["problems"]] == ["failed"]
    shutil.copy(path, tmp_path / "g.h5")
    with h5py.File(tmp_path / "g.h5", "r+") as f:
        f.attrs["schema"] = "other/3"
    assert main([str(tmp_path / "g.h5"), "--json", "--check"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["schema"] == "other/3" and d["check"]["problems"][0]["code"] == "schema-version"
