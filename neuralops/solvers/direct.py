"""Sparse direct solve (SuperLU) behind the solver interface."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from neuralops.solvers._checks import check_system
from neuralops.solvers.solution import Solution

__all__ = ["Direct"]


@dataclass(frozen=True)
class Direct:
    """Sparse LU factorisation (SuperLU, COLAMD ordering) and a solve.

    >>> import scipy.sparse as sp, numpy as np
    >>> A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(5, 5))
    >>> sol = Direct().solve(A, np.ones(5))
    >>> sol.converged, round(float(sol.x[2]), 12)
    (True, 4.5)
    """

    permc_spec: str = "COLAMD"

    def solve(self, A, b: np.ndarray, *, M=None, x0=None) -> Solution:
        """Solve ``A x = b``; ``A`` (n, n) sparse or dense, ``b`` (n,). ``M``/``x0`` are ignored."""
        A, b = check_system(A, b)
        t0 = time.perf_counter()
        bnorm = float(np.linalg.norm(b))
        if bnorm == 0.0:
            return Solution(np.zeros_like(b), True, 0, 0.0, np.zeros(1), 0.0, "b = 0: x = 0")
        try:
            if sp.issparse(A):
                x = spla.splu(sp.csc_matrix(A), permc_spec=self.permc_spec).solve(b)
            else:
                x = np.linalg.solve(np.asarray(A), b)
        except (RuntimeError, np.linalg.LinAlgError) as exc:
            return Solution(
                np.full_like(b, np.nan),
                False,
                0,
                float("nan"),
                np.empty(0),
                time.perf_counter() - t0,
                f"factorisation failed ({exc}): the matrix is singular; check boundary conditions",
            )
        res = float(np.linalg.norm(b - A @ x) / bnorm)
        ok = bool(np.isfinite(res))
        return Solution(
            x,
            ok,
            0,
            res,
            np.array([1.0, res]),
            time.perf_counter() - t0,
            "" if ok else "non-finite solution: the matrix is singular or ill-posed",
        )
