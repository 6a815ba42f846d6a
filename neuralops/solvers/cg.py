"""Conjugate gradients with an optional preconditioner ``z = M r``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from neuralops.solvers._checks import check_system
from neuralops.solvers.solution import Solution

__all__ = ["CG"]


@dataclass(frozen=True)
class CG:
    """(Preconditioned) conjugate gradients for symmetric positive definite ``A``.

    Stops when ``||r_k|| <= max(rtol * ||b||, atol)``. ``maxiter=None`` means ``10 n``.
    On a loss of positive definiteness (``p^T A p <= 0``) it stops and says so in the
    returned :class:`~neuralops.solvers.Solution`.

    >>> import numpy as np
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> sol = CG(rtol=1e-12).solve(A, np.array([1.0, 2.0]))
    >>> sol.iterations, np.allclose(A @ sol.x, [1.0, 2.0])
    (2, True)
    """

    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int | None = None

    def __post_init__(self) -> None:
        if not (self.rtol >= 0 and self.atol >= 0) or (self.rtol == 0 and self.atol == 0):
            raise ValueError(f"need rtol >= 0, atol >= 0, not both 0; got {self.rtol}, {self.atol}")
        if self.maxiter is not None and self.maxiter < 1:
            raise ValueError(f"maxiter must be >= 1 or None, got {self.maxiter}")

    def solve(self, A, b: np.ndarray, *, M=None, x0: np.ndarray | None = None) -> Solution:
        """Solve ``A x = b``: ``A`` (n, n) with ``@``, ``b`` (n,), ``M`` a callable or object
        with ``@`` applying the preconditioner, ``x0`` (n,) initial guess."""
        A, b = check_system(A, b, x0)
        t0 = time.perf_counter()
        n = b.shape[0]
        maxiter = self.maxiter or 10 * n
        apply_m = (lambda r: r) if M is None else (M if callable(M) else (lambda r: M @ r))
        bnorm = float(np.linalg.norm(b))
        if bnorm == 0.0:
            return Solution(np.zeros_like(b), True, 0, 0.0, np.zeros(1), 0.0, "b = 0: x = 0")
        x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=b.dtype)
        r = b - A @ x if x0 is not None else b.copy()
        tol = max(self.rtol * bnorm, self.atol)
        hist = [float(np.linalg.norm(r)) / bnorm]
        z = apply_m(r)
        p = z.copy()
        rz = float(r @ z)
        message = ""
        k = 0
        converged = hist[-1] * bnorm <= tol
        while not converged and k < maxiter:
            Ap = A @ p
            pAp = float(p @ Ap)
            if not pAp > 0.0:
                message = (
                    f"breakdown at iteration {k}: p^T A p = {pAp:.3e} <= 0; A is not "
                    "symmetric positive definite (use GMRES) or M is not SPD"
                )
                break
            alpha = rz / pAp
            x += alpha * p
            r -= alpha * Ap
            k += 1
            rnorm = float(np.linalg.norm(r))
            hist.append(rnorm / bnorm)
            if not np.isfinite(rnorm):
                message = f"non-finite residual at iteration {k}; check A and M for NaN/Inf"
                break
            if rnorm <= tol:
                converged = True
                break
            z = apply_m(r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        if not converged and not message:
            message = (
                f"no convergence in {maxiter} iterations (residual {hist[-1]:.3e} > "
                f"rtol {self.rtol:.1e}); raise maxiter or use a stronger preconditioner"
            )
        return Solution(
            x, converged, k, hist[-1], np.asarray(hist), time.perf_counter() - t0, message
        )
