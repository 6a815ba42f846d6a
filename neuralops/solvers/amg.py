"""Algebraic multigrid (pyamg) as a preconditioner: one V-cycle per application, with hierarchy
updates for sequences of similar matrices.

>>> from neuralops.solvers import gallery
>>> A = gallery.poisson((24, 24)).tocsr()
>>> M = AMG(A)
>>> M.update(2.0 * A)    # same hierarchy, new operator: the cycle halves
>>> M.updates
1
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from neuralops.solvers._pcbase import _BENCH_HINT, AbstractPreconditioner, _csr

__all__ = ["AMG"]


class _LeanVCycle:
    """pyamg's V-cycle with symmetric Gauss-Seidel smoothing, without its per-call overhead.

    The same arithmetic as ``MultilevelSolver.aspreconditioner(cycle="V")`` with the default
    (block, blocksize 1) symmetric Gauss-Seidel pre- and post-smoothers and a dense coarse solve;
    it calls pyamg's compiled sweep directly on CSR arrays. On a 50 x 50 grid a cycle costs about
    half of pyamg's. ``maybe`` returns None for any other cycle or smoother (pyamg is used then).
    """

    _GS = {("gauss_seidel", "symmetric"), ("block_gauss_seidel", "symmetric")}
    _SMOOTHERS = ("presmoother", "postsmoother")

    @classmethod
    def maybe(cls, ml: Any, cycle: str, opts: dict) -> _LeanVCycle | None:
        def plain(sm: Any) -> bool:
            if not isinstance(sm, tuple) or len(sm) != 2 or not isinstance(sm[1], dict):
                return False
            extra = {k: v for k, v in sm[1].items() if k != "sweep"}
            return (sm[0], sm[1].get("sweep")) in cls._GS and extra in ({}, {"iterations": 1})

        levels = ml.levels
        blocks_ok = all(getattr(lv.A, "blocksize", (1, 1)) == (1, 1) for lv in levels)
        if cycle != "V" or not blocks_ok or not all(plain(opts[k]) for k in cls._SMOOTHERS):
            return None
        if opts.get("coarse_solver") not in ("pinv", "pinv2") or len(levels) < 2:
            return None
        return cls(ml)

    def __init__(self, ml: Any) -> None:
        from pyamg import amg_core

        self._gs = amg_core.gauss_seidel
        try:
            from scipy.sparse._sparsetools import csr_matvec

            self._csr_matvec = csr_matvec
        except ImportError:  # pragma: no cover
            self._csr_matvec = None
        self.A = [sp.csr_matrix(lv.A) for lv in ml.levels]
        self.P = [sp.csr_matrix(lv.P) for lv in ml.levels[:-1]]
        self.R = [sp.csr_matrix(lv.R) for lv in ml.levels[:-1]]
        self._coarse = np.linalg.pinv(self.A[-1].toarray())

    def _sgs(self, A: sp.csr_matrix, x: np.ndarray, b: np.ndarray) -> None:
        n = A.shape[0]
        self._gs(A.indptr, A.indices, A.data, x, b, 0, n, 1)
        self._gs(A.indptr, A.indices, A.data, x, b, n - 1, -1, -1)

    def _mv(self, M: sp.csr_matrix, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``y += M @ x`` (the compiled kernel directly: scipy's ``@`` costs more than the
        product itself on coarse levels)."""
        if self._csr_matvec is None:  # pragma: no cover - private scipy API moved
            y += M @ x
        else:
            self._csr_matvec(M.shape[0], M.shape[1], M.indptr, M.indices, M.data, x, y)
        return y

    def __call__(self, b: np.ndarray) -> np.ndarray:
        rhs, xs = [np.ascontiguousarray(b, dtype=np.float64)], []  # the sweeps need contiguity
        for lvl in range(len(self.A) - 1):  # down: pre-smooth, restrict the residual
            A, x = self.A[lvl], np.zeros_like(rhs[lvl])
            self._sgs(A, x, rhs[lvl])
            xs.append(x)
            res = rhs[lvl] - self._mv(A, x, np.zeros_like(x))
            rhs.append(self._mv(self.R[lvl], res, np.zeros(self.R[lvl].shape[0])))
        xc = self._coarse @ rhs[-1]
        for lvl in range(len(self.A) - 2, -1, -1):  # up: correct, post-smooth
            x = self._mv(self.P[lvl], xc, xs[lvl])
            self._sgs(self.A[lvl], x, rhs[lvl])
            xc = x
        return xc


