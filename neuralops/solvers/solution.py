"""The record every neuralops solve returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Solution"]


@dataclass(frozen=True)
class Solution:
    """Result of one linear solve. A solve never raises on non-convergence: check ``converged``.

    Attributes
    ----------
    x: the approximate solution, shape (n,) (or (n, k) for k right-hand sides).
    converged: whether the stopping criterion was met.
    iterations: Krylov iterations (0 for direct solvers).
    residual: final relative residual ``||b - A x|| / ||b||`` as the solver measured it.
    residual_history: relative residual after each iteration (starting with the initial one).
    seconds: wall time of the solve.
    message: what happened and, when it failed, what to try.
    info: solver-specific extras (breakdown flags, recycle-space size, ...).
    """

    x: np.ndarray
    converged: bool
    iterations: int
    residual: float
    residual_history: np.ndarray = field(default_factory=lambda: np.empty(0))
    seconds: float = 0.0
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        state = "converged" if self.converged else "NOT converged"
        return (
            f"Solution({state}, n={np.shape(self.x)[0]}, iterations={self.iterations}, "
            f"residual={self.residual:.3e}, seconds={self.seconds:.3g}"
            + (f", message={self.message!r}" if self.message else "")
            + ")"
        )
