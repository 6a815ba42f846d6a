"""Linear solvers behind one interface: ``solver.solve(A, b, *, M=None, x0=None) -> Solution``.

``neuralops.solvers`` imports nothing else from neuralops, so simulation codes can use it alone.
"""

from neuralops.solvers.cg import CG
from neuralops.solvers.direct import Direct
from neuralops.solvers.factory import SOLVERS, Preconditioned, make_solver
from neuralops.solvers.preconditioners import PRECONDITIONERS, Jacobi, make_preconditioner
from neuralops.solvers.solution import Solution

__all__ = [
    "CG",
    "Direct",
    "Jacobi",
    "Preconditioned",
    "Solution",
    "SOLVERS",
    "PRECONDITIONERS",
    "make_solver",
    "make_preconditioner",
]
