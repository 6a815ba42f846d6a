"""Check a schema-v1 file (data.md 1.4) and describe it for ``neuralops info``.

:func:`validate` runs every check and returns a :class:`ValidationReport`; each finding is a
:class:`Problem` with a stable short code (listed in :data:`CODES`), the HDF5 location it concerns
and a message that says what is wrong and how to fix it. Warnings (failed samples, no checksum)
leave a file usable; errors do not. ``deep=True`` also reads every ok sample, one at a time.

:func:`summarize` is the text of ``neuralops info``; :func:`info_dict` the same as a JSON-ready dict
(both in :mod:`neuralops.data.summary`, re-exported here). The record types live in
:mod:`neuralops.data.problems`, the deep pass in :mod:`neuralops.data.deep_check`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from itertools import combinations
from pathlib import Path

import h5py
import numpy as np

from neuralops.data.deep_check import STAT_KEYS, deep_findings, n_channels
from neuralops.data.errors import DataError, DataFileError
from neuralops.data.problems import CODES, Problem, ValidationReport
from neuralops.data.schema import (
    FAILED,
    OK,
    PENDING,
    REQUIRED_ATTRS,
    ROLES,
    SCHEMA_ID,
    open_file,
    str_list,
)
from neuralops.data.summary import info_dict, summarize

__all__ = ["CODES", "Problem", "ValidationReport", "validate", "summarize", "info_dict"]

log = logging.getLogger(__name__)

#: datasets with one row per sample, besides fields and params
_PER_SAMPLE = (
    "status",
    "error",
    "solver/iterations",
    "solver/residual",
    "solver/seconds",
    "solver/converged",
)


def validate(path: str | os.PathLike, deep: bool = False) -> ValidationReport:
    """Run the checks of data.md 1.4 on ``path``; ``deep`` also reads every ok sample.

    The deep pass reads one sample of one field at a time (fletcher32 verifies each chunk),
    reports the first NaN/Inf per field, recomputes the train statistics and ``content_sha256``.
    """
    path = Path(path)
    report = ValidationReport(path, deep=deep)
    try:
        f = open_file(path)
    except DataFileError as exc:
        report.problems.append(Problem(_open_code(str(exc)), str(path), str(exc)))
        return report
    with f:
        _Checker(f, path, report.problems).run(deep)
    log.debug("validated %s: %r", path, report)
    return report


def _open_code(message: str) -> str:
    if "truncated" in message:
        return "truncated"
    if "no such file" in message:
        return "not-found"
    if "HTML" in message or "not an HDF5" in message or "is empty" in message:
        return "not-hdf5"
    return "unreadable"


def _attr(f: h5py.File, name: str):
    value = f.attrs.get(name)
    return value.decode() if isinstance(value, bytes) else value


def _is_type(value, kind: type) -> bool:
    if kind is str:
        return isinstance(value, str)
    if kind is bool:
        return isinstance(value, bool | np.bool_)
    if kind is int:
        return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if kind is np.ndarray:  # a list of names
        return isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "OSU"
    return isinstance(value, kind)


class _Checker:
    def __init__(self, f: h5py.File, path: Path, problems: list[Problem]) -> None:
        self.f, self.path, self.problems = f, path, problems
        self.n: int | None = None
        self.status: np.ndarray | None = None
        self.ragged = False

    def err(self, code: str, location: str, message: str) -> None:
        self.problems.append(Problem(code, location, message))

    def warn(self, code: str, location: str, message: str) -> None:
        self.problems.append(Problem(code, location, message, severity="warning"))

    def run(self, deep: bool) -> None:
        if not self.check_schema():
            return
        self.check_attrs()
        self.check_layout()
        self.check_fields()
        self.check_status()
        self.check_splits()
        if self.ragged:
            self.check_offsets()
        self.check_recipe()
        self.check_stats_present()
        if deep:
            self.check_deep()

    # ------------------------------------------------------------------ 2. schema and attrs
    def check_schema(self) -> bool:
        found = _attr(self.f, "schema")
        if found is None:
            self.err(
                "schema-missing",
                "/",
                f"no 'schema' attribute; this neuralops reads "
                f"{SCHEMA_ID!r}. Foreign files (PDEBench, The Well) open with "
                "neuralops.data.open_dataset, and `neuralops convert` rewrites them",
            )
            return False
        if found != SCHEMA_ID:
            self.err(
                "schema-version",
                "/",
                f"found {found!r}, this neuralops reads {SCHEMA_ID!r}; "
                "use the neuralops version that wrote the file",
            )
            return False
        return True

    def check_attrs(self) -> None:
        f = self.f
        for name, kind in REQUIRED_ATTRS.items():
            if name not in f.attrs:
                self.err(
                    "attr-missing",
                    "/",
                    f"required attribute {name!r} is missing (data.md table 1.1)",
                )
                continue
            value = _attr(f, name)
            if not _is_type(value, kind):
                want = "a list of names" if kind is np.ndarray else kind.__name__
                self.err(
                    "attr-type",
                    "/",
                    f"attribute {name!r} is {type(value).__name__} {value!r}, expected {want}",
                )
        grid = _attr(f, "grid")
        if isinstance(grid, str) and grid not in ("cartesian", "mesh"):
            self.err("attr-value", "/", f"grid is {grid!r}, expected 'cartesian' or 'mesh'")
        self.ragged = grid == "mesh"
        n = _attr(f, "n_samples")
        if _is_type(n, int):
            if n < 1:
                self.err("attr-value", "/", f"n_samples is {n}, expected >= 1")
            else:
                self.n = int(n)
        digest = _attr(f, "content_sha256")
        if digest is None:
            self.warn(
                "attr-missing",
                "/",
                "no 'content_sha256': the file was never finalized, "
                "so statistics and digest are absent; regenerate or resume it",
            )
        elif not (isinstance(digest, str) and len(digest) == 64):
            self.err("attr-type", "/", f"content_sha256 is {digest!r}, expected 64 hex digits")

    def check_layout(self) -> None:
        f = self.f
        required = ["fields", "splits", *_PER_SAMPLE] + ([] if self.ragged else ["coords"])
        for name in required:
            if name not in f:
                self.err("layout-missing", f"/{name}", f"/{name} is missing (data.md section 1)")
        if self.n is None and isinstance(f.get("status"), h5py.Dataset):
            self.n = f["status"].shape[0] if f["status"].ndim else None
        if self.n is None:
            return
        for name in [*_PER_SAMPLE, *(f"params/{p}" for p in f.get("params", {}))]:
            ds = f.get(name)
            if isinstance(ds, h5py.Dataset) and (ds.ndim == 0 or ds.shape[0] != self.n):
                self.err(
                    "length-mismatch",
                    f"/{name}",
                    f"shape {ds.shape}, expected {self.n} rows (n_samples)",
                )

    # ------------------------------------------------------------------ 3. fields
    def check_fields(self) -> None:
        fields = self.f.get("fields")
        if not isinstance(fields, h5py.Group):
            return
        spatial = self._names(self.f, "spatial_dims", "/") or []
        coords = self.f.get("coords", {})
        n_in = n_out = 0
        for name, ds in fields.items():
            loc = f"/fields/{name}"
            if not isinstance(ds, h5py.Dataset):
                self.err("field-dims", loc, "is a group, expected a dataset")
                continue
            if ds.dtype.kind != "f":
                self.err("field-dtype", loc, f"dtype {ds.dtype}, expected float32 or float64")
            role = ds.attrs.get("role")
            role = role.decode() if isinstance(role, bytes) else role
            if role not in ROLES:
                self.err("field-role", loc, f"role {role!r}, expected one of {ROLES}")
            else:
                n_in += "input" in role
                n_out += "target" in role
            if "units" not in ds.attrs:
                self.warn("attr-missing", loc, "no 'units' attribute (SI string or '1')")
            if not self.ragged and self.n is not None and (ds.ndim == 0 or ds.shape[0] != self.n):
                self.err(
                    "field-length",
                    loc,
                    f"shape {ds.shape}: leading length "
                    f"{ds.shape[0] if ds.ndim else None}, expected n_samples = {self.n}",
                )
            self._check_storage(ds, loc)
            dims = self._names(ds, "dims", loc)
            if dims is None:
                self.err("field-dims", loc, f"no 'dims' attribute naming its {ds.ndim} axes")
                continue
            if len(dims) != ds.ndim:
                self.err(
                    "field-dims",
                    loc,
                    f"dims {dims} name {len(dims)} axes, "
                    f"but the dataset has {ds.ndim} (shape {ds.shape})",
                )
                continue
            lead = "node" if self.ragged else "sample"
            if dims[0] != lead:
                self.err("field-dims", loc, f"dims {dims} must start with {lead!r}")
            channels = self._names(ds, "channels", loc)
            if channels is not None:
                if dims[-1] != "component" or len(channels) != ds.shape[-1]:
                    self.err(
                        "field-dims",
                        loc,
                        f"channels {channels} need a trailing "
                        f"'component' axis of that length (dims {dims}, shape {ds.shape})",
                    )
            if not self.ragged:
                self._check_coords(loc, ds, dims, spatial, coords)
        if n_in == 0:
            self.err("no-input", "/fields", f"no field has role 'input' (fields: {list(fields)})")
        if n_out == 0:
            self.err("no-target", "/fields", f"no field has role 'target' (fields: {list(fields)})")

    def _names(self, obj: h5py.HLObject, attr: str, loc: str) -> list[str] | None:
        """A list-of-names attribute, or None when absent or unreadable (then reported)."""
        if attr not in obj.attrs:
            return None
        try:
            return str_list(obj.attrs[attr])
        except DataError as exc:
            self.err("attr-type", loc, f"attribute {attr!r}: {exc}")
            return None

    def _check_storage(self, ds: h5py.Dataset, loc: str) -> None:
        if not ds.fletcher32:
            self.warn(
                "no-checksum",
                loc,
                "stored without fletcher32: corrupt chunks read "
                "silently; regenerate with run.fletcher32 = true",
            )
        if not self.ragged and (ds.chunks is None or ds.chunks[0] != 1):
            self.warn(
                "chunking",
                loc,
                f"chunks {ds.chunks}: one sample per chunk (1, ...) keeps random reads cheap",
            )

    def _check_coords(self, loc, ds, dims, spatial, coords) -> None:
        for axis, dim in enumerate(dims[1:], start=1):
            if dim == "component":
                continue
            key = "t" if dim == "time" else dim
            if dim != "time" and dim not in spatial:
                self.warn(
                    "field-dims",
                    loc,
                    f"axis {axis} is named {dim!r}, which is not one "
                    f"of the spatial dims {spatial}, 'time' or 'component'",
                )
                continue
            c = coords.get(key)
            if c is None:
                self.err(
                    "coords-missing",
                    loc,
                    f"axis {axis} ({dim!r}, length {ds.shape[axis]}) has no /coords/{key}",
                )
            elif c.ndim != 1 or c.shape[0] != ds.shape[axis]:
                self.err(
                    "coords-mismatch",
                    f"/coords/{key}",
                    f"shape {c.shape}, but axis "
                    f"{axis} ({dim!r}) of {loc} has length {ds.shape[axis]}",
                )

    # ------------------------------------------------------------------ 4. status, splits
    def check_status(self) -> None:
        ds = self.f.get("status")
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
            return
        st = ds[...]
        self.status = st
        bad = np.flatnonzero(~np.isin(st, (PENDING, OK, FAILED)))
        if bad.size:
            self.err(
                "status-value",
                "/status",
                f"{bad.size} samples have a status outside "
                f"0 pending / 1 ok / 2 failed, e.g. sample {bad[0]} = {st[bad[0]]}",
            )
        n, pending = st.size, int((st == PENDING).sum())
        if pending:
            self.err(
                "pending",
                "/status",
                f"{pending} of {n} samples are pending (generation "
                f"was interrupted); finish them with `neuralops generate RECIPE --resume`"
                f"{self._recipe_hint()}",
            )
        complete = _attr(self.f, "complete")
        if complete is not None and bool(complete) and pending:
            self.err("complete-flag", "/", f"complete=True but {pending} samples are pending")
        elif complete is not None and not bool(complete) and not pending and not bad.size:
            self.warn(
                "complete-flag",
                "/",
                "complete=False though no sample is pending: the "
                "file was not finalized (statistics and digest may be stale)",
            )
        failed = np.flatnonzero(st == FAILED)
        if failed.size:
            errors = self._errors(failed)
            self.warn(
                "failed",
                "/status",
                f"{failed.size} of {n} samples failed (e.g. sample "
                f"{failed[0]}: {errors[0]!r}); they are in no split and never read as data",
            )
            missing = failed[np.array([not e for e in errors], dtype=bool)]
            if missing.size:
                self.err(
                    "failed-no-error",
                    "/error",
                    f"{missing.size} failed samples have no "
                    f"error message, e.g. sample {missing[0]}",
                )

    def _errors(self, idx: np.ndarray) -> list[str]:
        ds = self.f.get("error")
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "OSU":
            return [""] * idx.size
        idx = idx[idx < ds.shape[0]]
        values = ds.asstr()[idx] if idx.size else []
        return [str(v) for v in values] + [""] * (len(idx) - len(values))

    def _recipe_hint(self) -> str:
        try:
            name = tomllib.loads(_attr(self.f, "recipe") or "")["dataset"]["name"]
        except (tomllib.TOMLDecodeError, KeyError, TypeError):
            return ""
        return f", RECIPE being the recipe of dataset {name!r} (its text is in attribute 'recipe')"

    def check_splits(self) -> None:
        splits = self.f.get("splits")
        if not isinstance(splits, h5py.Group):
            return
        n, st = self.n, self.status
        valid: dict[str, np.ndarray] = {}
        for name, ds in splits.items():
            loc = f"/splits/{name}"
            if name not in ("train", "val", "test"):
                self.warn("split-name", loc, "splits are named train, val and test")
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iu":
                self.err("split-dtype", loc, "expected a 1-D int64 array of sample indices")
                continue
            idx = ds[...].astype(np.int64)
            step = np.flatnonzero(np.diff(idx) <= 0)
            if step.size:
                j = step[0]
                self.err(
                    "split-unsorted",
                    loc,
                    f"not strictly increasing: {idx[j]} then "
                    f"{idx[j + 1]} at positions {j}, {j + 1}; sort and deduplicate",
                )
            if n is not None:
                out = idx[(idx < 0) | (idx >= n)]
                if out.size:
                    self.err(
                        "split-range", loc, f"{out.size} indices outside [0, {n}), e.g. {out[0]}"
                    )
                idx = idx[(idx >= 0) & (idx < n)]
            valid[name] = idx
            if st is None or (n is not None and st.size != n):
                continue
            idx = idx[idx < st.size]
            failed = idx[st[idx] == FAILED]
            if failed.size:
                self.err(
                    "failed-in-split",
                    loc,
                    f"{failed.size} failed samples are in the "
                    f"split, e.g. sample {failed[0]}; failed samples belong to no split",
                )
            other = idx[(st[idx] != OK) & (st[idx] != FAILED)]
            if other.size:
                self.err(
                    "split-not-ok",
                    loc,
                    f"{other.size} samples that are not ok (pending or "
                    f"invalid status) are in the split, e.g. sample {other[0]} with status "
                    f"{st[other[0]]}",
                )
        for a, b in combinations(sorted(valid), 2):
            both = np.intersect1d(valid[a], valid[b])
            if both.size:
                self.err(
                    "split-overlap",
                    f"/splits/{a}",
                    f"shares {both.size} samples with "
                    f"/splits/{b}, e.g. sample {both[0]}; splits must be disjoint",
                )
        if "train" not in splits:
            self.warn(
                "split-missing",
                "/splits",
                "no train split: statistics and the default "
                "PDEDataset(split='train') have nothing to use",
            )

    # ------------------------------------------------------------------ 5. offsets, recipe
    def check_offsets(self) -> None:
        f = self.f
        off_ds = f.get("mesh/offsets")
        if not isinstance(off_ds, h5py.Dataset):
            self.err("offsets", "/mesh/offsets", "missing: ragged files need (N+1,) CSR offsets")
            return
        rows = {
            f"/fields/{k}": v.shape[0]
            for k, v in f.get("fields", {}).items()
            if isinstance(v, h5py.Dataset) and v.ndim
        }
        if isinstance(f.get("mesh/pos"), h5py.Dataset):
            rows["/mesh/pos"] = f["mesh/pos"].shape[0]
        want = None if self.n is None else self.n + 1
        self._check_csr("/mesh/offsets", off_ds[...], want, rows)
        if isinstance(f.get("mesh/cell_offsets"), h5py.Dataset) and "mesh/cells" in f:
            self._check_csr(
                "/mesh/cell_offsets",
                f["mesh/cell_offsets"][...],
                want,
                {"/mesh/cells": f["mesh/cells"].shape[0]},
            )

    def _check_csr(self, loc: str, off: np.ndarray, want: int | None, rows: dict) -> None:
        if off.ndim != 1 or (want is not None and off.size != want):
            self.err("offsets", loc, f"shape {off.shape}, expected ({want},) = n_samples + 1")
            return
        if off.size == 0:
            return
        if off[0] != 0:
            self.err("offsets", loc, f"starts at {off[0]}, expected 0")
        drop = np.flatnonzero(np.diff(off) < 0)
        if drop.size:
            i = drop[0]
            self.err(
                "offsets",
                loc,
                f"decreases at sample {i}: {off[i]} -> {off[i + 1]}; offsets must never decrease",
            )
        for where, count in rows.items():
            if off[-1] != count:
                self.err("offsets", loc, f"ends at {off[-1]}, but {where} has {count} rows")

    def check_recipe(self) -> None:
        text, stored = _attr(self.f, "recipe"), _attr(self.f, "recipe_sha256")
        if not (isinstance(text, str) and isinstance(stored, str)):
            return
        actual = hashlib.sha256(text.encode()).hexdigest()
        if actual != stored:
            self.err(
                "recipe-hash",
                "/",
                f"recipe_sha256 {stored[:12]}... does not match the "
                f"stored recipe text ({actual[:12]}...): the recipe was edited afterwards",
            )

    def check_stats_present(self) -> None:
        f = self.f
        if "content_sha256" not in f.attrs or not isinstance(f.get("fields"), h5py.Group):
            return
        train = self._train()
        if train is None or train.size == 0:
            return
        stats = f.get("stats", {})
        for name, ds in f["fields"].items():
            g = stats.get(name) if isinstance(stats, h5py.Group) else None
            if not isinstance(g, h5py.Group) or any(k not in g for k in STAT_KEYS):
                self.warn(
                    "stats-missing",
                    f"/stats/{name}",
                    "no mean/std/min/max for this field "
                    "(normalizers need them); regenerate or recompute the statistics",
                )
                continue
            if not isinstance(ds, h5py.Dataset):
                continue
            c = n_channels(ds, self.ragged)
            for key in STAT_KEYS:
                if g[key].shape != (c,):
                    self.err(
                        "stats-mismatch",
                        f"/stats/{name}/{key}",
                        f"shape {g[key].shape}, expected ({c},): one value per channel",
                    )

    def _train(self) -> np.ndarray | None:
        """The indices ``finalize`` computed statistics over: the train split, else every ok."""
        st = self.status
        if st is None:
            return None
        split = self.f.get("splits/train")
        if isinstance(split, h5py.Dataset) and split.ndim == 1 and split.dtype.kind in "iu":
            idx = split[...].astype(np.int64)
            idx = idx[(idx >= 0) & (idx < st.size)]
            return idx[st[idx] == OK]
        return np.flatnonzero(st == OK)

    # ------------------------------------------------------------------ 6. deep
    def check_deep(self) -> None:
        train = self._train()
        if self.status is None or train is None:
            return
        self.problems += deep_findings(self.f, self.path, self.status, train, self.ragged)
