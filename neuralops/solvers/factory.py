"""Solvers by name, as a dataset recipe's ``[solver]`` table (or the CLI) names them.

>>> import numpy as np
>>> from neuralops.solvers import gallery
>>> A = gallery.poisson((16, 16))
>>> solver = make_solver("pcg", preconditioner="ic0", rtol=1e-10)
>>> solver
Preconditioned(solver=CG(rtol=1e-10, atol=0.0, maxiter=None, check_spd=None, replace_every=50), preconditioner='ic0', options={})
>>> sol = solver.solve(A, np.ones(256))
>>> sol.converged, sol.info["preconditioner"]
(True, 'ic0')
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neuralops.solvers.direct import Direct
from neuralops.solvers.krylov import CG, GMRES
from neuralops.solvers.precond import PRECONDITIONERS, make_preconditioner
from neuralops.solvers.solution import Solution

__all__ = ["Preconditioned", "Reused", "make_solver", "register_solver", "SOLVERS"]


def _direct(*, rtol: float = 1e-8, maxiter: int | None = None, **kw: Any) -> Direct:
    return Direct(**kw)  # a direct solve has no tolerance or iteration cap


def _cg(*, rtol: float = 1e-8, maxiter: int | None = None, **kw: Any) -> CG:
    return CG(rtol=rtol, maxiter=maxiter, **kw)


def _gmres(*, rtol: float = 1e-8, maxiter: int | None = None, **kw: Any) -> GMRES:
    return GMRES(rtol=rtol, maxiter=maxiter, **kw)


def _gcrodr(*, rtol: float = 1e-8, maxiter: int | None = None, **kw: Any) -> Any:
    recycling = importlib.import_module("neuralops.solvers.recycling")
    return recycling.GCRODR(rtol=rtol, maxiter=maxiter, **kw)


def _dcdm(*, rtol: float = 1e-8, maxiter: int | None = None, **kw: Any) -> Any:
    dcdm = importlib.import_module("neuralops.solvers.dcdm")
    return dcdm.DCDM(rtol=rtol, maxiter=maxiter, **kw)


#: method name -> builder ``(*, rtol, maxiter, **options) -> solver``; iterate for the names.
#: "pcg" is CG that defaults to a Jacobi preconditioner; "gcrodr" imports the recycling module;
#: "dcdm" needs ``net=`` (a torch module with ``grid_shape=``/``mask=``, or a callable r -> q).
SOLVERS: dict[str, Callable[..., Any]] = {
    "direct": _direct,
    "cg": _cg,
    "pcg": _cg,
    "gmres": _gmres,
    "gcrodr": _gcrodr,
    "dcdm": _dcdm,
}


def register_solver(name: str, builder: Callable[..., Any]) -> None:
    """Make ``make_solver(name, ...)`` (and recipes) use ``builder(*, rtol, maxiter, **kw)``."""
    if not callable(builder):
        raise TypeError(f"builder must be callable, got {type(builder).__name__}")
    SOLVERS[name] = builder


@dataclass(frozen=True)
class Preconditioned:
    """A Krylov solver with a preconditioner built per matrix: ``Preconditioned(CG(), "ic0")``.

    ``preconditioner``: a name from :data:`PRECONDITIONERS` or a factory ``(A) -> M``;
    ``options`` go to the factory. ``solve`` builds M for A (set-up time in
    ``info["setup_seconds"]``), unless an ``M`` is passed explicitly.
    """

    solver: Any
    preconditioner: str | Callable[[Any], Any] = "jacobi"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.preconditioner
        if isinstance(p, str) and p not in PRECONDITIONERS:
            raise ValueError(f"unknown preconditioner {p!r}; choose one of {list(PRECONDITIONERS)}")
        if not (isinstance(p, str) or callable(p)):
            raise TypeError(f"preconditioner must be a name or a factory, got {type(p).__name__}")

    def build(self, A: Any) -> Any:
        """The preconditioner for A (n, n)."""
        p = self.preconditioner
        if isinstance(p, str):
            return make_preconditioner(p, A, **self.options)
        return p(A, **self.options)

    def solve(self, A: Any, b: Any, *, M: Any = None, x0: Any = None) -> Solution:
        """Build M for A (n, n), then solve ``A x = b`` with b (n,) -> ``Solution`` x (n,)."""
        return self.solver.solve(A, b, M=self.build(A) if M is None else M, x0=x0)


class Reused:
    """A Krylov solver whose preconditioner is built on one matrix and reused for the next ones.

    Meant for a sorted sequence of similar systems (SKR chains): building AMG, ILU or a sparse LU
    once for several neighbouring systems instead of once per system. The Krylov method (CG,
    GMRES or GCRO-DR) absorbs the mismatch, at the price of some extra iterations.

    When to build again: ``refresh_every`` rebuilds after that many systems (None: never);
    ``rebuild_growth`` rebuilds before the next system once a solve takes more than
    ``rebuild_growth`` times the iterations of the first solve after the last build (at least
    ``min_iterations``), so a stale preconditioner costs one slow solve, not a chain of them.
    A solve that does not converge also triggers a rebuild. Between builds, a preconditioner with
    an ``update(A)`` method (AMG: same hierarchy, new Galerkin coarse operators) is updated for
    each new matrix unless ``update=False``. Holds state, so give each chain its own instance.
    ``builds``/``updates`` count the preconditioner builds and updates; ``last_info`` says whether
    the last solve used a fresh build.

    >>> from neuralops.solvers import CG, gallery
    >>> import numpy as np
    >>> A = gallery.poisson((16, 16)); b = np.ones(256)
    >>> r = Reused(CG(rtol=1e-10), "ic0", rebuild_growth=1.5)
    >>> [r.solve(A * (1 + 0.01 * i), b).converged for i in range(3)], r.builds
    ([True, True, True], 1)
    """

    def __init__(
        self,
        solver: Any,
        preconditioner: str | Callable[[Any], Any] = "jacobi",
        *,
        refresh_every: int | None = None,
        rebuild_growth: float | None = None,
        min_iterations: int = 4,
        update: bool = True,
        options: Mapping[str, Any] | None = None,
    ):
        if refresh_every is not None and refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1 or None, got {refresh_every}")
        if rebuild_growth is not None and not rebuild_growth >= 1.0:
            raise ValueError(
                f"rebuild_growth must be >= 1 (a factor on the iteration count) or None, "
                f"got {rebuild_growth}"
            )
        self._build = Preconditioned(solver, preconditioner, dict(options or {}))
        self.solver, self.refresh_every = solver, refresh_every
        self.rebuild_growth, self.min_iterations = rebuild_growth, int(min_iterations)
        self._update, self.updates = bool(update), 0
        self.M, self.count, self.builds = None, 0, 0
        self._since_build, self._baseline, self._stale = 0, None, False
        self.last_info: dict[str, Any] = {}

    def _due(self) -> bool:
        if self.M is None or self._stale:
            return True
        return bool(self.refresh_every) and self._since_build >= self.refresh_every

    def solve(self, A: Any, b: Any, *, x0: Any = None) -> Solution:
        """Solve ``A x = b`` (A (n, n), b (n,)) with the chain's preconditioner."""
        fresh = self._due()
        if fresh:
            self.M = self._build.build(A)
            self.builds += 1
            self._since_build, self._baseline, self._stale = 0, None, False
        elif self._update and hasattr(self.M, "update"):
            self.M.update(A)
            self.updates += 1
        self.count += 1
        self._since_build += 1
        sol = self.solver.solve(A, b, M=self.M, x0=x0)
        its = int(sol.iterations)
        if self._baseline is None:
            self._baseline = max(its, self.min_iterations)
        elif self.rebuild_growth is not None and its > self.rebuild_growth * self._baseline:
            self._stale = True
        if not sol.converged:
            self._stale = True
        self.last_info = {"fresh_build": fresh, "builds": self.builds, "updates": self.updates}
        return sol

    def __repr__(self) -> str:
        return (
            f"Reused({self.solver!r}, {self._build.preconditioner!r}, "
            f"refresh_every={self.refresh_every}, rebuild_growth={self.rebuild_growth}, "
            f"systems={self.count}, builds={self.builds})"
        )


