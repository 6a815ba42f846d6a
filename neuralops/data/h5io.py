"""Reading and checking schema-v1 files: opening with clear errors, per-sample reads, the
train statistics and the content digest (shared by the writer, the validator and the readers)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import h5py
import numpy as np

from neuralops.data.errors import DataError, DataFileError, SchemaVersionError

__all__ = [
    "SCHEMA_ID",
    "open_file",
    "check_schema",
    "read_sample_field",
    "str_list",
    "compute_stats",
    "write_stats",
    "content_digest",
]

SCHEMA_ID = "neuralops-pde/1"


# ---------------------------------------------------------------------- statistics
def _sample_channels(f: h5py.File, name: str, i: int) -> np.ndarray:
    """Sample ``i`` of field ``name`` as a float64 array (values, channels)."""
    ds = f["fields"][name]
    dims = str_list(ds.attrs["dims"])
    if f.attrs["grid"] == "mesh":
        off = f["mesh/offsets"]
        a = ds[int(off[i]) : int(off[i + 1])]
        return a.reshape(-1, a.shape[-1] if a.ndim > 1 else 1).astype(np.float64)
    a = ds[i].astype(np.float64)
    if dims[-1] == "component":
        return a.reshape(-1, a.shape[-1])
    return a.reshape(-1, 1)


def compute_stats(f: h5py.File, indices: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per-channel mean/std/min/max of every field over ``indices``, streamed in float64.

    Per-sample moments are merged with Chan's parallel formula, so memory holds one sample.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in f["fields"]:
        n = 0
        mean = m2 = lo = hi = None
        for i in np.asarray(indices, dtype=np.int64):
            a = _sample_channels(f, name, int(i))
            if a.shape[0] == 0:
                continue
            k = a.shape[0]
            mu = a.mean(axis=0)
            s2 = ((a - mu) ** 2).sum(axis=0)
            if mean is None:
                n, mean, m2, lo, hi = k, mu, s2, a.min(axis=0), a.max(axis=0)
                continue
            delta = mu - mean
            tot = n + k
            mean = mean + delta * (k / tot)
            m2 = m2 + s2 + delta**2 * (n * k / tot)
            n = tot
            lo = np.minimum(lo, a.min(axis=0))
            hi = np.maximum(hi, a.max(axis=0))
        if mean is None:
            continue
        out[name] = {"mean": mean, "std": np.sqrt(m2 / max(n, 1)), "min": lo, "max": hi}
    return out


def write_stats(f: h5py.File, indices: np.ndarray) -> None:
    g = f.require_group("stats")
    for name in list(g):
        del g[name]
    for name, st in compute_stats(f, indices).items():
        sg = g.create_group(name)
        for key, value in st.items():
            sg.create_dataset(key, data=np.asarray(value, dtype=np.float64))
        sg.attrs["n_samples"] = len(indices)


# ---------------------------------------------------------------------- digest
def content_digest(f: h5py.File) -> str:
    """sha256 over every deterministic dataset: name, dtype, shape and bytes, in name order.

    Datasets with attribute ``nondeterministic=True`` (``solver/seconds``) and the ``created``
    attribute are excluded, so two runs of one recipe give the same digest. Large datasets are
    read one leading-axis slab at a time, so memory stays flat.
    """
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    h = hashlib.sha256()
    for name in sorted(names):
        ds = f[name]
        if ds.attrs.get("nondeterministic", False):
            continue
        h.update(name.encode())
        h.update(str(ds.dtype).encode() if ds.dtype.kind != "O" else b"utf8")
        h.update(str(ds.shape).encode())
        if ds.shape and ds.shape[0] > 0:
            if ds.dtype.kind == "O":
                for s in ds.asstr()[...]:
                    h.update(s.encode() + b"\0")
                continue
            step = max(1, (64 * 2**20) // max(1, ds.dtype.itemsize * int(np.prod(ds.shape[1:]))))
            for start in range(0, ds.shape[0], step):
                h.update(np.ascontiguousarray(ds[start : start + step]).tobytes())
        elif ds.shape == ():
            h.update(np.asarray(ds[()]).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------- reading
def _describe_not_hdf5(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512).lstrip().lower()
    except OSError:
        head = b""
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        return "is an HTML page, not HDF5 (a download saved an error page?)"
    if not head:
        return "is empty"
    return "is not an HDF5 file (file signature not found)"


def open_file(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning h5py's low-level errors into :class:`DataFileError`."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file; check the path or generate the dataset first")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        msg = str(exc)
        size = path.stat().st_size
        if "truncated file" in msg:
            m = re.search(r"eof = (\d+),.*?stored_eof = (\d+)", msg)
            found, expected = (int(m.group(1)), int(m.group(2))) if m else (size, -1)
            raise DataFileError(
                f"{path} is truncated ({found} of {expected} bytes); re-download or regenerate"
            ) from exc
        if "signature" in msg:
            raise DataFileError(
                f"{path} {_describe_not_hdf5(path)}; re-download or regenerate"
            ) from exc
        raise DataFileError(
            f"{path}: cannot open as HDF5 ({msg}); re-download or regenerate"
        ) from exc


def check_schema(f: h5py.File, path: str | os.PathLike = "") -> None:
    """Raise :class:`SchemaVersionError` unless the file declares ``neuralops-pde/1``."""
    found = f.attrs.get("schema")
    if isinstance(found, bytes):
        found = found.decode()
    if found is None:
        raise SchemaVersionError(
            f"{path}: no 'schema' attribute; this neuralops reads {SCHEMA_ID!r}. Foreign files "
            "(PDEBench, The Well) open with neuralops.data.open_dataset"
        )
    if found != SCHEMA_ID:
        raise SchemaVersionError(f"{path}: found {found!r}, this neuralops reads {SCHEMA_ID!r}")


def read_sample_field(f: h5py.File, name: str, i: int, path: str | os.PathLike = "") -> np.ndarray:
    """Read sample ``i`` of field ``name``, naming dataset and sample when HDF5 fails."""
    try:
        ds = f["fields"][name]
        if f.attrs.get("grid") == "mesh":
            off = f["mesh/offsets"]
            return ds[int(off[i]) : int(off[i + 1])]
        return ds[i]
    except OSError as exc:
        raise DataFileError(
            f"{path}: reading /fields/{name} sample {i} failed ({exc}); the file is corrupt: "
            "re-download or regenerate"
        ) from exc


def str_list(value) -> list[str]:
    """Decode a list-of-strings attribute (``dims``, ``spatial_dims``, ``channels``)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"attribute is not a list of names: {value!r}") from exc
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)]
