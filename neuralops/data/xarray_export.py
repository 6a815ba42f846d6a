"""Export samples of a source to an :class:`xarray.Dataset` (for inspection, plotting and netCDF).

Grid files give variables with dims ``("sample", ["time",] *spatial_dims[, "<field>_component"])``, the
``sample`` coordinate holding file indices, spatial coordinates from ``/coords`` and ``time`` from
``/coords/t``. Mesh files give a ``node`` dim with per-node coordinates ``node_sample`` (the file index of the
sample a node belongs to; named so because ``sample`` is already the per-sample dim) and the node positions
(one coordinate per spatial dim).

Per-sample variables: ``param_<name>``, ``status``, ``error``, ``solver_<record>``. Attributes are
netCDF-serialisable (strings and numbers only), so ``ds.to_netcdf(...)`` works wherever a netCDF backend is
installed. Everything selected is loaded into memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from neuralops.data.source import AbstractSource

__all__ = ["to_xarray", "FILE_ATTRS"]

#: file attributes copied to the exported dataset when present
FILE_ATTRS = (
    "schema",
    "pde",
    "recipe",
    "recipe_sha256",
    "package_version",
    "seed",
    "created",
    "grid",
    "n_samples",
    "spatial_dims",
    "complete",
    "content_sha256",
)


def _nc_attr(value: Any) -> str | int | float:
    """A netCDF-safe attribute: bools -> 0/1, lists of names -> comma-joined string."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "OUS"
    ):
        return ",".join(str(v) for v in value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return str(value)


def to_xarray(
    source: AbstractSource,
    indices: Sequence[int] | np.ndarray | None = None,
    fields: Iterable[str] | None = None,
):
    """Samples ``indices`` (file indices; default all ok samples) of ``fields`` (default all) as an
    ``xarray.Dataset``. Failed samples may be exported on purpose: their fields are NaN and ``status`` says so.
    """
    import xarray as xr

    if indices is None:
        idx = np.flatnonzero(source.status == 1).astype(np.int64)
    else:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = idx[(idx < 0) | (idx >= source.n_samples)]
        if bad.size:
            raise IndexError(
                f"{source.path}: indices {bad.tolist()} out of range [0, {source.n_samples})"
            )
    names = list(source.fields) if fields is None else [source.field(n).name for n in fields]

    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {"sample": ("sample", idx)}
    if source.is_mesh:
        counts = np.array([source.n_nodes(int(i)) for i in idx], dtype=np.int64)
        coords["node_sample"] = ("node", np.repeat(idx, counts))
        pos = [source.read_pos(int(i)) for i in idx]
        pos_all = np.concatenate(pos) if pos else np.zeros((0, len(source.spatial_dims)))
        for k, dim in enumerate(source.spatial_dims[: pos_all.shape[1]]):
            coords[dim] = ("node", pos_all[:, k])
    else:
        for dim in source.spatial_dims:
            if dim in source.coords:
                coords[dim] = (dim, source.coords[dim])
    for name in names:
        info = source.field(name)
        arrays = [source.read(name, int(i)) for i in idx]  # ([T,] C, *S) or (C, n)
        attrs = {"units": info.units, "role": info.role, "description": info.description}
        vector = len(info.channels) > 1 or info.channels != (name,)
        comp = f"{name}_component"
        if source.is_mesh:
            a = np.concatenate(arrays, axis=1) if arrays else np.zeros((info.n_channels, 0))
            a = a.T  # (node, C)
            dims: tuple[str, ...] = ("node", comp) if vector else ("node",)
            data_vars[name] = (dims, a if vector else a[:, 0], attrs)
        else:
            a = np.stack(arrays) if arrays else np.zeros((0, *info.sample_shape))
            c_axis = 2 if info.is_time_series else 1
            a = np.moveaxis(a, c_axis, -1) if vector else np.squeeze(a, axis=c_axis)
            dims = ("sample", *(("time",) if info.is_time_series else ()), *source.spatial_dims)
            data_vars[name] = (dims + ((comp,) if vector else ()), a, attrs)
            if info.is_time_series and "t" in source.coords and "time" not in coords:
                coords["time"] = ("time", source.coords["t"][: info.n_time])
        if vector:
            coords[comp] = (comp, np.array(info.channels, dtype=str))

    for name, values in source.params.items():
        v = np.asarray(values)[idx]
        dims = (
            ("sample",)
            if v.ndim == 1
            else ("sample", *(f"param_{name}_dim{k}" for k in range(1, v.ndim)))
        )
        attrs = {k: _nc_attr(x) for k, x in source.param_attrs.get(name, {}).items()}
        data_vars[f"param_{name}"] = (dims, v, attrs)
    data_vars["status"] = (
        "sample",
        source.status[idx].astype(np.uint8),
        {"description": "0 pending, 1 ok, 2 failed"},
    )
    data_vars["error"] = ("sample", np.array([str(e) for e in source.errors[idx]], dtype=str))
    for name, values in source.solver.items():
        v = np.asarray(values)[idx]
        data_vars[f"solver_{name}"] = ("sample", v.astype(np.int8) if v.dtype == bool else v)

    attrs = {k: _nc_attr(source.attrs[k]) for k in FILE_ATTRS if k in source.attrs}
    attrs.setdefault("pde", source.pde)
    attrs["source"] = str(source.path)
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)
