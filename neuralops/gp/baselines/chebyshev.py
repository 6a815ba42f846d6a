"""Chebyshev-Gauss-Lobatto collocation (tensor product in 2-D), a GP-HM benchmark baseline."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla
import torch

from neuralops.gp.baselines._common import (
    TEST_GRID,
    BaselineResult,
    _Assembled,
    _check_newton,
    _check_spec,
    _Interpolant,
    _keep,
    _kron,
    _result,
    _solve,
    _unknowns,
)
from neuralops.pde.spec import PDESpec, tensor_points

__all__ = ["chebyshev_collocation", "chebyshev_nodes"]

#: 2-D Chebyshev: above this many unknowns ``method="auto"`` takes the fast (Sylvester) path
DENSE_MAX = 2500


def chebyshev_nodes(n: int, a: float = -1.0, b: float = 1.0):
    """Gauss-Lobatto nodes on ``[a, b]`` (ascending), barycentric weights and ``D``, ``D^2``.

    ``D`` uses Trefethen's formula with the differences ``x_i - x_j`` written as products of sines
    and the diagonal from the negative-sum trick; ``D^2`` uses the recursion of Weideman and Reddy
    (``chebdif``), again with a negative-sum diagonal. Returns numpy arrays ``(n,), (n,), (n, n), (n, n)``.
    """
    N = n - 1
    j = np.arange(n)
    s = np.sin(np.pi * (2 * j - N) / (2 * N))  # -cos(pi j / N), exactly symmetric
    x = 0.5 * (a + b) + 0.5 * (b - a) * s
    x[0], x[-1] = a, b
    th = np.pi * j / N
    dx = 2 * np.sin(0.5 * (th[:, None] + th[None, :])) * np.sin(0.5 * (th[:, None] - th[None, :]))
    c = np.where((j == 0) | (j == N), 2.0, 1.0) * (-1.0) ** j
    C = c[:, None] / c[None, :]
    off = ~np.eye(n, dtype=bool)
    Z = np.zeros((n, n))
    Z[off] = 1.0 / dx[off]
    D = C * Z
    D[np.diag_indices(n)] = -D.sum(axis=1)
    D2 = 2 * Z * (C * np.diag(D)[:, None] - D)
    D2[np.diag_indices(n)] = 0.0
    D2[np.diag_indices(n)] = -D2.sum(axis=1)
    scale = 2.0 / (b - a)
    w = (-1.0) ** j * np.where((j == 0) | (j == N), 0.5, 1.0)
    return x, w, D * scale, D2 * scale**2


def _barycentric(nodes: np.ndarray, w: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def basis(t: np.ndarray) -> np.ndarray:
        diff = np.asarray(t, dtype=np.float64)[:, None] - nodes[None, :]
        hit = diff == 0
        diff[hit] = 1.0
        B = w / diff
        B /= B.sum(axis=1, keepdims=True)
        rows = hit.any(axis=1)
        B[rows] = hit[rows].astype(np.float64)
        return B

    return basis


def chebyshev_collocation(
    spec: PDESpec,
    n: int | Sequence[int],
    *,
    method: str = "auto",
    tol: float = 1e-12,
    max_iter: int = 50,
    eval_grid: int | Sequence[int] | None = None,
    test_grid: int = TEST_GRID,
) -> BaselineResult:
    """Chebyshev-Gauss-Lobatto collocation with ``n`` nodes per axis (tensor product in 2-D).

    The PDE is collocated at every node without Dirichlet data (nodes on faces without data
    included); boundary data are imposed at the nodes of the data faces (see
    :mod:`neuralops.gp.baselines` for first-order problems). Linear problems: one direct solve with
    the coefficients of ``spec.linear_parts``. Nonlinear: Newton with the Jacobian of the pointwise
    operator with respect to the jet (``torch.func``), stopping at relative update ``tol`` or after
    ``max_iter`` steps; non-convergence is recorded (``converged``, ``info["stopped"]``), never
    raised.

    method: ``"dense"`` (LU of the Kronecker-assembled Jacobian), ``"fast"`` (2-D only: the
    Sylvester equation ``A V + V B^T = R`` by Bartels-Stewart for constant coefficients, otherwise
    GMRES right-preconditioned by that solve with grid-averaged coefficients), or ``"auto"``
    (dense up to 2500 unknowns). Returns values on ``eval_grid`` (default: the test grid).
    """
    t0 = time.perf_counter()
    d, sizes, faces, note = _check_spec(spec, n, "chebyshev_collocation")
    if method not in ("auto", "dense", "fast"):
        raise ValueError(f"method: expected 'auto', 'dense' or 'fast', got {method!r}")
    _check_newton(tol, max_iter)
    cheb = [
        chebyshev_nodes(m, a, b) for m, a, b in zip(sizes, spec.domain.lower, spec.domain.upper)
    ]
    nodes = [c[0] for c in cheb]
    mats = [[np.eye(m), c[2], c[3]] for m, c in zip(sizes, cheb)]
    keep = _keep(sizes, faces)
    n_unknowns = math.prod(len(k) for k in keep)
    if method == "fast" and d != 2:
        raise ValueError(f"method='fast' needs a 2-d problem, got dim {d}; use 'dense' or 'auto'")
    fast = method == "fast" or (method == "auto" and d == 2 and n_unknowns > DENSE_MAX)
    if fast:
        disc = _ChebTensor2d(spec.jet, nodes, mats, keep)
    else:
        K = [_kron([mats[j][a[j]] for j in range(d)]) for a in spec.jet]
        disc = _Assembled([k[_unknowns(keep, sizes)] for k in K], nodes, keep, sparse=False)
    u, iters, ok, hist, info = _solve(spec, disc, nodes, tol, max_iter)
    seconds = time.perf_counter() - t0
    interp = _Interpolant(u.reshape(sizes), [_barycentric(x, c[1]) for x, c in zip(nodes, cheb)])
    info.update(faces=[list(f) for f in faces], note=note)
    return _result(
        "chebyshev", spec, sizes, interp, seconds, iters, ok, hist, info, eval_grid, test_grid
    )


class _Sylvester:
    """``A Y + Y B^T = R`` by Bartels-Stewart with the real Schur forms computed once."""

    def __init__(self, A: np.ndarray, B: np.ndarray):
        self.Ta, self.Qa = scipy.linalg.schur(A, output="real")
        self.Tb, self.Qb = scipy.linalg.schur(B, output="real")

    def __call__(self, R: np.ndarray) -> np.ndarray:
        C = self.Qa.T @ R @ self.Qb
        Y, scale, info = scipy.linalg.lapack.dtrsyl(self.Ta, self.Tb, C, tranb="T")
        if info < 0:
            raise RuntimeError(f"dtrsyl: illegal argument {-info}")
        return self.Qa @ (Y / scale) @ self.Qb.T


def _mode(M0, V, M1):
    """``M0 V M1^T`` with ``None`` standing for the identity."""
    out = V if M0 is None else M0 @ V
    return out if M1 is None else out @ M1.T


class _ChebTensor2d:
    """Matrix-free 2-D Chebyshev collocation: the unknowns form a ``(k0, k1)`` block."""

    kind = "Sylvester (Bartels-Stewart)"

    def __init__(self, jet, nodes, mats, keep):
        self.jet_idx, self.keep = jet, keep
        self.shape = tuple(len(x) for x in nodes)
        self.unk = _unknowns(keep, self.shape)
        self.x_eq = tensor_points([torch.from_numpy(x) for x in nodes])[self.unk]
        self.R = [[None if o == 0 else m[k] for o, m in enumerate(ms)] for ms, k in zip(mats, keep)]
        self.S = [
            [None if o == 0 else m[np.ix_(k, k)] for o, m in enumerate(ms)]
            for ms, k in zip(mats, keep)
        ]
        self.block = (len(keep[0]), len(keep[1]))

    def jet(self, u: np.ndarray) -> np.ndarray:
        U = u.reshape(self.shape)
        R0, R1 = self.R
        cols = []
        for a0, a1 in self.jet_idx:
            V = U[self.keep[0]] if a0 == 0 else R0[a0] @ U
            cols.append(V[:, self.keep[1]] if a1 == 0 else V @ R1[a1].T)
        return np.stack([c.reshape(-1) for c in cols], axis=1)

    def solve(self, c: np.ndarray, rhs: np.ndarray):
        k0, k1 = self.block
        S0, S1 = self.S
        mean = c.mean(axis=0)
        A, B = np.zeros((k0, k0)), np.zeros((k1, k1))
        for m, (a0, a1) in zip(mean, self.jet_idx):
            if a1 == 0:
                A += m * (np.eye(k0) if a0 == 0 else S0[a0])
            elif a0 == 0:
                B += m * S1[a1]
        P = _Sylvester(A, B)
        mixed = any(a0 and a1 for a0, a1 in self.jet_idx)
        if not mixed and np.allclose(c, mean, rtol=1e-14, atol=0):
            return P(rhs.reshape(k0, k1)).reshape(-1), {"solver": self.kind, "gmres_iterations": 0}
        coef = [c[:, k].reshape(k0, k1) for k in range(c.shape[1])]

        def matvec(z):
            V = P(np.asarray(z).reshape(k0, k1))
            out = sum(ck * _mode(S0[a0], V, S1[a1]) for ck, (a0, a1) in zip(coef, self.jet_idx))
            return out.reshape(-1)

        count = [0]

        def tick(_):
            count[0] += 1

        op = spla.LinearOperator((k0 * k1, k0 * k1), matvec=matvec, dtype=np.float64)
        z, flag = spla.gmres(
            op,
            rhs,
            rtol=1e-13,
            atol=0.0,
            restart=60,
            maxiter=10,
            callback=tick,
            callback_type="pr_norm",
        )
        solver = "GMRES right-preconditioned by Sylvester (mean coefficients)"
        info = {"solver": solver, "gmres_iterations": count[0], "ok": flag == 0}
        return P(z.reshape(k0, k1)).reshape(-1), info
