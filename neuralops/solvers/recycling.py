"""GCRO-DR: restarted GMRES that recycles a k-dimensional subspace across a sequence of systems.

After Parks, de Sturler, Mackey, Johnson and Maiti (SISC 2006). A recycle pair (U, C), both of
shape (n, k), satisfies ``A U = C`` and ``C^T C = I``. Each solve

1. refreshes the pair for the new operator by a thin QR ``A U_old = Q R`` (``C = Q``,
   ``U = U_old R^{-1}``, k matvecs) and projects the start: ``x += U C^T r``, ``r -= C C^T r``;
2. without a recycle space runs one GMRES(m) cycle and keeps the k harmonic Ritz vectors of
   ``H_m + h_{m+1,m}^2 H_m^{-T} e_m e_m^T`` with the smallest ``|θ|``;
3. then runs cycles of ``m - k`` Arnoldi steps with ``(I - C C^T) A`` (``B = C^T A V``); with
   ``V̂ = [Ũ V]``, ``Ŵ = [C V_{m-k+1}]`` (``Ũ`` = U with unit columns, ``A Ũ = C D``) and
   ``G = [[D, B], [0, H̄]]``, ``A V̂ = Ŵ G``; the least-squares problem
   ``min ||Ŵ^T r - G y||`` decouples into GMRES on the projected operator plus ``-U B y``;
4. after every cycle takes the k eigenvectors of ``G^T G z = θ G^T Ŵ^T V̂ z`` with the smallest
   ``|θ|`` (``P_k``), ``Y = V̂ P_k``, ``G P_k = Q R``, ``C = Ŵ Q``, ``U = Y R^{-1}``.

Right preconditioning: everything above runs on ``A M`` (U lives in the preconditioned space),
``x`` is updated by ``M (V̂ y)`` once per cycle, so the monitored residual is the true one.
``k = 0`` is restarted GMRES(m). Orthogonalisation is classical Gram–Schmidt against the
stacked basis ``[C; V]`` with one conditional (DGKS) re-orthogonalisation pass, two BLAS-2
calls per pass: with k = 0 a step costs what a GMRES step costs; with k > 0 it also
orthogonalises against C (on average (m + k)/2 vectors per step instead of m/2).

>>> from neuralops.solvers import gallery
>>> A = gallery.convection_diffusion(16, eps=0.5)  # (256, 256)
>>> solver = GCRODR(m=20, k=5, rtol=1e-10)
>>> rng = np.random.default_rng(0)
>>> first = solver.solve(A, 1.0 + 0.3 * rng.standard_normal(256))
>>> second = solver.solve(A, 1.0 + 0.3 * rng.standard_normal(256))  # recycles 5 vectors
>>> first.converged, second.converged, second.iterations < 0.8 * first.iterations  # 72 -> 52
(True, True, True)
>>> solver.recycle.k, second.info["k_used"]
(5, 5)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.blas import ddot, dgemm, dgemv

from neuralops.solvers._backend import (
    NumpyOps,
    check_tolerances,
    finish,
    is_torch,
    prepare,
    trivial_solution,
    wrap_preconditioner,
)
from neuralops.solvers.operators import as_operator
from neuralops.solvers.solution import Solution

__all__ = ["RecycleSpace", "GCRODR"]

log = logging.getLogger("neuralops.solvers")

_EPS = float(np.finfo(np.float64).eps)
_REORTH = 1.0 / math.sqrt(2.0)  # DGKS: re-orthogonalise when the norm drops below this factor
_RANK_TOL = 1e-10  # relative pivot below which a recycle direction is dropped


class RecycleSpace:
    """The recycle pair of :class:`GCRODR`: ``U``, ``C`` of shape (n, k), ``A U = C``, ``C^T C = I``.

    Empty (``k == 0``, ``n is None``) until a solve builds it. Stored row-major (k, n) so the
    Arnoldi loop uses it without copies. ``to_arrays``/``from_arrays`` save and restore it
    (e.g. with safetensors); passing one instance to another solver shares it.

    >>> space = RecycleSpace(np.eye(4)[:, :2], np.eye(4)[:, :2])
    >>> space.n, space.k, space.to_arrays()["U"].shape
    (4, 2, (4, 2))
    >>> space.reset(); space.k
    0
    """

    def __init__(self, U: np.ndarray | None = None, C: np.ndarray | None = None) -> None:
        self._Ut = np.empty((0, 0))
        self._Ct = np.empty((0, 0))
        if (U is None) != (C is None):
            raise ValueError("RecycleSpace needs both U and C (or neither)")
        if U is not None:
            U, C = np.asarray(U, dtype=np.float64), np.asarray(C, dtype=np.float64)
            if U.ndim != 2 or U.shape != C.shape:
                raise ValueError(
                    f"U and C must be (n, k) arrays of one shape, got U {U.shape}, C {C.shape}"
                )
            if not (np.isfinite(U).all() and np.isfinite(C).all()):
                raise ValueError("recycle space U or C contains NaN or Inf")
            if U.shape[1] > 0:
                self._set(np.ascontiguousarray(U.T), np.ascontiguousarray(C.T))

    def _set(self, Ut: np.ndarray, Ct: np.ndarray) -> None:
        """Store row-major (k, n) arrays (no copy)."""
        self._Ut, self._Ct = Ut, Ct

    @property
    def U(self) -> np.ndarray:
        """(n, k) with ``A U = C`` for the operator of the last solve (a view)."""
        return self._Ut.T

    @property
    def C(self) -> np.ndarray:
        """(n, k) with orthonormal columns (a view)."""
        return self._Ct.T

    @property
    def k(self) -> int:
        return int(self._Ut.shape[0])

    @property
    def n(self) -> int | None:
        return int(self._Ut.shape[1]) if self.k else None

    def reset(self) -> None:
        """Forget the recycle space (the next solve starts with a GMRES(m) cycle)."""
        self._Ut, self._Ct = np.empty((0, 0)), np.empty((0, 0))

    def check_size(self, n: int) -> None:
        """Raise ``ValueError`` if the stored vectors do not have length ``n``."""
        if self.k and self.n != n:
            raise ValueError(
                f"recycle space size mismatch: its vectors have length n={self.n}, but A has "
                f"n={n}; call solver.recycle.reset() before solving a system of another size"
            )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Copies ``{"U": (n, k), "C": (n, k)}`` (shape (0, 0) when empty)."""
        return {"U": np.array(self.U), "C": np.array(self.C)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> RecycleSpace:
        """Inverse of :meth:`to_arrays`."""
        missing = {"U", "C"} - set(arrays)
        if missing:
            raise ValueError(f"recycle arrays lack keys {sorted(missing)}; expected 'U' and 'C'")
        U, C = np.asarray(arrays["U"]), np.asarray(arrays["C"])
        return cls() if U.size == 0 and C.size == 0 else cls(U, C)

    def refresh(self, A: Any, *, M: Any = None) -> None:
        """Re-fit the pair to the operator ``A M`` (step 1): ``A M U = Q R``, ``C = Q``,
        ``U = U R^{-1}`` (k matvecs); directions with a negligible pivot are dropped.
        A (n, n) anything :func:`~neuralops.solvers.operators.as_operator` accepts."""
        if not self.k:
            return
        op = as_operator(A)
        self.check_size(op.shape[0])
        pre = wrap_preconditioner(M, NumpyOps(op.shape[0]))
        apply = (lambda v: v) if pre is None else pre.apply
        matvec = lambda v: np.asarray(op.matvec(apply(v)))  # noqa: E731
        self._set(*_refresh(self._Ut, matvec, op.shape[0], _block_operator(op, pre)))

    def defects(self, A: Any) -> tuple[float, float]:
        """``(max_i ||A u_i - c_i|| / ||A|| ||u_i||, max |C^T C - I|)`` with ``||A||``
        estimated as ``max_i ||A u_i|| / ||u_i||``; (0, 0) when empty."""
        if not self.k:
            return 0.0, 0.0
        AU = np.asarray(A @ self.U)
        unorm = np.linalg.norm(self.U, axis=0)
        scale = max(float(np.max(np.linalg.norm(AU, axis=0) / unorm)), _EPS)
        err = float(np.max(np.linalg.norm(AU - self.C, axis=0) / (scale * unorm)))
        orth = float(np.max(np.abs(self.C.T @ self.C - np.eye(self.k))))
        return err, orth

    def __repr__(self) -> str:
        return f"RecycleSpace(n={self.n}, k={self.k})"


# Row stacks X (r, n) are C-contiguous, so X.T is a Fortran (n, r) matrix that scipy's BLAS
# takes without a copy. The loop stays on scipy's BLAS: mixing it with numpy's (a second
# OpenBLAS thread pool) in the inner loop stalls both on small machines.
def _rows_dot(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``X @ v`` (r,) for a row stack X (r, n) and v (n,)."""
    return dgemv(1.0, X.T, v, trans=1)


def _rows_sub(X: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``w -= X^T h`` in place (returns w) for X (r, n), h (r,), w (n,)."""
    return dgemv(-1.0, X.T, h, beta=1.0, y=w, overwrite_y=1)


def _rows_combine(X: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``X^T P`` (n, q) for X (r, n) and P (r, q) or (r,)."""
    return dgemv(1.0, X.T, P) if P.ndim == 1 else dgemm(1.0, X.T, P)


def _pivoted_qr(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin pivoted QR ``X[:, piv] = Q R`` truncated to numerical rank: returns Q, R, piv[:rank]."""
    Q, R, piv = sla.qr(X, mode="economic", pivoting=True, check_finite=False)
    d = np.abs(np.diag(R))
    rank = int(np.count_nonzero(d > _RANK_TOL * d[0])) if d.size and d[0] > 0 else 0
    return Q[:, :rank], R[:rank, :rank], piv[:rank]


def _unpivot(R: np.ndarray, piv: np.ndarray, q: int) -> np.ndarray:
    """T (q, r) with ``X T = X[:, piv] R^{-1}`` for any X with q columns."""
    T = np.zeros((q, R.shape[0]))
    T[piv] = sla.solve_triangular(R, np.eye(R.shape[0]), check_finite=False)
    return T


def _smallest(theta_abs: np.ndarray, theta: np.ndarray, Z: np.ndarray, k: int) -> np.ndarray:
    """Real orthonormal basis (s, <=k) of the eigenvectors with the k smallest finite |θ|.

    A complex pair contributes its real and imaginary parts (the conjugate is skipped)."""
    cols: list[np.ndarray] = []
    for i in np.argsort(theta_abs, kind="stable"):
        if len(cols) >= k or not np.isfinite(theta_abs[i]):
            break
        if theta[i].imag < 0:
            continue
        cols.append(Z[:, i].real)
        if theta[i].imag > 0:
            cols.append(Z[:, i].imag)
    if not cols:
        return np.zeros((Z.shape[0], 0))
    return _pivoted_qr(np.column_stack(cols[:k]))[0]  # only the span matters


def _harmonic_ritz(Hbar: np.ndarray, k: int) -> np.ndarray:
    """P (j, <=k): harmonic Ritz vectors of ``H̄`` (j+1, j), i.e. eigenvectors of
    ``H_j + h_{j+1,j}^2 H_j^{-T} e_j e_j^T`` with the smallest |θ|."""
    j = Hbar.shape[1]
    H = Hbar[:j].copy()
    try:
        f = sla.solve(H.T, np.eye(j)[:, -1], check_finite=False)
    except (np.linalg.LinAlgError, ValueError):  # singular H_j: use the equivalent pencil
        return _pencil(Hbar, np.eye(j + 1, j), k)
    H[:, -1] += Hbar[j, j - 1] ** 2 * f
    theta, Z = sla.eig(H, check_finite=False)
    return _smallest(np.abs(theta), theta, Z, k)


def _pencil(G: np.ndarray, WtV: np.ndarray, k: int) -> np.ndarray:
    """P (s, <=k): eigenvectors of ``G^T G z = θ G^T (Ŵ^T V̂) z`` with the smallest |θ|."""
    (alpha, beta), Z = sla.eig(G.T @ G, G.T @ WtV, homogeneous_eigvals=True, check_finite=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = alpha / beta
        theta_abs = np.where(np.abs(beta) > 0, np.abs(alpha) / np.abs(beta), np.inf)
    theta_abs[~np.isfinite(theta_abs)] = np.inf
    return _smallest(theta_abs, np.where(np.isfinite(theta), theta, 0), Z, k)


def _block_operator(op: Any, pre: Any) -> Any:
    """``V (n, k) -> A M V`` in two block calls, for an explicit A and a preconditioner with a
    block path (or none); None otherwise (the refresh then goes vector by vector)."""
    A_mat = getattr(op, "A", None)
    if not (sp.issparse(A_mat) or isinstance(A_mat, np.ndarray)):
        return None
    if pre is None:
        return lambda V: np.asarray(A_mat @ V)
    if pre.apply_block is None:
        return None
    return lambda V: np.asarray(A_mat @ pre.apply_block(V))


def _refresh(
    Ut_old: np.ndarray, op: Any, n: int, op_block: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: ``A M U_old = Q R`` -> ``C = Q``, ``U = U_old R^{-1}`` (rows (k, n)).
    ``op_block`` (n, k) -> (n, k), when given, applies ``A M`` to all k vectors at once."""
    if op_block is not None:
        AU = np.asfortranarray(op_block(Ut_old.T))
    else:
        AU = np.empty((n, Ut_old.shape[0]), order="F")
        for i, u in enumerate(Ut_old):
            AU[:, i] = op(u)
    if not np.isfinite(AU).all():
        log.warning("GCRODR: A applied to the recycle space is not finite; dropping it")
        return np.empty((0, n)), np.empty((0, n))
    Q, Rr, piv = _pivoted_qr(AU)
    Ut = _rows_combine(Ut_old, _unpivot(Rr, piv, Ut_old.shape[0])).T
    return np.ascontiguousarray(Ut), np.ascontiguousarray(Q.T)


def _arnoldi(
    op: Any, work: tuple, beta: float, kc: int, steps: int, tol: float, hist: list
) -> tuple[int, str, int]:
    """Up to ``steps`` Arnoldi steps of ``(I - C C^T) A`` from ``W[kc]`` (W rows: C, then V).

    Classical Gram–Schmidt against ``W[:kc+j+1]`` (DGKS re-orthogonalisation) fills column
    ``kc+j`` of ``G`` (B above H̄); Givens rotations of the H̄ part go to ``R`` and ``g``
    (``g[j+1]`` is the least-squares residual, appended to ``hist``). Stops early at
    ``|g| <= tol`` or a breakdown. Returns (steps done, "" | "lucky" | "nonfinite", reorths).
    """
    W, G, R, g = work
    G[:] = 0.0
    g[:] = 0.0
    g[0] = beta
    cs, sn = np.zeros(steps), np.zeros(steps)
    done, status, reorths = 0, "", 0
    for j in range(steps):
        w = op(W[kc + j])
        if np.may_share_memory(w, W):  # a matvec that returned (a view of) its input
            w = w.copy()
        rows = kc + j + 1
        Wj = W[:rows]
        h0 = math.sqrt(ddot(w, w))
        h = _rows_dot(Wj, w)
        w = _rows_sub(Wj, h, w)
        hn = math.sqrt(ddot(w, w))
        if hn < _REORTH * h0:
            reorths += 1
            h2 = _rows_dot(Wj, w)
            w = _rows_sub(Wj, h2, w)
            h += h2
            hn = math.sqrt(ddot(w, w))
        G[:rows, kc + j] = h
        G[rows, kc + j] = hn
        col = R[: j + 2, j]
        col[: j + 1] = h[kc:]
        col[j + 1] = hn
        for i in range(j):
            a, b = col[i], col[i + 1]
            col[i], col[i + 1] = cs[i] * a + sn[i] * b, -sn[i] * a + cs[i] * b
        rho = math.hypot(col[j], hn)
        cs[j], sn[j] = (1.0, 0.0) if rho == 0.0 else (col[j] / rho, hn / rho)
        col[j], col[j + 1] = rho, 0.0
        g[j + 1], g[j] = -sn[j] * g[j], cs[j] * g[j]
        done = j + 1
        hist.append(abs(g[j + 1]))
        if hn <= _EPS * h0 or not math.isfinite(hn):
            status = "lucky" if math.isfinite(hn) else "nonfinite"
            W[rows] = 0.0
            break
        W[rows] = w / hn
        if abs(g[j + 1]) <= tol:
            break
    return done, status, reorths


def _triangular_solve(Rj: np.ndarray, gj: np.ndarray) -> np.ndarray:
    """``y = R^{-1} g`` for the rotated (upper-triangular) Hessenberg block."""
    d = np.diag(Rj)
    if np.all(np.isfinite(Rj)) and np.all(np.abs(d) > _EPS * max(np.abs(d).max(), 1e-300)):
        return sla.solve_triangular(Rj, gj, lower=False, check_finite=False)
    return np.linalg.lstsq(np.nan_to_num(Rj), gj, rcond=None)[0]


def _new_space(
    W: np.ndarray, G: np.ndarray, Ut: np.ndarray, Ct: np.ndarray, kc: int, j: int, kmax: int
) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2/4: the new recycle pair from the cycle that just ran (rows (k, n)).

    ``V̂ = [Ũ; V_j]`` with ``Ũ = U / ||u_i||`` row-wise, ``Ŵ = W[:s+1]`` (= [C; V_{j+1}]).
    ``U_new = V̂ P Π R^{-1}`` is formed as one product with the small ``P Π R^{-1}``.
    """
    s = kc + j
    Gs = G[: s + 1, :s]
    try:
        if kc == 0:
            P = _harmonic_ritz(Gs, kmax)
        else:
            unorm = np.sqrt(np.einsum("ij,ij->i", Ut, Ut))
            Gs[:kc, :kc] = np.diag(1.0 / unorm)  # A Ũ = C D, D = diag(1 / ||u_i||)
            WtV = np.zeros((s + 1, s))
            WtV[:, :kc] = dgemm(1.0, W[: s + 1].T, Ut.T, trans_a=1) / unorm
            WtV[kc:s, kc:] = np.eye(j)
            P = _pencil(Gs, WtV, kmax)
        if P.shape[1] == 0:
            return Ut, Ct
        Q, Rr, piv = _pivoted_qr(Gs @ P)
        PT = P @ _unpivot(Rr, piv, P.shape[1])
    except (np.linalg.LinAlgError, ValueError) as exc:
        log.debug("GCRODR: keeping the old recycle space (%s)", exc)
        return Ut, Ct
    Y = _rows_combine(W[kc:s], PT[kc:])
    if kc:
        Y = dgemm(1.0, Ut.T, PT[:kc] / unorm[:, None], beta=1.0, c=Y, overwrite_c=1)
    Ct_new = _rows_combine(W[: s + 1], Q)
    if not (np.isfinite(Y).all() and np.isfinite(Ct_new).all()):
        return Ut, Ct
    return np.ascontiguousarray(Y.T), np.ascontiguousarray(Ct_new.T)


@dataclass(frozen=True)
class GCRODR:
    """GCRO-DR(m, k): restarted GMRES(m) recycling k vectors across solves (see module doc).

    ``M``: right preconditioner (an :class:`~neuralops.solvers.precond.AbstractPreconditioner`,
    a matrix or a callable ``r -> z``), kept the same type across the sequence; ``solve(M=...)``
    overrides it per system (a per-system rebuild; the refresh handles the changed operator).
    ``maxiter`` caps Arnoldi steps over all cycles (default ``10 n``). ``recycle`` holds the
    mutable :class:`RecycleSpace` carried from one ``solve`` to the next; ``recycle.reset()``
    starts afresh. ``k = 0`` is restarted GMRES(m). Requires ``0 <= k < m <= n``.

    ``Solution.iterations`` counts Arnoldi steps; ``info["matvecs"]`` also counts the k
    matvecs of the refresh and one per cycle for the true residual. ``info`` adds ``k_used``
    (recycled vectors after the refresh), ``cycles``, ``refresh_seconds``, ``m``, ``k``,
    ``true_residuals`` (``||b - A x||`` after each cycle) and ``reorthogonalizations``.

    ``stall_cycles``: a space recycled from earlier systems can lock onto directions that do not
    help this one (seen on a nearly singular indefinite Helmholtz system: stuck at 1.6e-4 for
    10 000 steps, while a fresh solve converged in 882). When the true residual has not halved over
    that many cycles, the recycled space is dropped once and the solve goes on from the current x,
    building a new space (``info["recycle_dropped_at"]``: the iteration). None disables it.
    """

    m: int = 40
    k: int = 20
    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int | None = None
    M: Any = None
    stall_cycles: int | None = 25
    recycle: RecycleSpace = field(default_factory=RecycleSpace, compare=False)

    def __post_init__(self) -> None:
        check_tolerances(self.rtol, self.atol, self.maxiter)
        if not isinstance(self.m, int | np.integer) or self.m < 1:
            raise ValueError(f"restart length m must be an integer >= 1, got {self.m!r}")
        if not isinstance(self.k, int | np.integer) or self.k < 0:
            raise ValueError(f"recycle dimension k must be an integer >= 0, got {self.k!r}")
        if self.k >= self.m:
            raise ValueError(
                f"recycle dimension k={self.k} must be < restart length m={self.m} "
                "(each cycle runs m - k Arnoldi steps); e.g. m=40, k=20"
            )
        if self.stall_cycles is not None and not (
            isinstance(self.stall_cycles, int | np.integer) and self.stall_cycles >= 1
        ):
            raise ValueError(
                f"stall_cycles must be an integer >= 1 or None, got {self.stall_cycles!r}"
            )
        if not isinstance(self.recycle, RecycleSpace):
            raise TypeError(f"recycle must be a RecycleSpace, got {type(self.recycle).__name__}")

    def __repr__(self) -> str:
        M = "None" if self.M is None else getattr(self.M, "name", type(self.M).__name__)
        return (
            f"GCRODR(m={self.m}, k={self.k}, rtol={self.rtol:g}, atol={self.atol:g}, "
            f"maxiter={self.maxiter}, M={M}, recycle={self.recycle!r})"
        )

    def solve(self, A: Any, b: Any, *, M: Any = None, x0: Any = None) -> Solution:
        """Solve ``A x = b`` and update ``self.recycle``.

        A (n, n) anything :func:`~neuralops.solvers.operators.as_operator` accepts, b (n,),
        x0 (n,) or None, M overrides the configured preconditioner. Returns a
        :class:`Solution` with x (n,) (numpy float64; torch in gives torch out on b's device).
        Never raises on non-convergence; raises ``ValueError`` for bad input (m > n, a recycle
        space of another size, NaN/Inf, wrong shapes).
        """
        like = b if is_torch(b) else None
        if like is not None:
            b = b.detach().cpu().numpy()
        if is_torch(x0):
            x0 = x0.detach().cpu().numpy()
        prob = prepare(A, b, x0)
        n = prob.n
        if self.m > n:
            raise ValueError(f"restart length m={self.m} exceeds the system size n={n}; use m <= n")
        if self.k:
            self.recycle.check_size(n)
        pre = wrap_preconditioner(self.M if M is None else M, prob.ops)
        t0 = time.perf_counter()
        sol = trivial_solution(prob, self.rtol, self.atol, "gcrodr", t0)
        if sol is None:
            sol = self._iterate(prob, pre, t0)
        else:
            sol.info.update(k_used=0, cycles=0, refresh_seconds=0.0, m=self.m, k=self.k)
        if like is not None:
            import torch

            x = torch.as_tensor(sol.x, device=like.device)
            x = x.to(like.dtype) if like.is_floating_point() else x
            sol = replace(sol, x=x)
        return sol

    def _iterate(self, prob: Any, pre: Any, t0: float) -> Solution:
        n, b, x, ops = prob.n, prob.b, prob.x, prob.ops
        m, kmax = int(self.m), int(self.k)
        maxiter = self.maxiter if self.maxiter is not None else 10 * n
        tol = max(self.rtol * prob.bnorm, self.atol)
        apply = pre.apply if pre is not None else None
        count = {"mv": 0, "pc": 0}

        def op(v: np.ndarray) -> np.ndarray:  # the right-preconditioned operator A M
            if apply is not None:
                v = apply(v)
                count["pc"] += 1
            count["mv"] += 1
            return prob.matvec(v)

        def residual(x: np.ndarray) -> np.ndarray:
            count["mv"] += 1
            return b - prob.matvec(x)

        block = _block_operator(prob.op, pre)
        op_block = None
        if block is not None:

            def op_block(V: np.ndarray) -> np.ndarray:  # A M V for V (n, k), counted
                count["mv"] += V.shape[1]
                count["pc"] += V.shape[1] if pre is not None else 0
                return block(V)

        r = residual(x) if prob.x0_given else b.copy()
        hist = [ops.norm(r)]
        Ut, Ct = np.empty((0, n)), np.empty((0, n))
        t_ref = time.perf_counter()
        if kmax and self.recycle.k:
            Ut, Ct = _refresh(self.recycle._Ut[:kmax], op, n, op_block)
        refresh_seconds = time.perf_counter() - t_ref
        k_used = Ut.shape[0]

        W = np.empty((m + 1, n))  # rows: C (kc), then the Arnoldi vectors V
        G = np.zeros((m + 1, m))  # [[D, B], [0, H̄]], unrotated (for the eigenproblem)
        R = np.zeros((m + 1, m))  # H̄ with Givens rotations applied
        g = np.zeros(m + 1)  # rotated right-hand side beta e_1
        beta_true, true_hist = hist[0], []
        total, cycles, reorths = 0, 0, 0
        stop, message, projected_only = "", "", False
        dropped_at, window = None, self.stall_cycles
        while True:
            if beta_true <= tol:
                stop = "rtol"
                break
            if not math.isfinite(beta_true):
                stop, message = "nonfinite", "non-finite residual; check A and M for NaN/Inf"
                break
            if total >= maxiter:
                stop = "maxiter"
                break
            kc = Ut.shape[0]
            du = np.zeros(n)
            if kc:  # x += U C^T r, r -= C C^T r
                c = _rows_dot(Ct, r)
                r = _rows_sub(Ct, c, r)
                du = _rows_combine(Ut, c)
                W[:kc] = Ct
            beta = ops.norm(r)
            j, status = 0, ""
            if beta == 0.0 and projected_only:  # r lies in span(C) yet the true residual is large
                stop, message = "breakdown", "residual in the recycle space did not converge"
                break
            if beta > tol or projected_only:
                cycles += 1
                W[kc] = r / beta
                steps = min(m - kc, maxiter - total)
                j, status, reo = _arnoldi(op, (W, G, R, g), beta, kc, steps, tol, hist)
                total, reorths = total + j, reorths + reo
                y = _triangular_solve(R[:j, :j], g[:j])
                dx = _rows_combine(W[kc : kc + j], y)
                if kc:  # the U part of the decoupled least squares: y_U = -D^{-1} B y
                    dx = _rows_sub(Ut, G[:kc, kc : kc + j] @ y, dx)
                du += dx
            projected_only = j == 0
            if apply is not None:
                du = apply(du)
                count["pc"] += 1
            update = du
            if np.isfinite(update).all():
                x += update
            r = residual(x)
            beta_old, beta_true = beta_true, ops.norm(r)
            hist[-1] = beta_true
            true_hist.append(beta_true)
            if status == "nonfinite" or not math.isfinite(beta_true):
                stop = "nonfinite"
                message = f"non-finite Arnoldi vector in cycle {cycles}; check A and M for NaN/Inf"
                break
            if kmax and j:
                Ut, Ct = _new_space(W, G, Ut, Ct, kc, j, kmax)
            stalled = (
                window is not None
                and k_used
                and dropped_at is None
                and len(true_hist) > window
                and true_hist[-1] > 0.5 * true_hist[-1 - window]
            )
            if stalled:  # the carried-over space does not fit this system: start a new one
                Ut, Ct = np.empty((0, n)), np.empty((0, n))
                dropped_at = total
            if j and beta_true > tol and beta_true >= beta_old * (1.0 - 4.0 * _EPS):
                stop = "breakdown"
                message = (
                    f"stagnated after {total} iterations ({'lucky breakdown, ' if status else ''}"
                    f"cycle {cycles} did not reduce the residual {beta_true / prob.bnorm:.2e}); "
                    "increase m or k, use a preconditioner, or loosen rtol"
                )
                break
        if kmax:
            self.recycle._set(Ut, Ct)
        info = {"method": "gcrodr", "matvecs": count["mv"], "precond_applies": count["pc"]}
        info.update(k_used=k_used, cycles=cycles, refresh_seconds=refresh_seconds, m=m, k=kmax)
        info.update(true_residuals=true_hist, reorthogonalizations=reorths)
        info.update(recycle_dropped_at=dropped_at)
        return finish(prob, x, hist, total, stop, message, t0, info, tol, self.rtol, self.atol, pre)
