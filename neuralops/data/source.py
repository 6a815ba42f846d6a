"""Where samples come from: the source protocol behind :class:`~neuralops.data.PDEDataset`.

A source knows a dataset's metadata (fields with roles and shapes, coordinates, parameters, splits, statistics,
per-sample status) and reads one sample of one field at a time. :class:`H5Source` reads schema
``neuralops-pde/1``; readers of foreign layouts (PDEBench, The Well) implement the same
:class:`AbstractSource`, so the dataset, the xarray export and the normalizers work on them unchanged.

Array conventions (channels first, as everywhere in neuralops):

- grid field, one sample: ``(C, *S)``, or ``(T, C, *S)`` for a time series;
- mesh (ragged) field, one sample: ``(C, n_nodes)``; node positions ``(n_nodes, d)``.

**File handles.** :class:`H5Source` reads metadata from a short-lived handle in ``__init__`` and opens the data
handle lazily on the first read in whichever process reads. It records the opening PID and reopens after a
fork; ``__getstate__`` drops the handle, so spawn/forkserver ``DataLoader`` workers can pickle it (an h5py
handle cannot be pickled). ``open_mode="per_item"`` opens and closes the file around every item instead.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from neuralops.data.errors import DataError, DataFileError, FieldNotFoundError
from neuralops.data.schema import PENDING, check_schema, open_file, str_list

__all__ = ["FieldInfo", "AbstractSource", "H5Source", "Stride", "OPEN_MODES"]

log = logging.getLogger(__name__)

OPEN_MODES = ("persistent", "per_item")
#: a stride per spatial axis, or one int for every axis
Stride = int | tuple[int, ...]


@dataclass(frozen=True)
class FieldInfo:
    """One field of a source.

    ``spatial_shape`` is ``S`` for grid fields and ``()`` for mesh fields (node counts vary per sample);
    ``n_time`` is ``T`` for time series and None otherwise. A scalar field has one channel named after the
    field; a vector field lists its components.
    """

    name: str
    role: str
    channels: tuple[str, ...]
    spatial_shape: tuple[int, ...]
    n_time: int | None = None
    units: str = "1"
    description: str = ""
    dtype: str = "float32"

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def is_time_series(self) -> bool:
        return self.n_time is not None

    def has_role(self, role: str) -> bool:
        """True if ``role`` (``"input"``, ``"target"``, ``"param"``) is one of the field's roles."""
        return role in self.role.split(",")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample as :meth:`AbstractSource.read` returns it: ``([T,] C, *S)``."""
        lead = () if self.n_time is None else (self.n_time,)
        return (*lead, self.n_channels, *self.spatial_shape)

    def describe(self) -> str:
        shape = (
            "x".join(map(str, self.sample_shape))
            if self.spatial_shape
            else f"{self.n_channels}xnodes"
        )
        return f"{self.name} ({self.role}, {shape}, {self.units})"


class AbstractSource(abc.ABC):
    """Metadata and per-sample reads of one dataset.

    Concrete sources set these attributes in ``__init__`` (small arrays, held in memory):

    ``path`` (str), ``pde`` (str), ``grid`` (``"cartesian"`` or ``"mesh"``), ``n_samples`` (N),
    ``spatial_dims`` (axis names, e.g. ``("x", "y")``), ``fields`` (name -> :class:`FieldInfo`, in file
    order), ``coords`` (name -> 1-D float64 axis, ``"t"`` for time series), ``params`` (name -> ``(N,)`` or
    ``(N, k)``), ``param_attrs`` (name -> attrs such as ``units``), ``status`` (``(N,)`` uint8: 0 pending,
    1 ok, 2 failed), ``errors`` (``(N,)`` str), ``splits`` (name -> sorted int64 indices), ``stats``
    (field -> ``mean|std|min|max`` per channel, float64), ``solver`` (name -> ``(N,)`` records; may be empty),
    ``attrs`` (file attributes: ``schema``, ``pde``, ``recipe``, ``package_version``…).
    """

    path: str
    pde: str
    grid: str
    n_samples: int
    spatial_dims: tuple[str, ...]
    fields: dict[str, FieldInfo]
    coords: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    param_attrs: dict[str, dict[str, Any]]
    status: np.ndarray
    errors: np.ndarray
    splits: dict[str, np.ndarray]
    stats: dict[str, dict[str, np.ndarray]]
    solver: dict[str, np.ndarray]
    attrs: dict[str, Any]

    @abc.abstractmethod
    def read(
        self, field: str, i: int, tslice: slice | None = None, stride: Stride = 1
    ) -> np.ndarray:
        """Sample ``i`` of ``field`` as ``([T,] C, *S)`` (grid) or ``(C, n_nodes)`` (mesh).

        ``tslice`` selects snapshots of a time series (None: all); ``stride`` subsamples every spatial axis
        (mesh: every ``stride``-th node). Both are applied while reading, never after loading the sample.
        """

    def read_pos(self, i: int, stride: Stride = 1) -> np.ndarray:
        """Node positions ``(n_nodes, d)`` of mesh sample ``i``; grid sources have none."""
        raise DataError(
            f"{self.path}: read_pos is only defined for mesh files, this grid is {self.grid}"
        )

    def n_nodes(self, i: int) -> int:
        """Node count of mesh sample ``i``."""
        return len(self.read_pos(i))

    def opened(self) -> contextlib.AbstractContextManager:
        """A context in which several reads may share one file handle (default: nothing to do)."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Release open handles (a later read reopens); sources without handles do nothing."""
        return None

    # ------------------------------------------------------------------ helpers
    @property
    def is_mesh(self) -> bool:
        return self.grid == "mesh"

    def field(self, name: str) -> FieldInfo:
        """The :class:`FieldInfo` of ``name``; :class:`FieldNotFoundError` lists the fields otherwise."""
        try:
            return self.fields[name]
        except KeyError:
            raise FieldNotFoundError(
                f"{self.path}: no field {name!r}; fields are: {self.field_table()}"
            ) from None

    def field_table(self) -> str:
        """``"a (input, 1x9x9, 1), u (target, 1x9x9, m)"``: every field with role, shape and units."""
        return ", ".join(info.describe() for info in self.fields.values()) or "(none)"

    def n_pending(self) -> int:
        return int(np.count_nonzero(self.status == PENDING))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.path!r}, pde={self.pde!r}, n_samples={self.n_samples}, "
            f"grid={self.grid!r}, fields=[{self.field_table()}])"
        )


