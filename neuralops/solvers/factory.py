"""Solvers by name, as a dataset recipe's ``[solver]`` table names them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralops.solvers.cg import CG
from neuralops.solvers.direct import Direct
from neuralops.solvers.preconditioners import PRECONDITIONERS, make_preconditioner
from neuralops.solvers.solution import Solution

__all__ = ["Preconditioned", "make_solver", "SOLVERS"]

SOLVERS = ("direct", "cg", "pcg")


@dataclass(frozen=True)
class Preconditioned:
    """Wrap a Krylov solver with a preconditioner built per matrix: ``Preconditioned(CG(), "jacobi")``."""

    solver: CG
    preconditioner: str = "jacobi"

    def solve(self, A, b: np.ndarray, *, x0=None) -> Solution:
        """Build ``M`` for ``A`` (n, n), then solve ``A x = b`` with ``b`` (n,)."""
        M = make_preconditioner(self.preconditioner, A)
        return self.solver.solve(A, b, M=M, x0=x0)


def make_solver(
    method: str, *, preconditioner: str = "none", rtol: float = 1e-8, maxiter: int | None = None
):
    """Solver object from recipe names: ``direct``, ``cg``, ``pcg`` (+ ``preconditioner``)."""
    if method not in SOLVERS:
        raise ValueError(f"unknown solver method {method!r}; choose one of {list(SOLVERS)}")
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(
            f"unknown preconditioner {preconditioner!r}; choose one of {sorted(PRECONDITIONERS)}"
        )
    if method == "direct":
        return Direct()
    cg = CG(rtol=rtol, maxiter=maxiter)
    if method == "pcg" and preconditioner == "none":
        preconditioner = "jacobi"
    return cg if preconditioner == "none" else Preconditioned(cg, preconditioner)
