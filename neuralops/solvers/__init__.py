"""Linear solvers behind one interface: ``solver.solve(A, b, *, M=None, x0=None) -> Solution``.

``neuralops.solvers`` imports nothing else from neuralops, so simulation codes can use it alone.

- operators: :func:`as_operator` over scipy sparse, dense, torch CSR and matvec callables;
- Krylov: :class:`CG` (PCG), :class:`GMRES` (flexible), shortcuts :func:`cg`, :func:`pcg`,
  :func:`gmres`; sparse direct: :class:`Direct` (:meth:`Direct.factorize` for reuse);
- preconditioners: :class:`Identity`, :class:`Jacobi`, :class:`IC0`, :class:`ILU`, :class:`AMG`, :class:`ASM`,
  :class:`NetworkPreconditioner`, by name via :func:`make_preconditioner`;
- by name: :func:`make_solver`, :data:`SOLVERS`, :data:`PRECONDITIONERS`; test matrices:
  :mod:`neuralops.solvers.gallery`;
- recycling (``GCRODR``, ``RecycleSpace``, ``skr_order``, ``solve_sequence``), relaxation
  (``sor``, ``ssor_pcg``, ``TsallisINF``, ...) and the deep conjugate direction method (``DCDM``,
  ``MaskedGridNetwork``; the shortcut is ``neuralops.solvers.dcdm.dcdm``) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from neuralops.solvers import gallery
from neuralops.solvers.direct import Direct, LUFactorization
from neuralops.solvers.factory import SOLVERS, Preconditioned, Reused, make_solver, register_solver
from neuralops.solvers.krylov import CG, GMRES, cg, gmres, pcg
from neuralops.solvers.operators import (
    AbstractOperator,
    CallableOperator,
    MatrixOperator,
    TorchCSROperator,
    as_operator,
)
from neuralops.solvers.precond import (
    AMG,
    ASM,
    IC0,
    ILU,
    PRECONDITIONERS,
    AbstractPreconditioner,
    Identity,
    Jacobi,
    NetworkPreconditioner,
    make_preconditioner,
)
from neuralops.solvers.solution import STOP_REASONS, Solution

#: names served lazily from modules written separately (a missing one must not break import)
_LAZY = {
    "GCRODR": "neuralops.solvers.recycling",
    "RecycleSpace": "neuralops.solvers.recycling",
    "skr_order": "neuralops.solvers.sorting",
    "solve_sequence": "neuralops.solvers.sorting",
    "sor": "neuralops.solvers.relax",
    "ssor_pcg": "neuralops.solvers.relax",
    "SSORPreconditioner": "neuralops.solvers.relax",
    "TsallisINF": "neuralops.solvers.relax",
    "BinnedTsallisINF": "neuralops.solvers.relax",
    "DCDM": "neuralops.solvers.dcdm",
    "MaskedGridNetwork": "neuralops.solvers.dcdm",
}

__all__ = [
    "AMG",
    "ASM",
    "CG",
    "GMRES",
    "IC0",
    "ILU",
    "PRECONDITIONERS",
    "SOLVERS",
    "STOP_REASONS",
    "AbstractOperator",
    "AbstractPreconditioner",
    "CallableOperator",
    "Direct",
    "Identity",
    "Jacobi",
    "LUFactorization",
    "MatrixOperator",
    "NetworkPreconditioner",
    "Preconditioned",
    "Reused",
    "Solution",
    "TorchCSROperator",
    "as_operator",
    "cg",
    "gallery",
    "gmres",
    "make_preconditioner",
    "make_solver",
    "pcg",
    "register_solver",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neuralops.solvers' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise AttributeError(
            f"neuralops.solvers.{name} is provided by {module}, which is not available ({exc})"
        ) from exc
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
