"""What ``neuralops info FILE`` prints: :func:`info_dict` (JSON-ready) and :func:`summarize` (text).

Both read metadata and the small per-sample arrays (status, params, solver records); fields are
never read, so describing a 100 GB file takes milliseconds. Files of another schema are described
as far as their layout allows (``neuralops info --check`` says what is wrong with them).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import h5py
import numpy as np

from neuralops.data.errors import DataError
from neuralops.data.schema import FAILED, OK, PENDING, open_file, str_list

__all__ = ["info_dict", "summarize"]

_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
_QUANTILES = {"min": 0.0, "p10": 0.1, "p50": 0.5, "p90": 0.9, "max": 1.0}


def _py(value):
    """numpy scalars/arrays and bytes as plain JSON values; NaN and Inf become None."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return str_list(value)
        return [_py(v) for v in value.tolist()] if value.ndim else _py(value.item())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_py(v) for v in value]
    return value


def _names(obj: h5py.HLObject, attr: str) -> list[str] | None:
    try:
        return str_list(obj.attrs[attr]) if attr in obj.attrs else None
    except DataError:
        return None


def _attr_str(ds: h5py.HLObject, name: str) -> str | None:
    value = ds.attrs.get(name)
    return None if value is None else str(_py(value))


def _quantiles(x: np.ndarray) -> dict[str, float | None] | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    out = {k: float(np.quantile(x, q)) for k, q in _QUANTILES.items()}
    out["mean"] = float(x.mean())
    return out


def info_dict(path: str | os.PathLike) -> dict:
    """Describe ``path`` as a JSON-serialisable dict (raises :class:`DataFileError` if unreadable).

    Keys: ``path``, root attributes (``schema``, ``pde``, ``n_samples``, ``grid``, ``spatial_dims``,
    ``seed``, ``package_version``, ``created``, ``complete``, ``content_sha256``, ``recipe_sha256``),
    ``status`` counts, ``fields``, ``coords``, ``params``, ``splits`` sizes, ``solver`` quantiles over
    ok samples and ``stats`` (train split, per channel).
    """
    path = Path(path)
    with open_file(path) as f:
        a = f.attrs
        out: dict = {"path": str(path)}
        for key in (
            "schema",
            "pde",
            "n_samples",
            "grid",
            "spatial_dims",
            "seed",
            "package_version",
            "created",
            "complete",
            "content_sha256",
            "recipe_sha256",
        ):
            out[key] = _py(a[key]) if key in a else None
        out["spatial_dims"] = _names(f, "spatial_dims")
        st = f["status"][...] if isinstance(f.get("status"), h5py.Dataset) else None
        ok = np.flatnonzero(st == OK) if st is not None else None
        out["status"] = (
            None
            if st is None
            else {
                "ok": int((st == OK).sum()),
                "failed": int((st == FAILED).sum()),
                "pending": int((st == PENDING).sum()),
            }
        )
        out["fields"] = {}
        for name, ds in f.get("fields", {}).items():
            if not isinstance(ds, h5py.Dataset):
                continue
            out["fields"][name] = {
                "role": _attr_str(ds, "role"),
                "shape": list(ds.shape),
                "dims": _names(ds, "dims"),
                "units": _attr_str(ds, "units"),
                "dtype": str(ds.dtype),
                "channels": _names(ds, "channels"),
                "chunks": list(ds.chunks) if ds.chunks else None,
                "fletcher32": bool(ds.fletcher32),
                "compression": ds.compression,
                "description": _attr_str(ds, "description"),
            }
        out["coords"] = {}
        for name, ds in f.get("coords", {}).items():
            c = ds[...].astype(np.float64).ravel() if isinstance(ds, h5py.Dataset) else None
            if c is None or c.size == 0:
                continue
            step = np.diff(c)
            uniform = bool(c.size < 3 or np.allclose(step, step[0], rtol=1e-9, atol=0))
            out["coords"][name] = {
                "n": int(c.size),
                "min": float(c.min()),
                "max": float(c.max()),
                "uniform": uniform,
            }
        out["params"] = {}
        for name, ds in f.get("params", {}).items():
            if not isinstance(ds, h5py.Dataset):
                continue
            v = ds[...]
            v = v[ok[ok < len(v)]] if ok is not None and v.ndim else v
            finite = v[np.isfinite(v)] if v.dtype.kind in "fiu" else np.array([])
            out["params"][name] = {
                "shape": list(ds.shape),
                "units": _attr_str(ds, "units"),
                "distribution": _attr_str(ds, "distribution"),
                "min": float(finite.min()) if finite.size else None,
                "max": float(finite.max()) if finite.size else None,
            }
        splits = f.get("splits", {})
        order = sorted(splits, key=lambda s: (_SPLIT_ORDER.get(s, 3), s))
        out["splits"] = {
            name: int(splits[name].shape[0]) if splits[name].ndim else 0
            for name in order
            if isinstance(splits[name], h5py.Dataset)
        }
        out["solver"] = _solver(f, ok)
        out["stats"] = {
            name: {k: _py(g[k][...]) for k in ("mean", "std", "min", "max") if k in g}
            for name, g in f.get("stats", {}).items()
            if isinstance(g, h5py.Group)
        }
    return out


