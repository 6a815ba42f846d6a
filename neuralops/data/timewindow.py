"""How a trajectory of T snapshots is cut into training samples.

Three modes, chosen with ``PDEDataset(time=...)``:

- :class:`TimeWindow` ``(n_in, n_out, stride, dt_stride)``: every window of ``n_in`` input frames followed by
  ``n_out`` target frames (PDEArena / The Well style). Input ``(n_in, C_in, *S)``, target
  ``(n_out, C_out, *S)``, ``time`` the lead times of the target frames, shape ``(n_out,)``.
- :class:`AllToAll` (``time="all2all"``): every pair of steps ``0 <= i <= j <= max_steps`` (Poseidon,
  arXiv 2405.19101). Input frame ``i`` ``(C_in, *S)``, target frame ``j`` ``(C_out, *S)``,
  ``time = (t_j - t_i) / t_norm``, shape ``()``.
- ``"trajectory"``: the whole trajectory, for rollout evaluation; ``(T, C, *S)`` and ``time`` ``(T,)``.

Every mode reduces to a list of :class:`Frames` per trajectory: which snapshots feed the input and which the
target, each as a strided ``slice`` so the reader can hand it to h5py unchanged.

>>> TimeWindow(n_in=2, n_out=1).count(5)
3
>>> len(AllToAll(max_steps=3).frames(10))  # (K + 1)(K + 2) / 2 with K = 3
10
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
MODES = ("trajectory", "all2all")

__all__ = ["Frames", "TimeWindow", "AllToAll", "TimeSpec", "trajectory_frames", "resolve", "plan"]


@dataclass(frozen=True)
class Frames:
    """Snapshot selection of one sample: ``input`` and ``target`` are slices over the time axis.

    ``squeeze`` is True when both hold one frame and the time axis is dropped (all-to-all pairs).
    """

    input: slice
    target: slice
    squeeze: bool = False

    def indices(self, which: str) -> range:
        """The frame indices selected by ``which`` (``"input"`` or ``"target"``)."""
        s = self.input if which == "input" else self.target
        return range(s.start, s.stop, s.step or 1)


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class TimeWindow:
    """Sliding windows over a trajectory.

    Parameters
    ----------
    n_in:
        Input frames per window.
    n_out:
        Target frames per window, following the inputs.
    stride:
        Snapshots between the starts of consecutive windows.
    dt_stride:
        Snapshots between consecutive frames inside a window (a coarser time step).

    A window spans ``(n_in + n_out - 1) * dt_stride + 1`` snapshots; a trajectory of ``T`` snapshots gives
    ``(T - span) // stride + 1`` windows.
    """

    n_in: int = 1
    n_out: int = 1
    stride: int = 1
    dt_stride: int = 1

    def __post_init__(self) -> None:
        _positive("TimeWindow.n_in", self.n_in)
        _positive("TimeWindow.n_out", self.n_out)
        _positive("TimeWindow.stride", self.stride)
        _positive("TimeWindow.dt_stride", self.dt_stride)

    @property
    def span(self) -> int:
        """Snapshots covered by one window, first input to last target inclusive."""
        return (self.n_in + self.n_out - 1) * self.dt_stride + 1

    def count(self, n_time: int) -> int:
        """Number of windows in a trajectory of ``n_time`` snapshots."""
        return max(0, (n_time - self.span) // self.stride + 1)

    def frames(self, n_time: int) -> list[Frames]:
        """Every window of a trajectory of ``n_time`` snapshots, in order of its first frame."""
        if self.count(n_time) == 0:
            raise ValueError(
                f"{self} spans {self.span} snapshots but trajectories have {n_time}; "
                "lower n_in, n_out or dt_stride"
            )
        d = self.dt_stride
        out = []
        for start in range(0, n_time - self.span + 1, self.stride):
            split = start + self.n_in * d
            out.append(
                Frames(
                    input=slice(start, start + (self.n_in - 1) * d + 1, d),
                    target=slice(split, split + (self.n_out - 1) * d + 1, d),
                )
            )
        return out


@dataclass(frozen=True)
class AllToAll:
    """All pairs of steps ``(i, j)`` with ``0 <= i <= j <= max_steps`` (Poseidon's all2all training).

    Parameters
    ----------
    max_steps:
        ``K``, the last step used; default: as many as the trajectory holds, ``(T - 1) // step``.
    step:
        Snapshots per step: step ``i`` is snapshot ``i * step``.
    t_norm:
        Lead times are ``(t_j - t_i) / t_norm``. The default 1.0 keeps physical units; pass the final time
        to map lead times into [0, 1] as Poseidon does.
    consecutive_only:
        Only the pairs ``(i, i + 1)``: ``K`` pairs instead of ``(K + 1)(K + 2) / 2``.
    """

    max_steps: int | None = None
    step: int = 1
    t_norm: float = 1.0
    consecutive_only: bool = False

    def __post_init__(self) -> None:
        if self.max_steps is not None:
            _positive("AllToAll.max_steps", self.max_steps)
        _positive("AllToAll.step", self.step)
        if not self.t_norm > 0:
            raise ValueError(f"AllToAll.t_norm must be > 0, got {self.t_norm!r}")

    def steps(self, n_time: int) -> int:
        """``K`` for a trajectory of ``n_time`` snapshots; raises if ``max_steps`` does not fit."""
        available = (n_time - 1) // self.step
        if self.max_steps is None:
            k = available
        elif self.max_steps > available:
            raise ValueError(
                f"AllToAll(max_steps={self.max_steps}, step={self.step}) needs "
                f"{self.max_steps * self.step + 1} snapshots but trajectories have {n_time}; "
                f"use max_steps <= {available}"
            )
        else:
            k = self.max_steps
        if k < 1 and self.consecutive_only:
            raise ValueError(f"trajectories of {n_time} snapshots hold no consecutive pair")
        return k

    def count(self, n_time: int) -> int:
        """Pairs per trajectory: ``(K + 1)(K + 2) / 2``, or ``K`` with ``consecutive_only``."""
        k = self.steps(n_time)
        return k if self.consecutive_only else (k + 1) * (k + 2) // 2

    def frames(self, n_time: int) -> list[Frames]:
        """Every pair of a trajectory of ``n_time`` snapshots, ordered by ``i`` then ``j``."""
        k, s = self.steps(n_time), self.step
        if self.consecutive_only:
            pairs = [(i, i + 1) for i in range(k)]
        else:
            pairs = [(i, j) for i in range(k + 1) for j in range(i, k + 1)]
        return [
            Frames(slice(i * s, i * s + 1, 1), slice(j * s, j * s + 1, 1), squeeze=True)
            for i, j in pairs
        ]


def trajectory_frames(n_time: int) -> list[Frames]:
    """The single selection of ``time="trajectory"``: every snapshot as input and as target."""
    return [Frames(slice(0, n_time, 1), slice(0, n_time, 1))]


#: what ``PDEDataset(time=...)`` accepts
TimeSpec = TimeWindow | AllToAll | str | None


def resolve(
    time: TimeSpec, options: Mapping[str, Any] | None, series: Sequence[str], fields: Sequence[str]
) -> TimeWindow | AllToAll | str | None:
    """Validate ``PDEDataset(time=..., time_options=...)`` for the selected ``fields``, of which ``series``
    are time series. Time series default to ``"trajectory"``; ``"all2all"`` becomes an :class:`AllToAll`."""
    if options is not None and time != "all2all":
        raise ValueError(f"time_options only apply to time='all2all', got time={time!r}")
    if isinstance(time, str):
        if time not in MODES:
            raise ValueError(f"time must be one of {MODES}, a TimeWindow or None; got {time!r}")
        if time == "all2all":
            time = AllToAll(**dict(options or {}))
    elif time is not None and not isinstance(time, TimeWindow | AllToAll):
        raise TypeError(
            f"time must be a TimeWindow, AllToAll, str or None, got {type(time).__name__}"
        )
    if time is not None and not series:
        raise ValueError(f"time={time!r} needs a time-series field, but {list(fields)} are static")
    return "trajectory" if time is None and series else time


def plan(
    time: TimeWindow | AllToAll | str, n_time: int, t: np.ndarray | None
) -> tuple[list[Frames], list[np.ndarray]]:
    """The selections of one trajectory of ``n_time`` snapshots at times ``t``, and each one's lead time:
    ``t_out - t_last_in`` ``(n_out,)`` for windows, ``(t_j - t_i) / t_norm`` ``()`` for all-to-all pairs,
    ``t - t_0`` ``(T,)`` for whole trajectories. Without ``t``, times count snapshots."""
    if t is None or len(t) < n_time:
        log.debug("no time axis of length %d; lead times count snapshots", n_time)
        t = np.arange(n_time, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    frames = trajectory_frames(n_time) if time == "trajectory" else time.frames(n_time)
    leads = []
    for fr in frames:
        tin, tout = t[list(fr.indices("input"))], t[list(fr.indices("target"))]
        if time == "trajectory":
            leads.append(tout - t[0])
        elif isinstance(time, AllToAll):
            leads.append(np.asarray((tout[0] - tin[0]) / time.t_norm))
        else:
            leads.append(tout - tin[-1])
    return frames, leads
