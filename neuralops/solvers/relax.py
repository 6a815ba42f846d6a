"""SOR, SSOR-preconditioned CG, and a bandit that learns the relaxation parameter ω.

Split ``A = D + L + U`` (diagonal, strictly lower, strictly upper; ``U = Lᵀ`` for symmetric A).

- **SOR** iterates ``x_{k+1} = x_k + M_ω⁻¹ (b − A x_k)`` with ``M_ω = D/ω + L``; for SPD A it
  converges iff ``0 < ω < 2`` (Ostrowski–Reich); ``ω = 1`` is Gauss–Seidel. Cost = iterations.
- **SSOR** preconditioner ``M = ω/(2−ω) · (D/ω + L) (D/ω)⁻¹ (D/ω + L)ᵀ``: symmetric, SPD when
  ``D > 0``; usable in PCG.
- **Young's ω\\*** for consistently ordered matrices: ``ω* = 1 + (β / (1 + √(1 − β²)))²``,
  ``β = ρ(I − D⁻¹A)`` (the Jacobi spectral radius).
- **Learning ω** over a sequence of systems ("Learning to Relax", Khodak et al., ICLR 2024):
  :class:`TsallisINF` plays arms on an ω grid and feeds back iteration counts;
  :class:`BinnedTsallisINF` runs one per bin of a scalar context (both in
  :mod:`neuralops.solvers.bandit`, re-exported here); :func:`tune_sequence` drives them.

Triangular solves are exact: LAPACK ``trtrs`` on a dense copy for n ≤ 200, otherwise SuperLU on
``D/ω + L`` with natural ordering and no pivoting (a triangular matrix has no fill).
Vectors are numpy float64 of shape (n,).

>>> from neuralops.solvers import gallery
>>> A = gallery.poisson((16, 16)); b = np.ones(A.shape[0])
>>> w = optimal_omega(A); round(w, 4)  # = 2 / (1 + sin(pi / 17))
1.6895
>>> sor(A, b, 1.0).iterations > 5 * sor(A, b, w).iterations
True
>>> tuner = TsallisINF(rng=0)
>>> tuner.update(sor(A, b, tuner.suggest()).iterations)
>>> bool(np.isclose(tuner.probabilities.sum(), 1.0)), tuner.t
(True, 1)
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg.blas import dnrm2
from scipy.linalg.lapack import dtrtrs

from neuralops.solvers._backend import NumpyOps, check_tolerances, prepare
from neuralops.solvers.bandit import BinnedTsallisINF, OmegaTuner, TsallisINF, default_arms
from neuralops.solvers.precond import AbstractPreconditioner, _csr
from neuralops.solvers.solution import Solution

__all__ = [
    "SOR",
    "sor",
    "SORPreconditioner",
    "SSORPreconditioner",
    "ssor_pcg",
    "optimal_omega",
    "default_arms",
    "OmegaTuner",
    "TsallisINF",
    "BinnedTsallisINF",
    "SequenceResult",
    "tune_sequence",
]

log = logging.getLogger(__name__)

#: up to this size the triangular factor is kept dense (LAPACK beats SuperLU's call overhead)
_DENSE_MAX_N = 200


def _check_omega(omega: Any) -> float:
    if not (isinstance(omega, int | float | np.integer | np.floating) and 0.0 < omega < 2.0):
        raise ValueError(
            f"omega must lie in the open interval (0, 2) (SOR/SSOR converge for SPD A iff "
            f"0 < omega < 2), got {omega!r}"
        )
    return float(omega)


def _diagonal(A: sp.csr_matrix, who: str) -> np.ndarray:
    d = np.asarray(A.diagonal(), dtype=np.float64)
    bad = ~np.isfinite(d) | (d == 0.0)
    if bad.any():
        raise ValueError(
            f"{who} needs a finite nonzero diagonal; A has {int(bad.sum())} zero/non-finite "
            f"diagonal entries (first at row {int(np.argmax(bad))})"
        )
    return d


class _LowerSolve:
    """Exact solves with ``K = D/ω + L`` (n, n) and its transpose."""

    def __init__(self, A: sp.csr_matrix, d: np.ndarray, omega: float) -> None:
        n = A.shape[0]
        self.dense = n <= _DENSE_MAX_N
        if self.dense:
            K = np.tril(A.toarray(), -1)
            K[np.diag_indices(n)] = d / omega
            self.K = np.asfortranarray(K)
        else:
            K = sp.csc_matrix(sp.tril(A, -1, format="csc") + sp.diags(d / omega, format="csc"))
            self.lu = spla.splu(K, permc_spec="NATURAL", diag_pivot_thresh=0.0)

    def __call__(self, r: np.ndarray, trans: bool = False) -> np.ndarray:
        if self.dense:
            return dtrtrs(self.K, r, lower=1, trans=int(trans))[0]
        return self.lu.solve(r, trans="T" if trans else "N")

    @property
    def kernel(self) -> str:
        return "dense-lapack" if self.dense else "superlu"


@dataclass(frozen=True)
class SOR:
    """Stationary SOR iteration ``x ← x + (D/ω + L)⁻¹ (b − A x)``.

    Stops when ``||b − A x_k||₂ <= max(rtol ||b||₂, atol)`` (true residuals; one matvec and one
    triangular solve per iteration). ``maxiter=None`` means ``max(10 n, 10 000)``. Returns the
    last iterate, or the best one if the iteration diverged (``stop_reason="breakdown"``).

    >>> A = np.array([[4.0, -1.0], [-1.0, 4.0]])
    >>> sol = SOR(omega=1.0, rtol=1e-12).solve(A, np.array([3.0, 3.0]))
    >>> sol.converged, bool(np.allclose(sol.x, [1.0, 1.0]))
    (True, True)
    """

    omega: float = 1.0
    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int | None = None

    def __post_init__(self) -> None:
        _check_omega(self.omega)
        check_tolerances(self.rtol, self.atol, self.maxiter)

    def solve(self, A: Any, b: Any, *, x0: Any = None) -> Solution:
        """Solve ``A x = b``: A (n, n) with nonzero diagonal, b (n,), x0 (n,) -> x (n,)."""
        t_setup = time.perf_counter()
        Acsr = _csr(A, "SOR")
        prob = prepare(Acsr, b, x0)
        if not isinstance(prob.ops, NumpyOps):
            raise TypeError("SOR runs on numpy vectors; pass b (and x0) as numpy arrays")
        n, omega = prob.n, float(self.omega)
        solve = _LowerSolve(Acsr, _diagonal(Acsr, "SOR"), omega)
        Am = Acsr.toarray() if solve.dense else Acsr
        setup = time.perf_counter() - t_setup
        t0 = time.perf_counter()
        maxiter = self.maxiter if self.maxiter is not None else max(10 * n, 10_000)
        b_, x = prob.b, prob.x
        tol = max(self.rtol * prob.bnorm, self.atol)
        r = b_ - Am @ x if prob.x0_given else b_.copy()
        rnorm = dnrm2(r)
        hist, best, best_x = [rnorm], rnorm, x
        k, stop, message = 0, "", ""
        while True:
            if rnorm <= tol:
                stop = "rtol" if self.rtol * prob.bnorm >= self.atol else "atol"
                break
            if k >= maxiter:
                stop = "maxiter"
                rel = rnorm / prob.bnorm
                message = (
                    f"no convergence in {k} SOR iterations (omega={omega:g}): relative residual "
                    f"{rel:.2e} > rtol {self.rtol:.1e}; try omega = optimal_omega(A), raise "
                    "maxiter, or use ssor_pcg / CG for SPD A"
                )
                break
            x = x + solve(r)
            k += 1
            r = b_ - Am @ x
            rnorm = dnrm2(r)
            hist.append(rnorm)
            if rnorm < best:
                best, best_x = rnorm, x
            elif not (rnorm <= 1e10 * hist[0]):
                stop = "nonfinite" if not math.isfinite(rnorm) else "breakdown"
                message = (
                    f"SOR diverged at iteration {k} (residual {rnorm:.2e}): A is not SPD or "
                    "omega is unsuitable; returning the best iterate"
                )
                x, rnorm = best_x, best
                break
        info = {
            "method": "sor",
            "omega": omega,
            "stop_reason": stop,
            "matvecs": k + int(prob.x0_given),
            "precond_applies": k,
            "setup_seconds": setup,
            "rtol": self.rtol,
            "atol": self.atol,
            "tol": tol,
            "norm": "true",
            "kernel": solve.kernel,
        }
        return Solution(
            x=x,
            converged=stop in ("rtol", "atol"),
            iterations=k,
            residual=float(rnorm / prob.bnorm if prob.bnorm > 0 else rnorm),
            residuals=np.asarray(hist),
            seconds=max(time.perf_counter() - t0, 1e-9),
            message=message,
            info=info,
        )


def sor(
    A: Any,
    b: Any,
    omega: float = 1.0,
    *,
    x0: Any = None,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
) -> Solution:
    """``SOR(omega, rtol, atol, maxiter).solve(A, b, x0=x0)``: A (n, n), b (n,) -> x (n,)."""
    return SOR(omega=omega, rtol=rtol, atol=atol, maxiter=maxiter).solve(A, b, x0=x0)


class SORPreconditioner(AbstractPreconditioner):
    """One forward SOR sweep from zero, ``z = (D/ω + L)⁻¹ r`` (not symmetric: use GMRES)."""

    name = "sor"
    symmetric = False

    def __init__(self, A: Any, omega: float = 1.0) -> None:
        t0 = time.perf_counter()
        self.omega = _check_omega(omega)
        Acsr = _csr(A, "SORPreconditioner")
        self.n = Acsr.shape[0]
        self._solve = _LowerSolve(Acsr, _diagonal(Acsr, "SORPreconditioner"), self.omega)
        self.setup_seconds = time.perf_counter() - t0

    def apply(self, r: np.ndarray) -> np.ndarray:
        return self._solve(np.asarray(r, dtype=np.float64))

    def __repr__(self) -> str:
        return f"SORPreconditioner(n={self.n}, omega={self.omega:g}, kernel={self._solve.kernel})"


class SSORPreconditioner(AbstractPreconditioner):
    """Symmetric SOR: ``M = ω/(2−ω) · K (D/ω)⁻¹ Kᵀ`` with ``K = D/ω + L`` (lower triangle of A).

    ``apply(r) = (2−ω)/ω · K⁻ᵀ (D/ω) K⁻¹ r`` (two exact triangular solves), r of shape (n,) or
    (n, k). Needs a positive diagonal (true for SPD A), so that M is SPD.

    >>> A = np.array([[2.0, -1.0], [-1.0, 2.0]])
    >>> M = SSORPreconditioner(A, omega=1.0)
    >>> bool(np.allclose(M.apply(np.array([1.0, 0.0])), [0.625, 0.25]))
    True
    """

    name = "ssor"
    symmetric = True

    def __init__(self, A: Any, omega: float = 1.0) -> None:
        t0 = time.perf_counter()
        self.omega = _check_omega(omega)
        Acsr = _csr(A, "SSORPreconditioner")
        d = _diagonal(Acsr, "SSORPreconditioner")
        if (d < 0).any():
            raise ValueError(
                f"SSORPreconditioner needs a positive diagonal (A SPD); diagonal entry "
                f"{int(np.argmax(d < 0))} is {d[d < 0][0]:.3e}"
            )
        self.n = Acsr.shape[0]
        self._scale = d / self.omega
        self._factor = (2.0 - self.omega) / self.omega
        self._solve = _LowerSolve(Acsr, d, self.omega)
        self.setup_seconds = time.perf_counter() - t0

    def apply(self, r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, dtype=np.float64)
        y = self._solve(r)
        y *= self._scale if y.ndim == 1 else self._scale[:, None]
        z = self._solve(y, trans=True)
        z *= self._factor
        return z

    def __repr__(self) -> str:
        return (
            f"SSORPreconditioner(n={self.n}, omega={self.omega:g}, kernel={self._solve.kernel}, "
            f"setup_seconds={self.setup_seconds:.3g})"
        )


def ssor_pcg(
    A: Any,
    b: Any,
    omega: float = 1.0,
    *,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
    x0: Any = None,
    check_spd: bool | None = None,
) -> Solution:
    """CG preconditioned with :class:`SSORPreconditioner` (``A`` SPD (n, n), b (n,) -> x (n,)).

    Uses :class:`neuralops.solvers.krylov.CG` when importable, else a built-in PCG loop.
    ``info`` adds ``omega``; ``info["setup_seconds"]`` holds the SSOR set-up time.
    """
    Acsr = _csr(A, "ssor_pcg")
    M = SSORPreconditioner(Acsr, omega)
    try:
        from neuralops.solvers.krylov import CG
    except ImportError:  # pragma: no cover - krylov is part of the package
        sol = _pcg(Acsr, b, M, rtol=rtol, atol=atol, maxiter=maxiter, x0=x0)
    else:
        solver = CG(rtol=rtol, atol=atol, maxiter=maxiter, check_spd=check_spd)
        sol = solver.solve(Acsr, b, M=M, x0=x0)
    sol.info.update(method="ssor_pcg", omega=M.omega, setup_seconds=M.setup_seconds)
    return sol


def _pcg(
    A: sp.csr_matrix,
    b: Any,
    M: AbstractPreconditioner,
    *,
    rtol: float,
    atol: float,
    maxiter: int | None,
    x0: Any,
) -> Solution:
    """Textbook PCG (Hestenes–Stiefel, ``z = M r``) with the true residual re-checked at the end."""
    check_tolerances(rtol, atol, maxiter)
    prob = prepare(A, b, x0)
    t0 = time.perf_counter()
    b_, x = prob.b, prob.x
    tol, maxiter = max(rtol * prob.bnorm, atol), maxiter or 10 * prob.n
    r = b_ - A @ x
    hist, k, stop = [dnrm2(r)], 0, "maxiter"
    z = M.apply(r)
    p, rz = z.copy(), float(r @ z)
    while hist[-1] > tol and k < maxiter:
        Ap = A @ p
        pAp = float(p @ Ap)
        if not pAp > 0.0:
            stop = "breakdown"
            break
        alpha = rz / pAp
        x, r, k = x + alpha * p, r - alpha * Ap, k + 1
        hist.append(dnrm2(r))
        z = M.apply(r)
        rz, rz_old = float(r @ z), rz
        p = z + (rz / rz_old) * p
    hist[-1] = dnrm2(b_ - A @ x)
    converged = hist[-1] <= tol
    return Solution(
        x=x,
        converged=converged,
        iterations=k,
        residual=float(hist[-1] / prob.bnorm if prob.bnorm > 0 else hist[-1]),
        residuals=np.asarray(hist),
        seconds=max(time.perf_counter() - t0, 1e-9),
        message="" if converged else f"PCG stopped ({stop}) after {k} iterations",
        info={"method": "pcg", "stop_reason": "rtol" if converged else stop, "norm": "recurrence"},
    )


def _eig_near(S: sp.csr_matrix, sigma: float) -> float:
    """The eigenvalue of symmetric S nearest sigma (shift-invert Lanczos)."""
    return float(
        spla.eigsh(S, k=1, sigma=sigma, which="LM", tol=1e-12, return_eigenvectors=False)[0]
    )


def optimal_omega(A: Any) -> float:
    """Young's optimal SOR parameter ``ω* = 1 + (β / (1 + √(1 − β²)))²``, ``β = ρ(I − D⁻¹A)``.

    Exact for consistently ordered matrices (e.g. 5-point stencils in natural order) whose
    Jacobi matrix has real eigenvalues; a heuristic otherwise. β is computed from the extreme
    eigenvalues of the symmetric ``D^{-1/2} A D^{-1/2}`` when A is symmetric with a positive
    diagonal (dense ``eigvalsh`` for n ≤ 600, else shift-invert Lanczos with ARPACK, one sparse
    LU per end: about 1 s for a 256² Poisson matrix), else from ``eigs`` (largest modulus).
    Raises ``ValueError`` when β ≥ 1 (the Jacobi iteration does not converge).
    """
    Acsr = _csr(A, "optimal_omega")
    n = Acsr.shape[0]
    d = _diagonal(Acsr, "optimal_omega")
    defect = spla.norm(Acsr - Acsr.T) / max(spla.norm(Acsr), 1e-300)
    if defect <= 1e-12 and (d > 0).all():
        s = sp.diags(1.0 / np.sqrt(d))
        S = sp.csr_matrix(s @ Acsr @ s)
        if n <= 600:
            mu = np.linalg.eigvalsh(S.toarray())[[0, -1]]
        else:  # shift-invert Lanczos at 0 and at a Gershgorin bound: both ends in a few steps
            top = float(abs(S).sum(axis=1).max()) * (1.0 + 1e-6)
            try:
                mu = np.array([_eig_near(S, sigma) for sigma in (0.0, top)])
            except RuntimeError as exc:  # exactly singular S - sigma I
                raise ValueError(f"optimal_omega: A looks singular ({exc})") from exc
        beta = float(np.max(np.abs(1.0 - mu)))
    else:
        J = sp.eye(n, format="csr") - sp.diags(1.0 / d) @ Acsr
        if n <= 600:
            lam = np.linalg.eigvals(J.toarray())
        else:
            lam = spla.eigs(J, k=1, which="LM", tol=1e-12, return_eigenvectors=False)
        beta = float(np.max(np.abs(lam)))
    if not beta < 1.0:
        raise ValueError(
            f"optimal_omega needs a convergent Jacobi iteration, but rho(I - D^-1 A) = {beta:.6g} "
            ">= 1; pick omega by search (e.g. TsallisINF) instead"
        )
    return 1.0 + (beta / (1.0 + math.sqrt(1.0 - beta * beta))) ** 2


@dataclass(frozen=True)
class SequenceResult:
    """Per-system record of :func:`tune_sequence` (arrays of length N = number of systems)."""

    omegas: np.ndarray
    iterations: np.ndarray
    seconds: np.ndarray
    converged: np.ndarray
    contexts: np.ndarray | None = None
    method: str = "sor"

    @property
    def total_iterations(self) -> int:
        return int(self.iterations.sum())

    @property
    def total_seconds(self) -> float:
        return float(self.seconds.sum())

    def __repr__(self) -> str:
        return (
            f"SequenceResult(method={self.method!r}, systems={self.iterations.size}, "
            f"total_iterations={self.total_iterations}, total_seconds={self.total_seconds:.3g}, "
            f"converged={int(self.converged.sum())}/{self.converged.size})"
        )


_METHODS: dict[str, Callable[..., Solution]] = {"sor": sor, "ssor_pcg": ssor_pcg}


def tune_sequence(
    systems: Iterable[tuple[Any, ...]],
    tuner: OmegaTuner | float,
    *,
    method: str | Callable[..., Solution] = "sor",
    rtol: float = 1e-8,
    maxiter: int | None = None,
    contexts: Iterable[float] | None = None,
    warm_start: bool = False,
) -> SequenceResult:
    """Solve a sequence of systems, asking ``tuner`` for ω before each and feeding back iterations.

    ``systems`` yields ``(A, b)`` or ``(A, b, x0)``; a generator also receives each solution x
    through ``send`` (``x = yield A, b``), which is how a time-stepping simulation feeds its new
    state into the next right-hand side. ``tuner``: an :class:`OmegaTuner` or a fixed ω.
    ``method``: ``"sor"``, ``"ssor_pcg"`` or a callable ``(A, b, omega, *, rtol, maxiter, x0)``.
    ``contexts`` (one per system) go to ``tuner.suggest``; ``warm_start`` uses the previous x
    as x0. ``seconds`` include per-system set-up (triangular factors).
    """
    solve = _METHODS.get(method) if isinstance(method, str) else method
    if solve is None:
        raise ValueError(f"unknown method {method!r}; choose one of {list(_METHODS)} or a callable")
    name = method if isinstance(method, str) else getattr(method, "__name__", "callable")
    fixed = None if hasattr(tuner, "suggest") else _check_omega(tuner)
    gen = systems if inspect.isgenerator(systems) else None
    items = iter(systems)
    ctx_iter = iter(contexts) if contexts is not None else None
    omegas: list[float] = []
    its: list[int] = []
    secs: list[float] = []
    conv: list[bool] = []
    ctxs: list[float] = []
    item = next(items, None)
    x_prev = None
    while item is not None:
        A, b = item[0], item[1]
        x0 = item[2] if len(item) > 2 else (x_prev if warm_start else None)
        ctx = None
        if ctx_iter is not None:
            ctx = next(ctx_iter, None)
            if ctx is None:
                raise ValueError(f"contexts ran out at system {len(its)}; give one per system")
            ctxs.append(float(ctx))
        omega = fixed if fixed is not None else float(tuner.suggest(ctx))
        t0 = time.perf_counter()
        sol = solve(A, b, omega, rtol=rtol, maxiter=maxiter, x0=x0)
        secs.append(time.perf_counter() - t0)
        if fixed is None:
            tuner.update(sol.iterations)
        omegas.append(omega)
        its.append(sol.iterations)
        conv.append(sol.converged)
        log.debug("system %d: omega=%.4g iterations=%d", len(its) - 1, omega, sol.iterations)
        x_prev = sol.x
        try:
            item = gen.send(sol.x) if gen is not None else next(items, None)
        except StopIteration:
            item = None
    return SequenceResult(
        omegas=np.asarray(omegas),
        iterations=np.asarray(its, dtype=np.int64),
        seconds=np.asarray(secs),
        converged=np.asarray(conv, dtype=bool),
        contexts=np.asarray(ctxs) if ctx_iter is not None else None,
        method=str(name),
    )
