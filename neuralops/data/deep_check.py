"""The ``--deep`` pass of the validator: read every ok sample, one sample of one field at a time.

Reading verifies each chunk's fletcher32 checksum; the pass also reports the first NaN/Inf per
field, recomputes the train statistics (streamed in float64, rel. tol 1e-6) and the content digest.
Problems come back as :class:`~neuralops.data.problems.Problem` records (all errors).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neuralops.data.errors import DataError, DataFileError
from neuralops.data.problems import Problem
from neuralops.data.schema import OK, content_digest, read_sample_field, str_list

__all__ = ["STAT_KEYS", "STATS_RTOL", "deep_findings", "n_channels", "field_dims"]

STAT_KEYS = ("mean", "std", "min", "max")
STATS_RTOL = 1e-6
_MAX_REPORTED = 3  # per field, corrupt samples named one by one before a summary line


def field_dims(ds: h5py.Dataset) -> list[str]:
    """The ``dims`` attribute of a field, or [] when absent or unreadable."""
    try:
        return str_list(ds.attrs["dims"]) if "dims" in ds.attrs else []
    except DataError:
        return []


def n_channels(ds: h5py.Dataset, ragged: bool) -> int:
    """Channels of a field as the statistics count them: the component (or ragged last) axis."""
    if ragged:
        return ds.shape[-1] if ds.ndim > 1 else 1
    dims = field_dims(ds)
    return ds.shape[-1] if dims and dims[-1] == "component" else 1


class _Moments:
    """Per-channel mean/std/min/max streamed in float64 (Chan's merge, as the writer does)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = self.m2 = self.lo = self.hi = None

    def add(self, a: np.ndarray) -> None:
        if a.shape[0] == 0:
            return
        k, mu = a.shape[0], a.mean(axis=0)
        s2 = ((a - mu) ** 2).sum(axis=0)
        if self.mean is None:
            self.n, self.mean, self.m2, self.lo, self.hi = k, mu, s2, a.min(0), a.max(0)
            return
        delta, tot = mu - self.mean, self.n + k
        self.mean = self.mean + delta * (k / tot)
        self.m2 = self.m2 + s2 + delta**2 * (self.n * k / tot)
        self.n = tot
        self.lo, self.hi = np.minimum(self.lo, a.min(0)), np.maximum(self.hi, a.max(0))

    def result(self) -> dict[str, np.ndarray] | None:
        if self.mean is None:
            return None
        std = np.sqrt(self.m2 / max(self.n, 1))
        return {"mean": self.mean, "std": std, "min": self.lo, "max": self.hi}


def deep_findings(
    f: h5py.File, path: Path, status: np.ndarray, train: np.ndarray, ragged: bool
) -> list[Problem]:
    """Read every ok sample of every field; ``train`` are the indices the stats cover."""
    out: list[Problem] = []
    fields = f.get("fields")
    if not isinstance(fields, h5py.Group):
        return out
    ok = np.flatnonzero(status == OK)
    in_train = np.zeros(status.size, dtype=bool)
    in_train[train] = True
    any_corrupt = False
    for name, ds in fields.items():
        if not isinstance(ds, h5py.Dataset):
            continue
        if not ragged and (ds.ndim == 0 or ds.shape[0] != status.size):
            continue  # reported as field-length
        any_corrupt |= _field(out, f, path, name, n_channels(ds, ragged), ok, in_train)
    stored = f.attrs.get("content_sha256")
    stored = stored.decode() if isinstance(stored, bytes) else stored
    if not isinstance(stored, str):
        return out
    try:
        actual = content_digest(f)
    except OSError as exc:
        if not any_corrupt:
            out.append(
                Problem(
                    "chunk-corrupt",
                    "/",
                    f"computing the content digest failed ({exc}); a "
                    "chunk is corrupt (perhaps in a failed sample): re-download or regenerate",
                )
            )
        return out
    if actual != stored:
        out.append(
            Problem(
                "digest-mismatch",
                "/",
                f"content_sha256 is {stored[:16]}..., but the content "
                f"hashes to {actual[:16]}...: the data changed after finalize",
            )
        )
    return out


def _field(out, f, path, name, channels, ok, in_train) -> bool:
    """Check one field; True when some sample could not be read."""
    loc = f"/fields/{name}"
    mom = _Moments()
    corrupt, bad_samples, first = 0, 0, None
    for i in ok:
        try:
            a = read_sample_field(f, name, int(i), path)
        except DataFileError as exc:
            corrupt += 1
            if corrupt <= _MAX_REPORTED:
                out.append(Problem("chunk-corrupt", f"{loc}[{i}]", str(exc)))
            continue
        finite = np.isfinite(a)
        if not finite.all():
            bad_samples += 1
            if first is None:
                at = np.unravel_index(int(np.argmin(finite)), a.shape)
                first = (int(i), tuple(int(k) for k in at), a[at], int((~finite).sum()))
        if in_train[i]:
            mom.add(np.asarray(a, dtype=np.float64).reshape(-1, channels))
    if corrupt > _MAX_REPORTED:
        out.append(
            Problem(
                "chunk-corrupt",
                loc,
                f"{corrupt} ok samples in all cannot be read (the "
                f"first {_MAX_REPORTED} are listed); re-download or regenerate",
            )
        )
    if first is not None:
        i, at, value, count = first
        out.append(
            Problem(
                "nonfinite",
                f"{loc}[{i}]",
                f"ok sample {i} holds {count} non-finite values, "
                f"the first {value} at index {at}; {bad_samples} ok samples of {name!r} hold "
                "NaN/Inf: regenerate them or mark them failed",
            )
        )
    if corrupt == 0:
        out += _compare_stats(f, name, mom.result())
    return corrupt > 0


def _compare_stats(f: h5py.File, name: str, fresh: dict | None) -> list[Problem]:
    g = f.get(f"stats/{name}")
    if fresh is None or not isinstance(g, h5py.Group):
        return []
    out = []
    scale = np.maximum(np.abs(fresh["min"]), np.abs(fresh["max"]))
    for key in STAT_KEYS:
        if key not in g:
            continue
        stored = g[key][...]
        same = stored.shape == fresh[key].shape and bool(
            np.all(
                np.isclose(
                    stored, fresh[key], rtol=STATS_RTOL, atol=STATS_RTOL * scale, equal_nan=True
                )
            )
        )
        if not same:
            out.append(
                Problem(
                    "stats-mismatch",
                    f"/stats/{name}/{key}",
                    f"stored {stored.tolist()}, "
                    f"but the train split gives {fresh[key].tolist()} (rel. tol "
                    f"{STATS_RTOL:g}); recompute the statistics",
                )
            )
    return out