def _solver(f: h5py.File, ok: np.ndarray | None) -> dict | None:
    g = f.get("solver")
    if not isinstance(g, h5py.Group) or ok is None:
        return None
    out: dict = {"over": int(ok.size)}
    for key in ("iterations", "residual", "seconds"):
        ds = g.get(key)
        out[key] = (
            _quantiles(ds[...][ok[ok < ds.shape[0]]]) if isinstance(ds, h5py.Dataset) else None
        )
    conv = g.get("converged")
    out["converged"] = (
        int(conv[...][ok[ok < conv.shape[0]]].sum()) if isinstance(conv, h5py.Dataset) else None
    )
    return out


def _table(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def summarize(path: str | os.PathLike) -> str:
    """The human-readable text of ``neuralops info FILE`` (raises :class:`DataFileError`)."""
    d = info_dict(path)
    lines = [f"{d['path']}"]
    pad = " " * 14

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<11} {text}")

    row("pde", str(d["pde"]))
    st = d["status"]
    if st is not None:
        state = "complete" if d["complete"] else "incomplete"
        row(
            "samples",
            f"{d['n_samples']} ({st['ok']} ok, {st['failed']} failed, "
            f"{st['pending']} pending; {state})",
        )
    else:
        row("samples", f"{d['n_samples']} (no /status)")
    dims = ", ".join(d["spatial_dims"] or [])
    row("grid", f"{d['grid']} ({dims})")
    if d["fields"]:
        rows = [["name", "role", "shape", "units", "dtype", "dims"]]
        for name, fd in d["fields"].items():
            rows.append(
                [
                    name,
                    str(fd["role"]),
                    "(" + ", ".join(map(str, fd["shape"])) + ")",
                    str(fd["units"]),
                    fd["dtype"],
                    " ".join(fd["dims"] or []),
                ]
            )
        table = _table(rows, pad)
        row("fields", table[0].strip())
        lines += table[1:]
    else:
        row("fields", "none")
    for k, (name, c) in enumerate(d["coords"].items()):
        kind = "uniform" if c["uniform"] else "non-uniform"
        row(
            "coords" if k == 0 else "",
            f"{name}: {c['n']} points in [{c['min']:.4g}, {c['max']:.4g}] ({kind})",
        )
    for k, (name, p) in enumerate(d["params"].items()):
        dist = f", {p['distribution']}" if p["distribution"] else ""
        row(
            "params" if k == 0 else "",
            f"{name} {tuple(p['shape'])} units {p['units']}{dist}, "
            f"range [{_g(p['min'])}, {_g(p['max'])}]",
        )
    splits = ", ".join(f"{k} {v}" for k, v in d["splits"].items()) or "none"
    row("splits", splits)
    sv = d["solver"]
    if sv is not None and sv["over"]:
        rows = [["", *_QUANTILES, "mean"]]
        for key in ("iterations", "residual", "seconds"):
            q = sv[key]
            rows.append([key, *(_g(q[c]) if q else "-" for c in rows[0][1:])])
        table = _table(rows, pad)
        row("solver", f"over {sv['over']} ok samples, {sv['converged']} converged")
        lines += table
    row(
        "schema",
        f"{d['schema']}, written by neuralops {d['package_version']} "
        f"on {d['created']}, seed {d['seed']}",
    )
    digest = d["content_sha256"]
    row("digest", f"sha256 {digest[:16]}..." if digest else "none (not finalized)")
    return "\n".join(lines)
