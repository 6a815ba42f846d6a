"""``PDEDataset``: the one dataset interface of neuralops (data.md section 2).

One item is a dict of tensors in physical units, channels first:

- ``input`` ``(C_in, *S)`` and ``target`` ``(C_out, *S)``; time series keep their time axis,
  ``(T, C, *S)``, except all-to-all pairs, which are single frames;
- ``coords`` ``(d, *S)``, ``params`` ``(P,)``, ``time`` (lead time, ``()`` or ``(T_out,)``), as asked by
  ``include``.

Mesh (ragged) files give ``(C, n_nodes)`` and ``coords`` ``(d, n_nodes)``; ``view="graph"`` gives a
``torch_geometric.data.Data`` instead (see :mod:`neuralops.data.graph`). A ``DataLoader`` stacks items into
``(batch, C, *S)``. Failed and pending samples are never returned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from neuralops.data.errors import DataError, IncompleteDatasetError, NonFiniteError
from neuralops.data.graph import GraphBuilder, GraphSpec, to_data
from neuralops.data.normalizer import IdentityNormalizer, Normalizer
from neuralops.data.schema import OK, PENDING
from neuralops.data.source import AbstractSource, H5Source, Stride, _strides
from neuralops.data.timewindow import AllToAll, Frames, TimeWindow
from neuralops.data.timewindow import plan as plan_time
from neuralops.data.timewindow import resolve as resolve_time

__all__ = ["PDEDataset", "VIEWS", "INCLUDE"]

log = logging.getLogger(__name__)

VIEWS = ("grid", "graph")
INCLUDE = ("coords", "params", "time")


def _names(value: str | Iterable[str] | None, role: str, source: AbstractSource) -> list[str]:
    if value is None:
        names = [n for n, info in source.fields.items() if info.has_role(role)]
        if not names:
            raise DataError(
                f"{source.path}: no field has role {role!r}; pass {role}s= explicitly. "
                f"Fields: {source.field_table()}"
            )
        return names
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ValueError(f"{role}s must name at least one field, got {value!r}")
    return [source.field(n).name for n in names]  # FieldNotFoundError lists the fields


def _join(a: slice, b: slice) -> tuple[slice, int] | None:
    """One strided slice reading the frames of ``a`` then ``b``, and how many belong to ``a``."""
    fa, fb = range(a.start, a.stop, a.step or 1), range(b.start, b.stop, b.step or 1)
    if fa == fb:
        return a, -1  # the same frames (trajectory mode)
    idx = [*fa, *fb]
    steps = np.diff(idx)
    if len(idx) >= 2 and steps[0] > 0 and (steps == steps[0]).all():
        return slice(idx[0], idx[-1] + 1, int(steps[0])), len(fa)
    return None


class PDEDataset(torch.utils.data.Dataset):
    """Samples of a schema-v1 file (or any :class:`~neuralops.data.source.AbstractSource`) as tensor dicts.

    Parameters
    ----------
    path_or_source:
        An ``.h5`` file or a source object (foreign readers).
    split:
        ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (every ok sample); ``indices`` overrides it.
    inputs, targets:
        Field names (one or several, stacked as channels in the given order); default: the fields whose
        ``role`` includes ``input`` / ``target``.
    view:
        ``"grid"`` (tensor dicts) or ``"graph"`` (``torch_geometric.data.Data``; options in ``graph``).
    time:
        None (static data; full trajectories for time series), a :class:`TimeWindow`, an :class:`AllToAll`,
        ``"all2all"`` (options in ``time_options``: ``max_steps``, ``step``, ``t_norm``,
        ``consecutive_only``) or ``"trajectory"``.
    subsample:
        Stride per spatial axis (int or tuple); mesh files: node stride. Applied while reading.
    include:
        Which of ``"coords"``, ``"params"``, ``"time"`` to add to each item.
    check_finite:
        Raise :class:`NonFiniteError` (field and sample index) when a read holds NaN or Inf.
    dtype:
        Floating dtype of every returned tensor.
    open_mode:
        ``"persistent"`` (one handle per process, reopened after fork) or ``"per_item"``; used when a path is
        given.
    indices:
        File indices of the samples to use (all must be ok); overrides ``split``.
    transform:
        Called on each item (dict or ``Data``) before it is returned.
    graph:
        ``dict(radius=..., k=..., max_neighbors=..., loop=...)`` or a :class:`GraphSpec`; default ``k=8``.
    allow_incomplete:
        Read a file whose generation was interrupted (pending samples are still never returned).
    """

    def __init__(
        self,
        path_or_source: str | os.PathLike | AbstractSource,
        split: str = "train",
        *,
        inputs: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        view: str = "grid",
        time: TimeWindow | AllToAll | str | None = None,
        time_options: Mapping[str, Any] | None = None,
        subsample: Stride = 1,
        include: Iterable[str] = INCLUDE,
        check_finite: bool = False,
        dtype: torch.dtype = torch.float32,
        open_mode: str = "persistent",
        indices: Sequence[int] | np.ndarray | None = None,
        transform: Callable[[Any], Any] | None = None,
        graph: GraphSpec | Mapping[str, Any] | None = None,
        allow_incomplete: bool = False,
    ) -> None:
        if isinstance(path_or_source, AbstractSource):
            self.source = path_or_source
        else:
            from neuralops.data.foreign import open_foreign

            # PDEBench and The Well files open through their own sources
            foreign = open_foreign(path_or_source)
            self.source = foreign or H5Source(path_or_source, open_mode=open_mode)
        src = self.source
        pending = int(np.count_nonzero(src.status == PENDING))
        if pending and not allow_incomplete:
            raise IncompleteDatasetError(
                f"{src.path}: {pending} of {src.n_samples} samples are pending (generation was "
                "interrupted); finish it with `neuralops generate RECIPE --resume`, or pass "
                "allow_incomplete=True to use the finished samples"
            )
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
        self.include = tuple(include)
        unknown = sorted(set(self.include) - set(INCLUDE))
        if unknown:
            raise ValueError(f"include has unknown entries {unknown}; valid: {INCLUDE}")
        self.view, self.dtype = view, dtype
        self.check_finite, self.transform = check_finite, transform
        self.inputs = _names(inputs, "input", src)
        self.targets = _names(targets, "target", src)
        self._groups = {
            name: [
                g
                for g, names in (("input", self.inputs), ("target", self.targets))
                if name in names
            ]
            for name in dict.fromkeys(self.inputs + self.targets)
        }
        self.split = split if indices is None else "indices"
        self.indices = self._select(split, indices)
        # spatial layout
        self.subsample = subsample
        if src.is_mesh:
            self._stride: tuple[int, ...] = _strides(subsample, 1, "subsample (mesh files)")
            self.spatial_shape: tuple[int, ...] = ()
            self.spatial_ndim = 1
        else:
            shapes = {src.fields[n].spatial_shape for n in self.inputs + self.targets}
            if len(shapes) > 1:
                raise DataError(
                    f"{src.path}: fields {self.inputs + self.targets} differ in shape {shapes}"
                )
            stored = shapes.pop()
            self._stride = _strides(subsample, len(stored), "subsample")
            self.spatial_shape = tuple(
                -(-n // s) for n, s in zip(stored, self._stride, strict=True)
            )
            self.spatial_ndim = len(stored)
        self._static_ndim = 1 + self.spatial_ndim  # (C, *S) or (C, n_nodes)
        fields = list(self._groups)
        series = [n for n in fields if src.fields[n].is_time_series]
        self.time = resolve_time(time, time_options, series, fields)
        lengths = {src.fields[n].n_time for n in series}
        if len(lengths) > 1:
            raise DataError(f"{src.path}: time series {series} differ in length {lengths}")
        self.n_time = lengths.pop() if lengths else None
        self._frames: list[Frames | None] = [None]
        self._times: list[torch.Tensor | None] = [None]
        if self.time is not None:
            self._frames, leads = plan_time(self.time, self.n_time, src.coords.get("t"))
            self._times = [torch.as_tensor(lead, dtype=dtype) for lead in leads]
        self.param_names, self._params = self._param_matrix()
        self._coords = None if src.is_mesh else self._grid_coords()
        self._graph = GraphBuilder(GraphSpec.coerce(graph)) if view == "graph" else None
        # hot path: static scalar grid fields read whole, no stride, no finiteness check
        self._plain_names = list(self._groups)
        self._plain_pair = (
            (self._plain_names.index(self.inputs[0]), self._plain_names.index(self.targets[0]))
            if len(self.inputs) == 1 and len(self.targets) == 1
            else None
        )
        self._plain = (
            isinstance(src, H5Source)
            and view == "grid"
            and not src.is_mesh
            and self.time is None
            and not check_finite
            and all(st == 1 for st in self._stride)
            and all(
                not src.fields[n].is_time_series and src.fields[n].n_channels == 1
                for n in self._groups
            )
        )

    # ------------------------------------------------------------------ set-up
    def _select(self, split: str, indices) -> np.ndarray:
        src = self.source
        ok = src.status == OK
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64).reshape(-1)
            bad = idx[(idx < 0) | (idx >= src.n_samples)]
            if bad.size:
                raise IndexError(
                    f"{src.path}: indices {bad.tolist()} out of range [0, {src.n_samples})"
                )
            not_ok = idx[~ok[idx]]
            if not_ok.size:
                raise ValueError(
                    f"{src.path}: indices {not_ok.tolist()[:10]} are not ok samples (status "
                    f"{src.status[not_ok][:10].tolist()}; 0 pending, 2 failed); pass ok samples only"
                )
            return idx
        if split == "all":
            return np.flatnonzero(ok).astype(np.int64)
        if split not in src.splits:
            raise ValueError(
                f"{src.path}: no split {split!r}; the file has {sorted(src.splits) or 'no splits'} "
                "(use split='all' for every ok sample, or indices=)"
            )
        idx = np.asarray(src.splits[split], dtype=np.int64)
        return idx[ok[idx]]  # a split never lists failed samples; be safe with foreign files

    def _param_matrix(self) -> tuple[list[str], np.ndarray]:
        names, cols = [], []
        for name, values in self.source.params.items():
            v = np.asarray(values, dtype=np.float64).reshape(self.source.n_samples, -1)
            names += [name] if v.shape[1] == 1 else [f"{name}[{k}]" for k in range(v.shape[1])]
            cols.append(v)
        matrix = np.concatenate(cols, axis=1) if cols else np.zeros((self.source.n_samples, 0))
        return names, matrix

    def _grid_coords(self) -> torch.Tensor:
        axes = []
        for dim, n, s in zip(
            self.source.spatial_dims, self._stored_shape(), self._stride, strict=True
        ):
            axis = self.source.coords.get(dim)
            if axis is None or len(axis) != n:
                log.debug("%s: no /coords/%s of length %d; using [0, 1]", self.source.path, dim, n)
                axis = np.linspace(0.0, 1.0, n)
            axes.append(torch.as_tensor(axis[::s], dtype=torch.float64))
        return torch.stack(torch.meshgrid(*axes, indexing="ij")).to(self.dtype)

    def _stored_shape(self) -> tuple[int, ...]:
        return self.source.fields[self.inputs[0]].spatial_shape

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.indices) * len(self._frames)

    @property
    def n_samples(self) -> int:
        """Distinct file samples (trajectories) used; ``len()`` counts windows."""
        return len(self.indices)

    def _locate(self, idx: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"item {idx} out of range for a dataset of {n} items")
        sample, k = divmod(idx % n, len(self._frames))
        return int(self.indices[sample]), k

    def locate(self, idx: int) -> tuple[int, Frames | None]:
        """The file index and the time selection (None for static data) behind item ``idx``."""
        i, k = self._locate(int(idx))
        return i, self._frames[k]

    def __getitem__(self, idx: int):
        i, k = self._locate(int(idx))
        frames = self._frames[k]
        src = self.source
        plain = src.read_plain(self._plain_names, i) if self._plain else None
        pos = None
        if plain is not None:
            x, y = self._plain_tensors(plain)
        else:
            with src.opened():
                x, y = self._read_groups(i, frames)
                if src.is_mesh and (self.view == "graph" or "coords" in self.include):
                    pos = src.read_pos(i, self._stride)
        out: dict[str, Any] = {"input": x, "target": y}
        if "coords" in self.include:
            out["coords"] = self._tensor(pos.T) if pos is not None else self._coords.clone()
        if "params" in self.include:
            out["params"] = torch.as_tensor(self._params[i], dtype=self.dtype)
        if "time" in self.include and self._times[k] is not None:
            out["time"] = self._times[k].clone()
        if self.view == "graph":
            if pos is None:
                pos = self._coords.reshape(self.spatial_ndim, -1).T.numpy()
            out = to_data(out, pos, self._graph, self.spatial_ndim)
        return self.transform(out) if self.transform is not None else out

    def _plain_tensors(self, arrays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """``input``/``target`` from whole stored samples ``(*S)`` or ``(*S, 1)`` of each field."""
        if self._plain_pair is not None:  # one input and one target field: the common case
            a, b = arrays[self._plain_pair[0]], arrays[self._plain_pair[1]]
            if a.ndim == self.spatial_ndim and b.ndim == self.spatial_ndim:
                x, y = torch.from_numpy(a[None]), torch.from_numpy(b[None])
                if x.dtype != self.dtype:
                    x, y = x.to(self.dtype), y.to(self.dtype)
                return x, y
        by_name = {}
        for name, a in zip(self._plain_names, arrays, strict=True):
            by_name[name] = a[None] if a.ndim == self.spatial_ndim else np.moveaxis(a, -1, 0)

        def group(names: list[str]) -> torch.Tensor:
            a = (
                by_name[names[0]]
                if len(names) == 1
                else np.concatenate([by_name[n] for n in names])
            )
            t = torch.from_numpy(np.ascontiguousarray(a))
            return t if t.dtype == self.dtype else t.to(self.dtype)

        return group(self.inputs), group(self.targets)

    def _read_groups(self, i: int, frames: Frames | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``input`` and ``target`` of sample ``i``; a field in both groups is read once."""
        reads: dict[tuple[str, str], np.ndarray] = {}
        for name, groups in self._groups.items():
            if frames is None or not self.source.fields[name].is_time_series:
                a = self._read(name, i, None)
                reads.update({(name, g): a for g in groups})
                continue
            joined = _join(frames.input, frames.target) if len(groups) == 2 else None
            if joined is None:
                for g in groups:
                    reads[(name, g)] = self._read(name, i, getattr(frames, g))
                continue
            sel, n_in = joined
            a = self._read(name, i, sel)
            reads[(name, "input")] = a if n_in < 0 else a[:n_in]
            reads[(name, "target")] = a if n_in < 0 else a[n_in:]
        return (
            self._stack([reads[(n, "input")] for n in self.inputs], self.inputs, frames),
            self._stack([reads[(n, "target")] for n in self.targets], self.targets, frames),
        )

    def _read(self, name: str, i: int, tslice: slice | None) -> np.ndarray:
        a = self.source.read(name, i, tslice, self._stride)
        if self.check_finite:
            finite = np.isfinite(a)
            if not finite.all():
                raise NonFiniteError(
                    f"{self.source.path}: field {name!r} of sample {i} (status ok) holds "
                    f"{a.size - int(finite.sum())} NaN/Inf values of {a.size}; regenerate the sample or "
                    "mark it failed (`neuralops info FILE --check --deep` lists every such sample)"
                )
        return a

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        if not a.flags.writeable:
            a = a.copy()
        t = torch.from_numpy(a)
        return t if t.dtype == self.dtype else t.to(self.dtype)

    def _stack(
        self, arrays: list[np.ndarray], names: list[str], frames: Frames | None
    ) -> torch.Tensor:
        """Concatenate per-field ``([T,] C_f, *S)`` arrays along channels; static fields follow the time axis."""
        if len(arrays) == 1:
            a = arrays[0]
            return self._tensor(
                a[0] if frames is not None and frames.squeeze and a.ndim > self._static_ndim else a
            )
        series = [frames is not None and self.source.fields[n].is_time_series for n in names]
        if frames is not None and frames.squeeze:
            arrays = [a[0] if s else a for a, s in zip(arrays, series, strict=True)]
            series = [False] * len(arrays)
        axis = 0
        if any(series):
            n_t = next(a.shape[0] for a, s in zip(arrays, series, strict=True) if s)
            arrays = [
                a if s else np.broadcast_to(a, (n_t, *a.shape))
                for a, s in zip(arrays, series, strict=True)
            ]
            axis = 1
        return self._tensor(np.concatenate(arrays, axis=axis))

    # ------------------------------------------------------------------ metadata
    @property
    def path(self) -> str:
        return self.source.path

    @property
    def pde(self) -> str:
        return self.source.pde

    def _channels(self, names: list[str]) -> list[str]:
        return [c for n in names for c in self.source.fields[n].channels]

    @property
    def input_channels(self) -> list[str]:
        return self._channels(self.inputs)

    @property
    def target_channels(self) -> list[str]:
        return self._channels(self.targets)

    def _shape(self, names: list[str], group: str) -> tuple[int, ...]:
        c = len(self._channels(names))
        spatial = self.spatial_shape if not self.source.is_mesh else ("n_nodes",)
        fr = self._frames[0]
        if fr is None or fr.squeeze or not any(self.source.fields[n].is_time_series for n in names):
            return (c, *spatial)
        return (len(fr.indices(group)), c, *spatial)

    @property
    def input_shape(self) -> tuple:
        """Shape of ``item["input"]``: ``([T_in,] C_in, *S)``."""
        return self._shape(self.inputs, "input")

    @property
    def target_shape(self) -> tuple:
        """Shape of ``item["target"]``: ``([T_out,] C_out, *S)``."""
        return self._shape(self.targets, "target")

    def __repr__(self) -> str:
        def group(names, shape):
            return f"{'+'.join(names)} ({', '.join(map(str, shape))})"

        if self.source.is_mesh:
            res = f"mesh, node stride {self._stride[0]}"
        else:
            stored = "x".join(map(str, self._stored_shape()))
            res = "x".join(map(str, self.spatial_shape))
            res += f" (stored {stored}, subsample {self.subsample})" if res != stored else ""
        time = (
            ""
            if self.time is None
            else f"\n  time={self.time}, {len(self._frames)} per trajectory,"
        )
        return (
            f"PDEDataset(\n  path={self.path!r}, pde={self.pde!r}, split={self.split!r}, "
            f"n={len(self)} ({self.n_samples} samples),{time}\n"
            f"  input={group(self.inputs, self.input_shape)}, "
            f"target={group(self.targets, self.target_shape)},\n"
            f"  resolution={res}, view={self.view!r}, params={len(self.param_names)}\n)"
        )

    # ------------------------------------------------------------------ export
    def to_xarray(
        self, indices: Sequence[int] | np.ndarray | None = None, fields: Iterable[str] | None = None
    ):
        """An ``xarray.Dataset`` of ``indices`` (file indices; default this dataset's samples) and ``fields``
        (default all); see :func:`neuralops.data.xarray_export.to_xarray`. Stored resolution, no windows."""
        from neuralops.data.xarray_export import to_xarray

        return to_xarray(self.source, self.indices if indices is None else indices, fields)

    def normalizer(
        self, kind: str = "gaussian", *, pointwise: bool = False, **options: Any
    ) -> Normalizer:
        """A :class:`~neuralops.data.Normalizer` for ``input`` and ``target`` from the train split.

        Per channel it uses the file's ``/stats`` (train split, float64); ``pointwise=True`` (or a file without
        ``/stats``) streams over the train split with this dataset's fields, subsample and time settings.
        ``options`` go to the normalizer (``eps``; ``low``/``high`` for ``"range"``).
        """
        if kind not in Normalizer.kinds():
            raise ValueError(f"kind must be one of {list(Normalizer.kinds())}, got {kind!r}")
        if kind == "identity":
            return IdentityNormalizer()
        groups = {"input": self.inputs, "target": self.targets}
        missing = [n for names in groups.values() for n in names if n not in self.source.stats]
        if not pointwise and not missing:
            ones = (1,) * self.spatial_ndim
            stats = {
                key: {
                    s: np.concatenate([self.source.stats[n][s] for n in names]).reshape(-1, *ones)
                    for s in ("mean", "std", "min", "max")
                    if all(s in self.source.stats[n] for n in names)
                }
                for key, names in groups.items()
            }
            return Normalizer.build(kind, stats, **options)
        if missing and not pointwise:
            log.info("%s: no /stats for %s; streaming over the train split", self.path, missing)
        if "train" not in self.source.splits:
            raise DataError(
                f"{self.path}: no train split to compute statistics on; use "
                "Normalizer.fit(dataset, kind) on the samples you want"
            )
        train = PDEDataset(
            self.source,
            "train",
            inputs=self.inputs,
            targets=self.targets,
            time=self.time,
            subsample=self.subsample,
            include=(),
            dtype=torch.float64,
            allow_incomplete=True,
        )
        return Normalizer.fit(train, kind, pointwise=pointwise, **options)

    def close(self) -> None:
        self.source.close()
