"""Readers for other people's HDF5 layouts: PDEBench and The Well, behind :class:`AbstractSource`.

``PDEDataset("2D_DarcyFlow_beta1.0_Train.hdf5", "train")`` opens a PDEBench file and gives the same
sample dict as a neuralops file (``input``/``target`` channels first, ``time`` for trajectories), so
a model and a training script written for neuralops train on it unchanged. Layouts understood:

- **PDEBench, one array per quantity** (arXiv 2210.07182, pdebench/PDEBench): ``tensor`` ``(N, T, X[, Y])``
  (1-D/2-D time series, e.g. Burgers, advection, 2-D diffusion–sorption), ``x-coordinate``,
  ``y-coordinate``, ``t-coordinate``; Darcy: ``nu`` ``(N, X, Y)`` (input) and ``tensor`` ``(N, 1, X, Y)``
  (target); compressible NS: ``density``, ``pressure``, ``Vx``, ``Vy`` [, ``Vz``] ``(N, T, X, Y[, Z])``.
- **PDEBench, one group per seed** (2-D diffusion–reaction, shallow water, ...): groups ``0000``,
  ``0001``, ... each holding ``data`` ``(T, X[, Y], C)`` and ``grid/x``, ``grid/y``, ``grid/t``.
- **The Well** (PolymathicAI/the_well): ``t0_fields/<name>`` ``(N, T, X, Y[, Z])``,
  ``t1_fields/<name>`` ``(..., D)``, ``t2_fields/<name>`` ``(..., D, D)``, ``dimensions/{x,y,z,time}``;
  fields whose ``time_varying`` / ``sample_varying`` attribute is false lack that axis.

These files carry no split: ``train`` is the first 90 % of the samples (trajectories), ``test`` the
last 10 % (PDEBench's convention), ``all`` everything. Time series have role ``input,target`` (cut
them with ``time=TimeWindow(...)``/``"all2all"``); statistics for normalizers are computed from up to
64 training samples when the source is opened.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from neuralops.data.errors import DataFileError
from neuralops.data.source import AbstractSource, FieldInfo, Stride, _strides

__all__ = ["PDEBenchSource", "WellSource", "detect_layout", "open_foreign"]

_SEED = re.compile(r"^\d+$")
_STATS_SAMPLES = 64
LAYOUTS = ("pdebench", "pdebench-seeds", "the_well")


@dataclass(frozen=True)
class _Array:
    """Where a field lives: dataset ``path`` (inside each seed group when ``per_group``) and the
    letters of its axes (``N`` sample, ``T`` time, ``X``/``Y``/``Z`` space, ``C`` channels; an
    axis of length one may be dropped with ``1``)."""

    path: str
    axes: str
    per_group: bool = False


def detect_layout(f: h5py.File) -> str | None:
    """``"pdebench"``, ``"pdebench-seeds"``, ``"the_well"`` or None."""
    keys = set(f.keys())
    if "t0_fields" in keys or "t1_fields" in keys:
        return "the_well"
    if keys and all(_SEED.match(k) for k in keys) and "data" in f[sorted(keys)[0]]:
        return "pdebench-seeds"
    if "tensor" in keys or {"density", "Vx"} <= keys:
        return "pdebench"
    return None


class _ForeignSource(AbstractSource):
    """Shared machinery: lazy per-process handle, axis permutation, splits and statistics."""

    layout = ""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._arrays: dict[str, _Array] = {}
        self._groups: list[str] = []
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataFileError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        with f:
            self.attrs = {
                k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
            }
            self._describe(f)
        self.grid = "cartesian"
        self.params, self.param_attrs, self.solver = {}, {}, {}
        self.status = np.ones(self.n_samples, dtype=np.uint8)
        self.errors = np.full(self.n_samples, "", dtype=object)
        n_test = max(1, self.n_samples // 10) if self.n_samples > 1 else 0
        idx = np.arange(self.n_samples, dtype=np.int64)
        self.splits = {
            "all": idx,
            "train": idx[: self.n_samples - n_test],
            "test": idx[self.n_samples - n_test :],
        }
        self.stats = self._stats(self.splits["train"][:_STATS_SAMPLES])

    # ------------------------------------------------------------------ subclass hooks
    def _describe(self, f: h5py.File) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ reads
    def _file(self) -> h5py.File:
        if self._handle is None or self._pid != os.getpid():
            self._handle = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_pid": None}

    def _raw(self, field: str, i: int) -> tuple[np.ndarray, str]:
        spec = self._arrays[field]
        f = self._file()
        if spec.per_group:
            return np.asarray(f[self._groups[i]][spec.path][...]), spec.axes.replace("N", "")
        ds = f[spec.path]
        n_axis = spec.axes.index("N") if "N" in spec.axes else None
        if n_axis is None:  # sample-invariant (e.g. a Well field with sample_varying = False)
            return np.asarray(ds[...]), spec.axes
        sel = tuple(i if k == n_axis else slice(None) for k in range(ds.ndim))
        return np.asarray(ds[sel]), spec.axes.replace("N", "")

    def read(
        self, field: str, i: int, tslice: slice | None = None, stride: Stride = 1
    ) -> np.ndarray:
        info = self.field(field)
        if not 0 <= int(i) < self.n_samples:
            raise IndexError(f"{self.path}: sample index {i} out of range [0, {self.n_samples})")
        a, axes = self._raw(field, int(i))
        a = a.reshape([n for n, ax in zip(a.shape, axes) if ax != "1"])
        axes = axes.replace("1", "")
        space = [ax for ax in axes if ax in "XYZ"]
        chans = [ax for ax in axes if ax == "C"]
        order = ([axes.index("T")] if "T" in axes else []) + [
            k for k, ax in enumerate(axes) if ax == "C"
        ]
        order += [axes.index(ax) for ax in space]
        a = np.transpose(a, order)
        lead = 1 if "T" in axes else 0
        n_c = int(np.prod(a.shape[lead : lead + len(chans)])) if chans else 1
        a = a.reshape(*a.shape[:lead], n_c, *a.shape[lead + len(chans) :])
        if info.is_time_series and "T" not in axes:  # constant in time: repeat over the frames
            a = np.broadcast_to(a[None], (info.n_time, *a.shape))
        if info.is_time_series:
            t0, t1, dt = (tslice or slice(None)).indices(info.n_time)
            a = a[t0:t1:dt]
        elif tslice is not None:
            raise ValueError(f"{self.path}: field {field!r} is not a time series; pass tslice=None")
        steps = _strides(stride, len(info.spatial_shape), f"{self.path}: subsample")
        a = a[(..., *[slice(None, None, s) for s in steps])]
        return np.ascontiguousarray(a, dtype=np.float32)

    def _stats(self, indices: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for name, info in self.fields.items():
            samples = [self.read(name, int(i)) for i in indices]
            c_axis = 1 if info.is_time_series else 0
            a = np.stack(samples).astype(np.float64)
            a = np.moveaxis(a, c_axis + 1, -1).reshape(-1, info.n_channels)
            out[name] = {"mean": a.mean(0), "std": a.std(0), "min": a.min(0), "max": a.max(0)}
        self.close()
        return out


def _coord(f: h5py.File, *names: str) -> np.ndarray | None:
    for n in names:
        if n in f:
            return np.asarray(f[n][...], dtype=np.float64).ravel()
    return None


class PDEBenchSource(_ForeignSource):
    """A PDEBench file: one array per quantity, or one group per seed (see the module doc)."""

    def _describe(self, f: h5py.File) -> None:
        self.layout = detect_layout(f) or ""
        if self.layout == "pdebench-seeds":
            return self._describe_seeds(f)
        if self.layout != "pdebench":
            raise DataFileError(
                f"{self.path}: not a PDEBench layout (keys {sorted(f.keys())[:8]}); understood: "
                f"{', '.join(LAYOUTS)}"
            )
        self.pde = str(self.attrs.get("pde", "pdebench"))
        self.fields, self.coords = {}, {}
        keys = set(f.keys())
        if "nu" in keys and "tensor" in keys:  # Darcy: coefficient -> solution, steady
            nu, t = f["nu"], f["tensor"]
            d = nu.ndim - 1
            self.spatial_dims = ("x", "y", "z")[:d]
            self.n_samples = nu.shape[0]
            self._arrays = {
                "nu": _Array("nu", "N" + "XYZ"[:d]),
                "tensor": _Array("tensor", "N1" + "XYZ"[:d]),
            }
            self.fields = {
                "nu": FieldInfo("nu", "input", ("nu",), nu.shape[1:]),
                "tensor": FieldInfo("tensor", "target", ("tensor",), t.shape[2:]),
            }
        else:
            names = (
                ["tensor"]
                if "tensor" in keys
                else [k for k in ("density", "Vx", "Vy", "Vz", "pressure") if k in keys]
            )
            first = f[names[0]]
            d = first.ndim - 2
            self.spatial_dims = ("x", "y", "z")[:d]
            self.n_samples, n_time = first.shape[0], first.shape[1]
            for n in names:
                if f[n].shape != first.shape:
                    raise DataFileError(
                        f"{self.path}: {n} has shape {f[n].shape}, {names[0]} {first.shape}"
                    )
                self._arrays[n] = _Array(n, "NT" + "XYZ"[:d])
                self.fields[n] = FieldInfo(n, "input,target", (n,), first.shape[2:], n_time=n_time)
            t = _coord(f, "t-coordinate")
            if t is not None:
                self.coords["t"] = t[:n_time]
        for ax in self.spatial_dims:
            c = _coord(f, f"{ax}-coordinate")
            if c is not None:
                self.coords[ax] = c

    def _describe_seeds(self, f: h5py.File) -> None:
        self._groups = sorted(k for k in f.keys() if _SEED.match(k))
        g = f[self._groups[0]]
        data = g["data"]
        d = data.ndim - 2
        self.pde = str(self.attrs.get("pde", "pdebench"))
        self.spatial_dims = ("x", "y", "z")[:d]
        self.n_samples = len(self._groups)
        n_c = data.shape[-1]
        self._arrays = {"data": _Array("data", "T" + "XYZ"[:d] + "C", per_group=True)}
        channels = tuple(f"data_{k}" for k in range(n_c)) if n_c > 1 else ("data",)
        self.fields = {
            "data": FieldInfo(
                "data", "input,target", channels, data.shape[1:-1], n_time=data.shape[0]
            )
        }
        self.coords = {}
        for ax, key in (*((a, f"grid/{a}") for a in self.spatial_dims), ("t", "grid/t")):
            if key in g:
                self.coords[ax] = np.asarray(g[key][...], dtype=np.float64).ravel()


class WellSource(_ForeignSource):
    """A The Well file (``t0_fields``/``t1_fields``/``t2_fields``, ``dimensions``)."""

    def _describe(self, f: h5py.File) -> None:
        if detect_layout(f) != "the_well":
            raise DataFileError(
                f"{self.path}: not a The Well file (no t0_fields/t1_fields group); understood: "
                f"{', '.join(LAYOUTS)}"
            )
        self.layout = "the_well"
        d = int(self.attrs.get("n_spatial_dims", 2))
        self.spatial_dims = ("x", "y", "z")[:d]
        self.pde = str(self.attrs.get("dataset_name", "the_well"))
        self.fields, self.coords = {}, {}
        n_samples = n_time = None
        for order, group in ((0, "t0_fields"), (1, "t1_fields"), (2, "t2_fields")):
            if group not in f:
                continue
            for name, ds in f[group].items():
                sample_v = bool(ds.attrs.get("sample_varying", True))
                time_v = bool(ds.attrs.get("time_varying", True))
                axes = ("N" if sample_v else "") + ("T" if time_v else "") + "XYZ"[:d] + "C" * order
                space = ds.shape[int(sample_v) + int(time_v) : int(sample_v) + int(time_v) + d]
                if sample_v:
                    n_samples = ds.shape[0] if n_samples is None else n_samples
                if time_v:
                    n_time = ds.shape[int(sample_v)] if n_time is None else n_time
                n_c = int(np.prod(ds.shape[len(ds.shape) - order :])) if order else 1
                channels = (name,) if n_c == 1 else tuple(f"{name}_{k}" for k in range(n_c))
                self._arrays[name] = _Array(f"{group}/{name}", axes)
                self.fields[name] = FieldInfo(name, "input,target", channels, tuple(space))
        if not self.fields or n_samples is None:
            raise DataFileError(f"{self.path}: The Well file without sample-varying fields")
        self.n_samples = int(n_samples)
        self.fields = {
            k: FieldInfo(v.name, v.role, v.channels, v.spatial_shape, n_time=n_time)
            for k, v in self.fields.items()
        }
        dims = f.get("dimensions", {})
        for ax in self.spatial_dims:
            if ax in dims:
                self.coords[ax] = np.asarray(dims[ax][...], dtype=np.float64).ravel()
        if "time" in dims:
            self.coords["t"] = np.asarray(dims["time"][...], dtype=np.float64).ravel()


def open_foreign(path: str | os.PathLike) -> AbstractSource | None:
    """A PDEBench or The Well source for ``path``, or None when the file is neither (or not HDF5)."""
    try:
        with h5py.File(path, "r") as f:
            if "schema" in f.attrs:
                return None
            layout = detect_layout(f)
    except OSError:
        return None
    if layout == "the_well":
        return WellSource(path)
    if layout in ("pdebench", "pdebench-seeds"):
        return PDEBenchSource(path)
    with h5py.File(path, "r") as f:
        keys = sorted(f.keys())[:8]
    raise DataFileError(
        f"{path}: an HDF5 file in no layout neuralops reads (top-level keys {keys}, no 'schema' "
        "attribute). Understood: neuralops-pde/1 (neuralops generate), PDEBench (a 'tensor' array, "
        "'nu' + 'tensor', 'density'/'Vx'/... arrays, or seed groups '0000'... with 'data'), "
        "The Well ('t0_fields'/'t1_fields' groups)"
    )
