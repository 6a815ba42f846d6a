"""Shared pieces of the time-dependent families: time options, snapshot times, periodic grids.

A time-dependent family overrides :meth:`~neuralops.pde.base.AbstractPDEFamily.solve`, integrates
from ``t = 0`` to ``t_end`` with step ``dt`` and stores the state at ``t = 0, record_every,
2 record_every, ..., t_end`` (``n_snapshots = t_end / record_every + 1`` frames) as a field of dims
``(sample, time, *space)`` with role ``"input,target"``, so :class:`~neuralops.data.PDEDataset`
cuts it into time windows or all2all pairs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralops.data.errors import RecipeError
from neuralops.data.schema import SolverRecord
from neuralops.pde.base import SampleResult

__all__ = ["TimeOptions", "integrate", "periodic_coords", "check_periodic_grid"]


def _number(
    options: Mapping[str, Any], key: str, default: float, *, positive: bool = True
) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecipeError(f"'pde.{key}' must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise RecipeError(f"'pde.{key}' must be > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TimeOptions:
    """``dt`` (integration step), ``t_end``, ``record_every`` (snapshot interval, a multiple of dt)."""

    dt: float
    t_end: float
    record_every: float

    @classmethod
    def from_options(cls, options: Mapping[str, Any], defaults: Mapping[str, float]) -> TimeOptions:
        t = cls(
            _number(options, "dt", defaults["dt"]),
            _number(options, "t_end", defaults["t_end"]),
            _number(options, "record_every", defaults["record_every"]),
        )
        for name, value in (("record_every", t.record_every), ("t_end", t.t_end)):
            ratio = value / t.dt
            if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio):
                raise RecipeError(
                    f"'pde.{name}' = {value:g} must be a whole number of steps dt = {t.dt:g}"
                )
        ratio = t.t_end / t.record_every
        if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio):
            raise RecipeError(
                f"'pde.t_end' = {t.t_end:g} must be a whole number of record_every = "
                f"{t.record_every:g}"
            )
        return t

    @property
    def steps_per_record(self) -> int:
        return round(self.record_every / self.dt)

    @property
    def n_snapshots(self) -> int:
        """Stored frames, the initial state included."""
        return round(self.t_end / self.record_every) + 1

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.n_snapshots) * self.record_every


def check_periodic_grid(size: tuple[int, ...], stride: int, dims: int, family: str) -> None:
    """A periodic grid of ``dims`` axes, even sizes divisible by the store stride."""
    if len(size) != dims:
        raise RecipeError(
            f"'dataset.grid.size' must have {dims} entr{'y' if dims == 1 else 'ies'} for {family}, "
            f"got {list(size)}"
        )
    for s in size:
        if not isinstance(s, int) or s < 8 or s % 2:
            raise RecipeError(
                f"'dataset.grid.size' entries must be even integers >= 8 for the periodic "
                f"{family} grid (points per axis, endpoint excluded), got {list(size)}"
            )
        if not isinstance(stride, int) or stride < 1 or s % stride:
            raise RecipeError(
                f"'dataset.grid.store_stride' = {stride!r} must divide the grid size {s} "
                "(e.g. 256 -> 64 with stride 4)"
            )


def periodic_coords(size: tuple[int, ...], stride: int, names: tuple[str, ...]) -> dict:
    """Coordinates of the stored periodic grid on [0, 1)^d (endpoint excluded)."""
    return {n: np.arange(0, s, stride) / s for n, s in zip(names, size, strict=True)}


def integrate(
    run: Callable[[], np.ndarray], steps: int, store: Callable[[np.ndarray], dict]
) -> SampleResult:
    """Run a time integration ``run() -> trajectory``; a ``FloatingPointError`` (divergence) makes
    a failed sample with its time, otherwise the fields ``store(trajectory)`` with ``steps`` as the
    iteration count."""
    t0 = time.perf_counter()
    try:
        traj = run()
    except FloatingPointError as exc:
        rec = SolverRecord(seconds=time.perf_counter() - t0)
        return SampleResult({}, {}, rec, failed=True, error=str(exc))
    rec = SolverRecord(
        iterations=steps, residual=0.0, seconds=time.perf_counter() - t0, converged=True
    )
    return SampleResult(store(traj), {}, rec)
