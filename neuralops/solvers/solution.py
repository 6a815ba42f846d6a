"""The record every neuralops solve returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Solution", "STOP_REASONS"]

#: why an iteration stopped: the tolerances were met, or what went wrong
STOP_REASONS = ("rtol", "atol", "maxiter", "breakdown", "nonfinite", "direct", "zero_rhs")


@dataclass(frozen=True)
class Solution:
    """Result of one linear solve. A solve never raises on non-convergence: check ``converged``.

    Attributes
    ----------
    x: the approximate solution (the best iterate when not converged), shape (n,) or (n, k).
    converged: whether ``||b - A x|| <= max(rtol ||b||, atol)`` was met.
    iterations: Krylov steps (preconditioner applications), 0 if ``x0`` already satisfied the test.
    residual: final relative residual ``||b - A x|| / ||b||``.
    residuals: residual norms ``||b - A x_k||`` after each step, starting with the initial one
        (``info["norm"]`` says whether they are true or recurrence norms).
    seconds: wall time of the solve (set-up of preconditioners excluded, see ``info``).
    message: empty on success; otherwise what happened and what to try.
    info: ``method``, ``stop_reason`` (one of :data:`STOP_REASONS`), ``matvecs``,
        ``precond_applies``, ``setup_seconds``, ``rtol``, ``atol``, ``norm``, and extras.
    """

    x: np.ndarray
    converged: bool
    iterations: int
    residual: float
    residuals: np.ndarray = field(default_factory=lambda: np.empty(0))
    seconds: float = 0.0
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def stop_reason(self) -> str:
        return str(self.info.get("stop_reason", "rtol" if self.converged else "maxiter"))

    def __repr__(self) -> str:
        state = "converged" if self.converged else f"NOT converged ({self.stop_reason})"
        method = self.info.get("method", "")
        return (
            f"Solution({method + ', ' if method else ''}{state}, n={np.shape(self.x)[0]}, "
            f"iterations={self.iterations}, residual={self.residual:.3e}, "
            f"seconds={self.seconds:.3g}"
            + (f", message={self.message!r}" if self.message else "")
            + ")"
        )
