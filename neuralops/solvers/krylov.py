"""Conjugate gradients (CG/PCG) and restarted GMRES(m), with functional shortcuts.

Both solvers take anything :func:`~neuralops.solvers.operators.as_operator` accepts (scipy
sparse, dense numpy, torch CSR, a matvec callable) and a right-hand side ``b`` of shape (n,):
numpy in -> float64 numpy out; torch in -> torch out on ``b``'s device and dtype. The loops are
written once against a small vector back end (:mod:`neuralops.solvers._backend`).

Stopping rule: ``||b - A x_k||_2 <= max(rtol ||b||_2, atol)``. The per-step norms in
``Solution.residuals`` are the recurrence norms (``info["norm"] = "recurrence"``); the last
entry and ``Solution.residual`` are re-checked against the true residual ``b - A x``.

>>> from neuralops.solvers import gallery
>>> A = gallery.poisson((32, 32)); b = np.ones(A.shape[0])
>>> sol = cg(A, b, rtol=1e-10)
>>> sol.converged, sol.info["stop_reason"], bool(np.linalg.norm(b - A @ sol.x) <= 1e-10 * 32)
(True, 'rtol', True)
>>> gmres(A, b, m=20, rtol=1e-10).converged
True
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from neuralops.solvers._backend import (
    PreconditionerFn,
    Problem,
    check_tolerances,
    finish,
    prepare,
    trivial_solution,
    verify_spd,
    wrap_preconditioner,
)
from neuralops.solvers.solution import Solution

__all__ = ["CG", "GMRES", "cg", "pcg", "gmres", "SPD_CHECK_MAX_N"]

#: CG checks symmetry and positive definiteness by default up to this size
SPD_CHECK_MAX_N = 20_000


@dataclass(frozen=True)
class CG:
    """(Preconditioned) conjugate gradients for symmetric positive definite ``A``.

    ``maxiter=None`` means ``10 n``. ``check_spd=None`` checks symmetry and a random
    ``x^T A x > 0`` probe when n <= 20 000 (``ValueError`` if A fails); operators tagged not
    symmetric are always refused. ``p^T A p <= 0`` stops with ``stop_reason="breakdown"`` and a
    finite x. The recurrence residual is replaced by ``b - A x`` every ``replace_every`` steps.
    A preconditioner flagged ``symmetric=False`` triggers one warning (use flexible GMRES).

    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> sol = CG(rtol=1e-12).solve(A, np.array([1.0, 2.0]))
    >>> sol.iterations, bool(np.allclose(A @ sol.x, [1.0, 2.0])), len(sol.residuals)
    (2, True, 3)
    """

    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int | None = None
    check_spd: bool | None = None
    replace_every: int = 50

    def __post_init__(self) -> None:
        check_tolerances(self.rtol, self.atol, self.maxiter)
        if not isinstance(self.replace_every, int) or self.replace_every < 1:
            raise ValueError(f"replace_every must be an integer >= 1, got {self.replace_every!r}")

    def solve(self, A: Any, b: Any, *, M: Any = None, x0: Any = None) -> Solution:
        """Solve ``A x = b``: A (n, n) SPD, b (n,), M ``z = M r`` (n,) -> (n,), x0 (n,).

        Returns a :class:`Solution` with x (n,) of b's type; never raises on non-convergence.
        """
        prob = prepare(A, b, x0)
        op, ops = prob.op, prob.ops
        method = "cg" if M is None else "pcg"
        if op.is_symmetric is False or op.is_spd is False:
            raise ValueError(
                "A is not symmetric positive definite: the operator is tagged "
                f"is_symmetric={op.is_symmetric}, is_spd={op.is_spd}; use GMRES"
            )
        t_check = time.perf_counter()
        check = self.check_spd if self.check_spd is not None else prob.n <= SPD_CHECK_MAX_N
        if check and not op.is_spd:
            verify_spd(prob)
        check_seconds = time.perf_counter() - t_check
        pre = wrap_preconditioner(M, ops)
        if pre is not None and pre.symmetric is False:
            warnings.warn(
                f"preconditioner {pre.name!r} is not symmetric, so PCG may stall or diverge; "
                "use GMRES(flexible=True) or the DCDM solver for learned/nonsymmetric M",
                stacklevel=2,
            )
        t0 = time.perf_counter()
        trivial = trivial_solution(prob, self.rtol, self.atol, method, t0)
        if trivial is not None:
            return trivial
        return self._iterate(prob, pre, method, t0, check_seconds)

    def _iterate(
        self, prob: Problem, pre: PreconditionerFn | None, method: str, t0: float, check_s: float
    ) -> Solution:
        ops, matvec, b, x = prob.ops, prob.matvec, prob.b, prob.x
        dot, norm, axpy, scal = ops.dot, ops.norm, ops.axpy, ops.scal
        apply = pre.apply if pre is not None else None
        n = prob.n
        maxiter = self.maxiter if self.maxiter is not None else 10 * n
        tol = max(self.rtol * prob.bnorm, self.atol)
        nmv, nprec, replacements, k = 0, 0, 0, 0
        if prob.x0_given:
            r = ops.copy(b)
            axpy(-1.0, matvec(x), r)
            nmv += 1
        else:
            r = ops.copy(b)
        rnorm = norm(r)
        hist = [rnorm]
        stop, message, last_failed = "", "", math.inf
        if rnorm <= tol:
            stop = "rtol"
        if apply is None:
            rz = rnorm * rnorm
            p = ops.copy(r)
        elif not stop:
            z = apply(r)
            nprec += 1
            rz = dot(r, z)
            p = ops.copy(z)
        replace_every = self.replace_every
        while not stop:
            if k >= maxiter:
                stop = "maxiter"
                break
            if not (math.isfinite(rz) and rz > 0.0):
                stop = "nonfinite" if not math.isfinite(rz) else "breakdown"
                message = (
                    f"r^T M r = {rz:.3e} at iteration {k}: M is not symmetric positive definite "
                    "(or holds NaN/Inf); check the preconditioner"
                )
                break
            Ap = matvec(p)
            nmv += 1
            pAp = dot(p, Ap)
            if not pAp > 0.0:
                stop = "breakdown" if math.isfinite(pAp) else "nonfinite"
                message = (
                    f"breakdown at iteration {k}: p^T A p = {pAp:.3e} <= 0, so A (or M) is not "
                    "symmetric positive definite; use GMRES (flexible for a learned M)"
                )
                break
            alpha = rz / pAp
            axpy(alpha, p, x)
            k += 1
            if k % replace_every == 0:
                r = ops.copy(b)
                axpy(-1.0, matvec(x), r)
                nmv += 1
                replacements += 1
            else:
                axpy(-alpha, Ap, r)
            if apply is None:
                rr = dot(r, r)
                rnorm = math.sqrt(rr) if rr >= 0 else math.nan
                rz_new = rr
            else:
                rnorm = norm(r)
            hist.append(rnorm)
            if rnorm <= tol:  # confirm with the true residual
                rt = ops.copy(b)
                axpy(-1.0, matvec(x), rt)
                nmv += 1
                true_norm = norm(rt)
                hist[-1] = true_norm
                if true_norm <= tol:
                    stop = "rtol"
                    break
                if not true_norm < 0.9 * last_failed:
                    stop = "breakdown"
                    message = (
                        f"stagnated at iteration {k}: true residual {true_norm:.2e} stays above the "
                        f"tolerance {tol:.2e} (limit of the arithmetic); loosen rtol or precondition"
                    )
                    break
                last_failed, r = true_norm, rt
                replacements += 1
                if apply is None:
                    rz_new = true_norm * true_norm
            elif not math.isfinite(rnorm):
                stop, message = "nonfinite", f"non-finite residual at iteration {k}; check A and M"
                break
            if apply is not None:
                z = apply(r)
                nprec += 1
                rz_new = dot(r, z)
                scal(rz_new / rz, p)
                axpy(1.0, z, p)
            else:
                scal(rz_new / rz, p)
                axpy(1.0, r, p)
            rz = rz_new
        if stop == "maxiter" or stop == "breakdown" or stop == "nonfinite":
            if not ops.all_finite(x):  # pragma: no cover - overflow only
                x = ops.zeros()
            rt = ops.copy(b)
            axpy(-1.0, matvec(x), rt)
            nmv += 1
            hist[-1] = norm(rt)
        info = {
            "method": method,
            "matvecs": nmv,
            "precond_applies": nprec,
            "replacements": replacements,
            "check_seconds": check_s,
        }
        return finish(prob, x, hist, k, stop, message, t0, info, tol, self.rtol, self.atol, pre)


@dataclass(frozen=True)
class GMRES:
    """Restarted GMRES(m) with right preconditioning: ``A M u = b``, ``x = M u``.

    Arnoldi with modified Gram–Schmidt (one re-orthogonalisation pass when the norm drops by
    more than 10x), Givens rotations for the small least-squares problem, restart after ``m``
    steps. Right preconditioning keeps the monitored residual the true (unpreconditioned) one.
    ``flexible=True`` stores ``Z = M V`` (FGMRES), required when M changes between applications
    (networks). ``maxiter`` counts Krylov steps in total (default ``10 n``). A restart cycle
    without any decrease of the true residual stops with ``stop_reason="breakdown"``.

    >>> A = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> sol = GMRES(m=2, rtol=1e-12).solve(A, np.array([4.0, 6.0]))
    >>> sol.iterations, bool(np.allclose(sol.x, [1.0, 2.0]))
    (2, True)
    """

    m: int = 40
    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int | None = None
    flexible: bool = False

    def __post_init__(self) -> None:
        check_tolerances(self.rtol, self.atol, self.maxiter)
        if not isinstance(self.m, int | np.integer) or self.m < 1:
            raise ValueError(f"restart length m must be an integer >= 1, got {self.m!r}")

    def solve(self, A: Any, b: Any, *, M: Any = None, x0: Any = None) -> Solution:
        """Solve ``A x = b``: A (n, n), b (n,), M ``z = M r`` (n,) -> (n,), x0 (n,).

        Returns a :class:`Solution` with x (n,) of b's type; never raises on non-convergence.
        """
        prob = prepare(A, b, x0)
        pre = wrap_preconditioner(M, prob.ops)
        method = "fgmres" if self.flexible else "gmres"
        t0 = time.perf_counter()
        trivial = trivial_solution(prob, self.rtol, self.atol, method, t0)
        if trivial is not None:
            return trivial
        return self._iterate(prob, pre, method, t0)

    def _iterate(
        self, prob: Problem, pre: PreconditionerFn | None, method: str, t0: float
    ) -> Solution:
        ops, matvec, b, x = prob.ops, prob.matvec, prob.b, prob.x
        dot, norm, axpy = ops.dot, ops.norm, ops.axpy
        apply = pre.apply if pre is not None else None
        n = prob.n
        m = min(int(self.m), n)
        maxiter = self.maxiter if self.maxiter is not None else 10 * n
        tol = max(self.rtol * prob.bnorm, self.atol)
        eps = ops.eps
        V = ops.empty(m + 1, n)
        Z = ops.empty(m, n) if (self.flexible and apply is not None) else None
        H = np.zeros((m + 1, m))
        cs, sn, g = np.zeros(m), np.zeros(m), np.zeros(m + 1)
        nmv, nprec, total, cycles, reorths = 0, 0, 0, 0, 0
        r = ops.copy(b)
        if prob.x0_given:
            axpy(-1.0, matvec(x), r)
            nmv += 1
        beta = norm(r)
        hist = [beta]
        stop, message = "", ""
        while True:
            if beta <= tol:
                stop = "rtol"
                break
            if not math.isfinite(beta):
                stop, message = "nonfinite", "non-finite residual; check A and M for NaN/Inf"
                break
            if total >= maxiter:
                stop = "maxiter"
                break
            cycles += 1
            V[0] = r
            ops.scal(1.0 / beta, V[0])
            g[:] = 0.0
            g[0] = beta
            j_done, lucky, bad = 0, False, False
            for j in range(min(m, maxiter - total)):
                vj = V[j]
                if apply is None:
                    w = matvec(vj)
                else:
                    zj = apply(vj)
                    nprec += 1
                    if Z is not None:
                        Z[j] = zj
                    w = matvec(zj)
                nmv += 1
                if ops.aliases(w, V) or (Z is not None and ops.aliases(w, Z)):
                    w = ops.copy(w)  # a matvec that returned (a view of) its input
                h0 = norm(w)
                for i in range(j + 1):
                    hij = dot(V[i], w)
                    H[i, j] = hij
                    axpy(-hij, V[i], w)
                hn = norm(w)
                if hn < 0.1 * h0:
                    reorths += 1
                    for i in range(j + 1):
                        c = dot(V[i], w)
                        H[i, j] += c
                        axpy(-c, V[i], w)
                    hn = norm(w)
                H[j + 1, j] = hn
                for i in range(j):  # previous rotations
                    hi, hi1 = H[i, j], H[i + 1, j]
                    H[i, j] = cs[i] * hi + sn[i] * hi1
                    H[i + 1, j] = -sn[i] * hi + cs[i] * hi1
                hjj = H[j, j]
                rho = math.hypot(hjj, hn)
                c, s = (1.0, 0.0) if rho == 0.0 else (hjj / rho, hn / rho)
                cs[j], sn[j] = c, s
                H[j, j], H[j + 1, j] = rho, 0.0
                g[j + 1] = -s * g[j]
                g[j] = c * g[j]
                total += 1
                j_done = j + 1
                est = abs(g[j + 1])
                hist.append(est)
                if hn <= eps * h0 or not math.isfinite(hn):
                    lucky, bad = hn <= eps * h0, not math.isfinite(hn)
                    break
                V[j + 1] = w
                ops.scal(1.0 / hn, V[j + 1])
                if est <= tol:
                    break
            k = j_done
            Hk = H[:k, :k]
            if np.all(np.isfinite(Hk)) and np.all(np.diag(Hk) != 0.0):
                y = sla.solve_triangular(Hk, g[:k], lower=False, check_finite=False)
            else:
                y = np.linalg.lstsq(np.nan_to_num(Hk), g[:k], rcond=None)[0]
            if Z is not None:
                dx = ops.combine(Z[:k], y)
            elif apply is not None:
                dx = apply(ops.combine(V[:k], y))
                nprec += 1
            else:
                dx = ops.combine(V[:k], y)
            if ops.all_finite(dx):
                axpy(1.0, dx, x)
            r = ops.copy(b)
            axpy(-1.0, matvec(x), r)
            nmv += 1
            beta_old, beta = beta, norm(r)
            hist[-1] = beta
            if bad or not math.isfinite(beta):
                stop = "nonfinite"
                message = f"non-finite Arnoldi vector in cycle {cycles}; check A and M for NaN/Inf"
                break
            if beta > tol and math.isfinite(beta) and beta >= beta_old * (1.0 - 4.0 * eps):
                stop = "breakdown"
                message = (
                    f"stagnated after {total} iterations ({'lucky breakdown, ' if lucky else ''}"
                    f"restart cycle {cycles} did not reduce the residual {beta / prob.bnorm:.2e}); "
                    "increase m, use a preconditioner, or loosen rtol"
                )
                break
        info = {
            "method": method,
            "matvecs": nmv,
            "precond_applies": nprec,
            "cycles": cycles,
            "m": m,
            "flexible": self.flexible,
            "reorthogonalizations": reorths,
        }
        return finish(prob, x, hist, total, stop, message, t0, info, tol, self.rtol, self.atol, pre)


def _resolve_M(M: Any, A: Any) -> Any:
    if isinstance(M, str):
        from neuralops.solvers.precond import make_preconditioner

        return make_preconditioner(M, A)
    return M


def cg(
    A: Any,
    b: Any,
    *,
    x0: Any = None,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
    check_spd: bool | None = None,
) -> Solution:
    """Unpreconditioned CG: ``CG(rtol, atol, maxiter, check_spd).solve(A, b, x0=x0)``.
    A (n, n) SPD, b (n,) -> ``Solution`` with x (n,)."""
    return CG(rtol=rtol, atol=atol, maxiter=maxiter, check_spd=check_spd).solve(A, b, x0=x0)


def pcg(
    A: Any,
    b: Any,
    M: Any,
    *,
    x0: Any = None,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
    check_spd: bool | None = None,
) -> Solution:
    """Preconditioned CG. ``M``: a preconditioner object, matrix, callable, or a name from
    :data:`~neuralops.solvers.precond.PRECONDITIONERS` (built for ``A``; its set-up time is in
    ``info["setup_seconds"]``). A (n, n) SPD, b (n,) -> ``Solution`` with x (n,)."""
    solver = CG(rtol=rtol, atol=atol, maxiter=maxiter, check_spd=check_spd)
    return solver.solve(A, b, M=_resolve_M(M, A), x0=x0)


def gmres(
    A: Any,
    b: Any,
    *,
    M: Any = None,
    x0: Any = None,
    m: int = 40,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
    flexible: bool = False,
) -> Solution:
    """Restarted (F)GMRES(m), right-preconditioned; ``M`` may be a name as in :func:`pcg`.
    A (n, n), b (n,) -> ``Solution`` with x (n,)."""
    solver = GMRES(m=m, rtol=rtol, atol=atol, maxiter=maxiter, flexible=flexible)
    return solver.solve(A, b, M=_resolve_M(M, A), x0=x0)