class AMG(AbstractPreconditioner):
    """One algebraic-multigrid cycle (pyamg, optional ``bench`` extra) per application.

    ``kind="sa"`` smoothed aggregation or ``"rs"`` Ruge–Stüben; the default symmetric
    Gauss–Seidel smoothing keeps the V-cycle symmetric, so it is usable in PCG. Extra keywords
    go to the pyamg constructor.
    """

    name = "amg"
    symmetric = True

    def __init__(self, A: Any, *, kind: str = "sa", cycle: str = "V", **pyamg_kw: Any) -> None:
        try:
            import pyamg
        except ImportError as exc:
            raise ImportError(f"preconditioner 'amg' needs pyamg: {_BENCH_HINT}") from exc
        builders = {"sa": pyamg.smoothed_aggregation_solver, "rs": pyamg.ruge_stuben_solver}
        if kind not in builders:
            raise ValueError(f"AMG kind must be one of {sorted(builders)}, got {kind!r}")
        t0 = time.perf_counter()
        defaults = {
            k: v.default
            for k, v in inspect.signature(builders[kind]).parameters.items()
            if k in ("presmoother", "postsmoother", "coarse_solver")
        }
        defaults.setdefault("coarse_solver", "pinv")  # pyamg.MultilevelSolver's default
        self._cycle_opts = {**defaults, **{k: pyamg_kw[k] for k in defaults if k in pyamg_kw}}
        self.ml = builders[kind](_csr(A, "AMG"), **pyamg_kw)
        self._M = self.ml.aspreconditioner(cycle=cycle)
        self.kind, self.cycle = kind, cycle
        self._lean = _LeanVCycle.maybe(self.ml, cycle, self._cycle_opts)
        self.name = f"amg-{kind}"
        self.setup_seconds = time.perf_counter() - t0
        self.updates, self._pyamg_stale = 0, False

    def update(self, A: Any) -> None:
        """Keep the hierarchy (aggregates, interpolation ``P``, restriction ``R``), take a new
        operator: the Galerkin coarse operators ``A_{l+1} = R_l A_l P_l``, the smoothers and the
        coarse solve are recomputed. A fraction of a full set-up; for a matrix close to the one the
        hierarchy was built on (neighbours of a sorted sequence) the V-cycle stays as good as a
        fresh one. ``A``: the new (n, n) matrix, same n."""
        t0 = time.perf_counter()
        Acsr = _csr(A, "AMG.update")
        levels = self.ml.levels
        if Acsr.shape != levels[0].A.shape:
            raise ValueError(
                f"AMG.update: the hierarchy is for n = {levels[0].A.shape[0]}, the new matrix has "
                f"shape {Acsr.shape}; build a new AMG for a different size"
            )
        levels[0].A = Acsr.asformat(levels[0].A.format)
        for fine, coarse in zip(levels[:-1], levels[1:], strict=True):
            coarse.A = (fine.R @ fine.A @ fine.P).asformat(coarse.A.format)
        self._lean = _LeanVCycle.maybe(self.ml, self.cycle, self._cycle_opts)
        self._pyamg_stale = True  # pyamg's own smoothers/coarse solve: refreshed when used
        if self._lean is None:
            self._refresh_pyamg()
        self.updates += 1
        self.setup_seconds = time.perf_counter() - t0

    def _refresh_pyamg(self) -> None:
        """Rebind pyamg's smoothers and coarse solve to the updated level operators."""
        import pyamg

        pyamg.relaxation.smoothing.change_smoothers(
            self.ml, self._cycle_opts["presmoother"], self._cycle_opts["postsmoother"]
        )
        self.ml.coarse_solver = pyamg.multilevel.coarse_grid_solver(
            self._cycle_opts["coarse_solver"]
        )
        self._pyamg_stale = False

    def apply(self, r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, dtype=np.float64)
        if self._lean is not None and r.ndim == 1:
            return self._lean(r)
        if self._pyamg_stale:
            self._refresh_pyamg()
        return self._M.matvec(r)

    def __repr__(self) -> str:
        return (
            f"AMG(kind={self.kind!r}, cycle={self.cycle!r}, levels={len(self.ml.levels)}, "
            f"operator_complexity={self.ml.operator_complexity():.3g}, "
            f"setup_seconds={self.setup_seconds:.3g})"
        )