def _attr(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (str, int, float, bool, list of str, or array)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return str_list(value)
    return value


def _strides(stride: Stride, n: int, what: str) -> tuple[int, ...]:
    s = (stride,) * n if isinstance(stride, int | np.integer) else tuple(stride)
    if len(s) != n or any(isinstance(v, bool) or int(v) < 1 for v in s):
        raise ValueError(
            f"{what}: stride must be a positive int or a tuple of {n} positive ints, got {stride!r}"
        )
    return tuple(int(v) for v in s)


class _Handle:
    """An open file and the datasets looked up in it: a lookup costs more than reading a 64² sample."""

    __slots__ = ("file", "datasets")

    def __init__(self, path: str) -> None:
        self.file = open_file(path)
        self.datasets: dict[str, h5py.Dataset] = {}

    def dataset(self, name: str) -> h5py.Dataset:
        ds = self.datasets.get(name)
        if ds is None:
            ds = self.datasets[name] = self.file[name]
        return ds


class H5Source(AbstractSource):
    """A schema ``neuralops-pde/1`` file.

    Parameters
    ----------
    path:
        The ``.h5`` file.
    open_mode:
        ``"persistent"`` keeps one handle per process (opened on first read, reopened after fork);
        ``"per_item"`` opens and closes the file around every item (:meth:`opened`) or read.
    """

    def __init__(self, path: str | os.PathLike, *, open_mode: str = "persistent") -> None:
        if open_mode not in OPEN_MODES:
            raise ValueError(f"open_mode must be one of {OPEN_MODES}, got {open_mode!r}")
        self.path = str(path)
        self.open_mode = open_mode
        self._handle: _Handle | None = None
        self._pid: int | None = None
        self._scoped: _Handle | None = None
        self._stride_cache: dict[tuple, tuple[slice, ...]] = {}
        with open_file(path) as f:
            check_schema(f, path)
            self._read_metadata(f)

    # ------------------------------------------------------------------ metadata
    def _read_metadata(self, f: h5py.File) -> None:
        self.attrs = {k: _attr(v) for k, v in f.attrs.items()}
        self.pde = str(self.attrs.get("pde", ""))
        self.grid = str(self.attrs.get("grid", "cartesian"))
        self.n_samples = int(self.attrs.get("n_samples", len(f["status"])))
        self.spatial_dims = tuple(str_list(f.attrs["spatial_dims"]))
        self.fields = {name: self._field_info(name, ds) for name, ds in f["fields"].items()}
        self._frame_chunked = {
            name: bool(ds.chunks and self.fields[name].is_time_series and ds.chunks[1] == 1)
            for name, ds in f["fields"].items()
        }
        self.coords = {
            k: np.asarray(v[...], dtype=np.float64) for k, v in f.get("coords", {}).items()
        }
        self.params = {k: v[...] for k, v in f.get("params", {}).items()}
        self.param_attrs = {
            k: {a: _attr(x) for a, x in v.attrs.items()} for k, v in f.get("params", {}).items()
        }
        self.status = f["status"][...].astype(np.uint8)
        if "error" in f:
            self.errors = np.asarray(f["error"].asstr()[...], dtype=object)
        else:
            self.errors = np.full(self.n_samples, "", dtype=object)
        self.splits = {k: v[...].astype(np.int64) for k, v in f.get("splits", {}).items()}
        self.stats = {
            name: {k: np.asarray(v[...], dtype=np.float64) for k, v in g.items()}
            for name, g in f.get("stats", {}).items()
        }
        self.solver = {k: v[...] for k, v in f.get("solver", {}).items()}
        self._offsets = f["mesh/offsets"][...].astype(np.int64) if self.is_mesh else None
        if len(self.status) != self.n_samples:
            raise DataError(
                f"{self.path}: /status has {len(self.status)} entries but n_samples is "
                f"{self.n_samples}; the file is damaged: run `neuralops info {self.path} --check`"
            )

    def _field_info(self, name: str, ds: h5py.Dataset) -> FieldInfo:
        dims = str_list(ds.attrs["dims"]) if "dims" in ds.attrs else ["sample", *self.spatial_dims]
        shape = ds.shape[1:]
        if len(dims) != ds.ndim:
            raise DataError(
                f"{self.path}: /fields/{name} has {ds.ndim} axes but dims {dims}; "
                f"run `neuralops info {self.path} --check`"
            )
        body = dims[1:]
        vector = bool(body) and body[-1] == "component"
        if "channels" in ds.attrs:
            channels = tuple(str_list(ds.attrs["channels"]))
        elif vector and shape[-1] > 1:
            channels = tuple(f"{name}_{k}" for k in range(shape[-1]))
        else:
            channels = (name,)
        mesh = self.is_mesh
        return FieldInfo(
            name,
            role=_attr(ds.attrs.get("role", "")),
            channels=channels,
            spatial_shape=()
            if mesh
            else tuple(
                n for n, d in zip(shape, body, strict=True) if d not in ("time", "component")
            ),
            n_time=shape[0] if not mesh and body and body[0] == "time" else None,
            units=_attr(ds.attrs.get("units", "1")),
            description=_attr(ds.attrs.get("description", "")),
            dtype=str(ds.dtype),
        )

    # ------------------------------------------------------------------ handles
    def _persistent(self) -> _Handle:
        pid = os.getpid()
        if self._handle is None or self._pid != pid:
            if self._handle is not None and self._pid != pid:
                # inherited through fork: HDF5 state must not be shared, so this process opens its own
                log.debug("%s: reopening in process %d (opened in %s)", self.path, pid, self._pid)
            self._handle = _Handle(self.path)
            self._pid = pid
        return self._handle

    def read_plain(self, names: Sequence[str], i: int) -> list[np.ndarray] | None:
        """Whole samples ``i`` of static scalar grid fields ``names`` as stored ``(*S)``, read with
        the least overhead (the hot path of :class:`PDEDataset`); None when this source cannot
        (``per_item`` mode or a failed read: the caller then takes :meth:`read`, which names the
        dataset and sample of a corrupt chunk)."""
        if self.open_mode != "persistent":
            return None
        h = self._persistent()
        try:
            return [h.dataset("fields/" + n)[i] for n in names]
        except OSError:
            return None

    def opened(self) -> contextlib.AbstractContextManager:
        """A block whose reads share one handle (``per_item``: opened here and closed at the end)."""
        if self.open_mode == "persistent" or self._scoped is not None:
            return contextlib.nullcontext()  # reads already share a handle
        return self._scope()

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        self._scoped = _Handle(self.path)
        try:
            yield
        finally:
            self._scoped.file.close()
            self._scoped = None

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid() and self._handle.file.id.valid:
            self._handle.file.close()
        self._handle = None
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_handle=None, _pid=None, _scoped=None)
        return state

    def _select(self, name: str, sel: Any, i: int) -> np.ndarray:
        """``/<name>[sel]`` for sample ``i`` through the current handle; HDF5 failures name both."""
        h = self._scoped
        if h is None and self.open_mode == "persistent":
            h = self._persistent()
        if h is None:
            with self._scope():
                return self._select(name, sel, i)
        try:
            return h.dataset(name)[sel]
        except OSError as exc:
            raise DataFileError(
                f"{self.path}: reading /{name} sample {i} failed ({exc}); the file is corrupt there: "
                f"re-download or regenerate it, and run `neuralops info {self.path} --check --deep` "
                "to find other damaged samples"
            ) from exc

    # ------------------------------------------------------------------ reads
    def _check_index(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self.n_samples:
            raise IndexError(f"{self.path}: sample index {i} out of range [0, {self.n_samples})")
        return i

    def _steps(self, stride: Stride, n: int) -> tuple[slice, ...]:
        """``n`` step slices for ``stride`` (validated once, then cached)."""
        key = (stride if isinstance(stride, int) else tuple(stride), n)
        hit = self._stride_cache.get(key)
        if hit is None:
            steps = _strides(stride, n, f"{self.path}: subsample")
            hit = self._stride_cache[key] = tuple(slice(None, None, st) for st in steps)
        return hit

    def _rows(self, i: int, stride: Stride) -> tuple[slice, slice]:
        return slice(int(self._offsets[i]), int(self._offsets[i + 1])), self._steps(stride, 1)[0]

    def read(
        self, field: str, i: int, tslice: slice | None = None, stride: Stride = 1
    ) -> np.ndarray:
        """See :meth:`AbstractSource.read`.

        h5py reads the contiguous box of sample ``i`` (its frame range, full spatial extent) and the steps
        are taken in memory: with one sample per chunk HDF5 reads that chunk either way, and HDF5's strided
        selection is 10-100x slower (64²: 65 vs 5 µs; 421²: 2.5 ms vs 45 µs, h5py 3.16). Frame-chunked
        series (samples over 4 MiB) with a time step read only the frames they need.
        """
        info = self.field(field)
        i = self._check_index(i)
        name = "fields/" + field
        if self.is_mesh:
            rows, step = self._rows(i, stride)
            a = self._select(name, rows, i)[step]
            return np.ascontiguousarray(a.reshape(len(a), info.n_channels).T)
        space = self._steps(stride, len(info.spatial_shape))
        if not info.is_time_series:
            if tslice is not None:
                raise ValueError(
                    f"{self.path}: field {field!r} is not a time series; pass tslice=None"
                )
            a = self._select(name, i, i)
        else:
            t0, t1, dt = (tslice or slice(None)).indices(info.n_time)
            if dt < 1:
                raise ValueError(f"{self.path}: tslice needs a positive step, got {tslice}")
            if dt > 1 and self._frame_chunked[field]:
                a = np.stack([self._select(name, (i, t), i) for t in range(t0, t1, dt)])
                dt = 1
            else:
                a = self._select(name, (i, slice(t0, t1)), i)
            space = (slice(None, None, dt), *space)
        if any(sl.step != 1 for sl in space):
            a = a[space]
        return self._channels_first(a, info)

    def _channels_first(self, a: np.ndarray, info: FieldInfo) -> np.ndarray:
        vector = a.ndim > len(info.spatial_shape) + int(info.is_time_series)
        if vector:
            return np.ascontiguousarray(np.moveaxis(a, -1, 1 if info.is_time_series else 0))
        a = np.ascontiguousarray(a)
        return a[:, None] if info.is_time_series else a[None]

    def read_pos(self, i: int, stride: Stride = 1) -> np.ndarray:
        if not self.is_mesh:
            return super().read_pos(i, stride)
        i = self._check_index(i)
        rows, step = self._rows(i, stride)
        return np.ascontiguousarray(self._select("mesh/pos", rows, i)[step])

    def n_nodes(self, i: int) -> int:
        """Node count of mesh sample ``i``."""
        i = self._check_index(i)
        return int(self._offsets[i + 1] - self._offsets[i])
