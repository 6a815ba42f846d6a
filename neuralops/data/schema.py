"""HDF5 schema ``neuralops-pde/1``: layout constants, the writer, and the content digest.

One dataset is one ``.h5`` file::

    /                      attrs: schema, pde, recipe, recipe_sha256, package_version, seed, created,
                           grid, n_samples, spatial_dims, complete, content_sha256
    /fields/<name>         (N, [T,] *S[, C]) float32 grid field, or (rows, C) for ragged meshes
    /coords/x, y, z, t     1-D float64 axes
    /params/<name>         (N,) or (N, k)
    /status                (N,) uint8: 0 pending, 1 ok, 2 failed
    /error                 (N,) UTF-8 strings, empty unless failed
    /solver/iterations|residual|seconds|converged
    /splits/train|val|test sorted int64 indices of ok samples
    /stats/<field>/mean|std|min|max   per channel, float64, train split only
    /mesh/offsets, /mesh/pos          ragged files only

The writer is only ever used on a ``.partial`` file by a single process; :meth:`DatasetWriter.finalize`
computes the train statistics and the content digest and sets ``complete`` last.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from neuralops._version import __version__
from neuralops.data.h5io import (
    SCHEMA_ID,
    check_schema,
    compute_stats,
    content_digest,
    open_file,
    read_sample_field,
    str_list,
    write_stats,
)

__all__ = [
    "SCHEMA_ID",
    "PENDING",
    "OK",
    "FAILED",
    "ROLES",
    "FieldSpec",
    "ParamSpec",
    "SolverRecord",
    "DatasetWriter",
    "content_digest",
    "open_file",
    "check_schema",
    "field_channel_axis",
    "read_sample_field",
    "str_list",
    "compute_stats",
    "write_stats",
]

PENDING, OK, FAILED = 0, 1, 2
ROLES = ("input", "target", "param", "input,target")
REQUIRED_ATTRS = {
    "schema": str,
    "pde": str,
    "recipe": str,
    "recipe_sha256": str,
    "package_version": str,
    "seed": int,
    "created": str,
    "grid": str,
    "n_samples": int,
    "spatial_dims": np.ndarray,
    "complete": bool,
}
#: a sample larger than this is chunked per frame instead of per sample (data.md 1.3)
MAX_SAMPLE_CHUNK_BYTES = 4 * 2**20
RAGGED_CHUNK_ROWS = 65536


@dataclass(frozen=True)
class FieldSpec:
    """One field of a dataset.

    ``shape`` is the per-sample shape on disk, without the leading sample axis:
    ``([T,] *S[, C])`` for grid data, ``(C,)`` for ragged mesh data (rows are per sample).
    ``dims`` names every axis on disk including ``"sample"`` (``"node"`` for ragged rows) and,
    for vector fields, a trailing ``"component"`` axis whose names are ``channels``.
    """

    name: str
    role: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    units: str = "1"
    channels: tuple[str, ...] | None = None
    description: str = ""
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"field {self.name!r}: role {self.role!r} is not one of {ROLES}")
        if np.dtype(self.dtype).kind != "f":
            raise ValueError(f"field {self.name!r}: dtype must be floating, got {self.dtype}")
        if len(self.dims) != len(self.shape) + 1:
            raise ValueError(
                f"field {self.name!r}: dims {self.dims} must name the sample axis plus the "
                f"{len(self.shape)} axes of shape {self.shape}"
            )
        if self.channels is not None and (
            self.dims[-1] != "component" or len(self.channels) != self.shape[-1]
        ):
            raise ValueError(
                f"field {self.name!r}: channels {self.channels} need a trailing 'component' "
                f"axis of the same length (shape {self.shape}, dims {self.dims})"
            )


@dataclass(frozen=True)
class ParamSpec:
    """A per-sample parameter: ``shape`` is () for a scalar or (k,) for a vector."""

    name: str
    shape: tuple[int, ...] = ()
    units: str = "1"
    distribution: str = ""
    dtype: str = "float64"


@dataclass(frozen=True)
class SolverRecord:
    """Per-sample solver statistics stored under ``/solver``."""

    iterations: int = 0
    residual: float = float("nan")
    seconds: float = 0.0
    converged: bool = False


def field_channel_axis(spec_dims: Iterable[str]) -> int | None:
    """Axis (in per-sample coordinates) of the component axis of a vector field, or None."""
    dims = list(spec_dims)[1:]
    return len(dims) - 1 if dims and dims[-1] == "component" else None


def _chunks(shape: tuple[int, ...], dims: tuple[str, ...], itemsize: int) -> tuple[int, ...]:
    per_sample = (1, *shape)
    if int(np.prod(shape, dtype=np.int64)) * itemsize > MAX_SAMPLE_CHUNK_BYTES and (
        len(dims) > 1 and dims[1] == "time"
    ):
        return (1, 1, *shape[1:])
    return per_sample


class DatasetWriter:
    """Create a schema-v1 file and fill it sample by sample.

    Parameters
    ----------
    path:
        The file to create (normally ``<out>.partial``). An existing file is truncated.
    pde, n_samples, seed, recipe_text, spatial_dims:
        File attributes (data.md table 1.1).
    fields:
        One :class:`FieldSpec` per field.
    coords:
        1-D axes, e.g. ``{"x": ..., "y": ...}``; ``"t"`` for time series.
    params:
        Parameter specs; values come with every :meth:`write_sample`.
    ragged:
        Mesh data: fields are ``(rows, C)`` and samples must be written in index order.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        pde: str,
        n_samples: int,
        fields: list[FieldSpec],
        spatial_dims: list[str],
        coords: Mapping[str, np.ndarray] | None = None,
        params: list[ParamSpec] | None = None,
        seed: int = 0,
        recipe_text: str = "",
        ragged: bool = False,
        mesh_dim: int | None = None,
        fletcher32: bool = True,
        compression: str | None = None,
        extra_attrs: Mapping[str, object] | None = None,
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if not any("input" in f.role for f in fields) or not any(
            "target" in f.role for f in fields
        ):
            raise ValueError("a dataset needs at least one input field and one target field")
        self.path = Path(path)
        self.n_samples = int(n_samples)
        self.fields = {f.name: f for f in fields}
        self.params = {p.name: p for p in (params or [])}
        self.ragged = ragged
        self._next_ragged = 0
        self._rows = 0
        self._f = h5py.File(self.path, "w", track_order=True)
        f = self._f
        f.attrs["schema"] = SCHEMA_ID
        f.attrs["pde"] = pde
        f.attrs["recipe"] = recipe_text
        f.attrs["recipe_sha256"] = hashlib.sha256(recipe_text.encode()).hexdigest()
        f.attrs["package_version"] = __version__
        f.attrs["seed"] = int(seed)
        f.attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        f.attrs["grid"] = "mesh" if ragged else "cartesian"
        f.attrs["n_samples"] = self.n_samples
        f.attrs["spatial_dims"] = _str_array(spatial_dims)
        f.attrs["complete"] = False
        for key, value in (extra_attrs or {}).items():
            f.attrs[key] = value
        filters = {"fletcher32": fletcher32}
        if compression == "gzip":
            filters.update(compression="gzip", shuffle=True)
        elif compression is not None:
            raise ValueError(f"compression must be None or 'gzip', got {compression!r}")

        g = f.create_group("fields")
        for spec in fields:
            dt = np.dtype(spec.dtype)
            if ragged:
                ds = g.create_dataset(
                    spec.name,
                    shape=(0, *spec.shape),
                    maxshape=(None, *spec.shape),
                    dtype=dt,
                    chunks=(RAGGED_CHUNK_ROWS, *spec.shape),
                    fillvalue=np.nan,
                    **filters,
                )
            else:
                ds = g.create_dataset(
                    spec.name,
                    shape=(self.n_samples, *spec.shape),
                    dtype=dt,
                    chunks=_chunks(spec.shape, spec.dims, dt.itemsize),
                    fillvalue=np.nan,
                    **filters,
                )
            ds.attrs["role"] = spec.role
            ds.attrs["units"] = spec.units
            ds.attrs["dims"] = _str_array(spec.dims)
            ds.attrs["description"] = spec.description
            if spec.channels is not None:
                ds.attrs["channels"] = _str_array(spec.channels)

        cg = f.create_group("coords")
        for name, axis in (coords or {}).items():
            cg.create_dataset(name, data=np.asarray(axis, dtype=np.float64))

        pg = f.create_group("params")
        for p in self.params.values():
            ds = pg.create_dataset(
                p.name, shape=(self.n_samples, *p.shape), dtype=p.dtype, fillvalue=np.nan
            )
            ds.attrs["units"] = p.units
            ds.attrs["distribution"] = p.distribution

        f.create_dataset("status", shape=(self.n_samples,), dtype=np.uint8, fillvalue=PENDING)
        f.create_dataset(
            "error", shape=(self.n_samples,), dtype=h5py.string_dtype("utf-8"), fillvalue=""
        )
        s = f.create_group("solver")
        s.create_dataset("iterations", shape=(self.n_samples,), dtype=np.int32, fillvalue=0)
        s.create_dataset("residual", shape=(self.n_samples,), dtype=np.float64, fillvalue=np.nan)
        sec = s.create_dataset("seconds", shape=(self.n_samples,), dtype=np.float64, fillvalue=0.0)
        sec.attrs["nondeterministic"] = True
        s.create_dataset("converged", shape=(self.n_samples,), dtype=bool, fillvalue=False)
        f.create_group("splits")
        f.create_group("stats")
        if ragged:
            m = f.create_group("mesh")
            m.create_dataset("offsets", shape=(self.n_samples + 1,), dtype=np.int64, fillvalue=0)
            m.create_dataset(
                "pos",
                shape=(0, int(mesh_dim or len(spatial_dims))),
                maxshape=(None, int(mesh_dim or len(spatial_dims))),
                dtype=np.float32,
                chunks=(RAGGED_CHUNK_ROWS, int(mesh_dim or len(spatial_dims))),
            )

    # ------------------------------------------------------------------ samples
    def write_sample(
        self,
        i: int,
        *,
        fields: Mapping[str, np.ndarray] | None = None,
        params: Mapping[str, np.ndarray | float] | None = None,
        solver: SolverRecord | None = None,
        status: int = OK,
        error: str = "",
        pos: np.ndarray | None = None,
    ) -> None:
        """Write sample ``i``. A failed sample keeps NaN fields (pass ``fields=None``)."""
        if not 0 <= i < self.n_samples:
            raise IndexError(f"sample index {i} out of range [0, {self.n_samples})")
        if status not in (OK, FAILED):
            raise ValueError(f"status must be OK (1) or FAILED (2), got {status}")
        if status == FAILED and not error:
            raise ValueError(f"sample {i} is failed but has no error message")
        f = self._f
        fields = dict(fields or {})
        if status == OK:
            missing = sorted(set(self.fields) - set(fields))
            if missing:
                raise ValueError(f"sample {i}: fields {missing} missing from an ok sample")
        unknown = sorted(set(fields) - set(self.fields))
        if unknown:
            raise ValueError(
                f"sample {i}: unknown fields {unknown}; declared {sorted(self.fields)}"
            )
        if self.ragged:
            self._write_ragged(i, fields, pos)
        else:
            for name, value in fields.items():
                spec = self.fields[name]
                value = np.asarray(value)
                if value.shape != spec.shape:
                    raise ValueError(
                        f"sample {i}: field {name!r} has shape {value.shape}, expected {spec.shape}"
                    )
                f["fields"][name][i] = value.astype(spec.dtype, copy=False)
        for name, value in (params or {}).items():
            if name not in self.params:
                raise ValueError(
                    f"sample {i}: unknown param {name!r}; declared {sorted(self.params)}"
                )
            f["params"][name][i] = value
        rec = solver or SolverRecord()
        f["solver/iterations"][i] = rec.iterations
        f["solver/residual"][i] = rec.residual
        f["solver/seconds"][i] = rec.seconds
        f["solver/converged"][i] = rec.converged
        f["error"][i] = error
        f["status"][i] = status

    def _write_ragged(self, i: int, fields: dict, pos: np.ndarray | None) -> None:
        if i != self._next_ragged:
            raise ValueError(
                f"ragged samples must be written in index order: got {i}, "
                f"expected {self._next_ragged}"
            )
        m = self._f["mesh"]
        rows = 0 if pos is None else len(pos)
        if pos is not None:
            m["pos"].resize(self._rows + rows, axis=0)
            m["pos"][self._rows :] = np.asarray(pos, dtype=np.float32)
        for name, spec in self.fields.items():
            ds = self._f["fields"][name]
            ds.resize(self._rows + rows, axis=0)
            if name in fields and rows:
                value = np.asarray(fields[name], dtype=spec.dtype).reshape(rows, *spec.shape)
                ds[self._rows :] = value
        self._rows += rows
        m["offsets"][i + 1] = self._rows
        self._next_ragged += 1

    # ------------------------------------------------------------------ finish
    def write_splits(self, splits: Mapping[str, np.ndarray]) -> None:
        """Store splits, keeping only samples whose status is ok (failed ones are dropped)."""
        status = self._f["status"][...]
        g = self._f["splits"]
        for name, idx in splits.items():
            idx = np.unique(np.asarray(idx, dtype=np.int64))
            idx = idx[status[idx] == OK]
            if name in g:
                del g[name]
            g.create_dataset(name, data=idx.astype(np.int64))

    def finalize(self) -> str:
        """Compute train statistics and the content digest, set ``complete``; return the digest."""
        f = self._f
        status = f["status"][...]
        train = f["splits/train"][...] if "train" in f["splits"] else np.flatnonzero(status == OK)
        write_stats(f, train)
        digest = content_digest(f)
        f.attrs["content_sha256"] = digest
        f.attrs["complete"] = bool((status != PENDING).all())
        f.flush()
        return digest

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _str_array(values: Iterable[str]) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=h5py.string_dtype("utf-8"))