def make_solver(
    method: str,
    *,
    preconditioner: str = "none",
    rtol: float = 1e-8,
    maxiter: int | None = None,
    reuse_preconditioner: bool = False,
    rebuild_growth: float | None = None,
    **kw: Any,
) -> Any:
    """Solver object from recipe names.

    ``method``: a key of :data:`SOLVERS` (``direct``, ``cg``, ``pcg``, ``gmres``, ...);
    ``preconditioner``: a key of :data:`PRECONDITIONERS` (``pcg`` with ``none`` uses Jacobi;
    ignored by ``direct``); ``reuse_preconditioner`` builds it once and reuses it (:class:`Reused`,
    for sorted sequences; ``rebuild_growth`` rebuilds it when the iteration count grows by that
    factor); other keywords go to the solver (``m=`` for GMRES, ``atol=``, ...).
    """
    if method not in SOLVERS:
        raise ValueError(f"unknown solver method {method!r}; choose one of {list(SOLVERS)}")
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(
            f"unknown preconditioner {preconditioner!r}; choose one of {list(PRECONDITIONERS)}"
        )
    solver = SOLVERS[method](rtol=rtol, maxiter=maxiter, **kw)
    if method == "direct":
        return solver
    if method == "pcg" and preconditioner == "none":
        preconditioner = "jacobi"
    if preconditioner == "none":
        return solver
    if reuse_preconditioner:
        return Reused(solver, preconditioner, rebuild_growth=rebuild_growth)
    return Preconditioned(solver, preconditioner)
