"""Reference (non-GP) solvers that GP-HM is compared against in the benchmark (spec ``gp.md`` §7).

Each baseline takes a :class:`~neuralops.pde.spec.PDESpec` on a 1-D or 2-D box whose operator reads
derivatives of order at most 2, and returns a frozen :class:`BaselineResult`:

- :func:`chebyshev_collocation` -- Chebyshev-Gauss-Lobatto collocation (tensor product in 2-D); linear
  problems are solved directly, nonlinear ones by Newton with the Jacobian of the pointwise operator;
- :func:`finite_differences` -- second-order finite differences on a uniform grid (sparse LU, Newton),
  with :func:`fd_refinement` for the observed order;
- :func:`pinn` -- a tanh MLP trained with Adam on the GP-HM collocation grid.

Errors are measured on the GP-HM test grid: ``test_grid`` (300) uniform nodes per axis, end points
included. Chebyshev solutions are evaluated there by barycentric interpolation, finite-difference ones
by (tensor-product) cubic-spline interpolation, whose O(h^4) error does not mask the O(h^2) of the scheme.

**Boundary data.** A problem with a second-order entry in its jet takes Dirichlet data on
``spec.boundary_faces``. A first-order (hyperbolic) problem such as advection ``beta u_x + u_t = f``
takes data only on its *inflow* faces -- the lower face of an axis whose coefficient is positive, the
upper face where it is negative -- even when the spec lists all faces (the GP-HM benchmark gives
GP-HM all four edges). Data on an outflow face over-determine a first-order problem: collocation then
has no consistent square system, and the baseline would be handed the answer at the final time. The
faces used are recorded in ``info["faces"]``.

>>> import math, torch
>>> from neuralops.pde.spec import BoxDomain, poisson
>>> spec = poisson(BoxDomain((0.0,), (1.0,)), exact=lambda x: torch.sin(math.pi * x[:, 0]))
>>> res = chebyshev_collocation(spec, 24)
>>> res.rel_l2 < 1e-12, res.values.shape
(True, torch.Size([300]))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from scipy.interpolate import make_interp_spline

from neuralops.gp.solution import validate_points
from neuralops.pde.spec import PDESpec, tensor_points

__all__ = [
    "BaselineResult",
    "FDRefinement",
    "TEST_GRID",
    "chebyshev_collocation",
    "chebyshev_nodes",
    "fd_refinement",
    "finite_differences",
    "pinn",
]

F64 = torch.float64
#: uniform nodes per axis (end points included) of the test grid, as in GP-HM
TEST_GRID = 300
#: 2-D Chebyshev: above this many unknowns ``method="auto"`` takes the fast (Sylvester) path
DENSE_MAX = 2500


@dataclass(frozen=True)
class BaselineResult:
    """What a baseline solve returns.

    method: ``"chebyshev"``, ``"fd"`` or ``"pinn"``; grid: nodes (collocation points) per axis;
    values: the solution on the requested evaluation grid, shape ``eval_sizes``; rel_l2 / rms:
    relative L2 and absolute RMS error against ``spec.exact`` on the test grid (``None`` without an
    exact solution; for the PINN the *final* network); seconds: wall time of the solve (the PINN:
    training including its checkpoint evaluations); iterations: Newton steps (1 for a direct linear
    solve) or optimiser steps; history: per-iteration lists; info: ``stopped``, ``faces``, solver
    details and, for the PINN, ``oracle_min_error`` (minimum over checkpoints, selected with the exact
    solution -- an oracle, not a deployable number).
    """

    method: str
    name: str
    grid: tuple[int, ...]
    values: torch.Tensor
    eval_sizes: tuple[int, ...]
    rel_l2: float | None
    rms: float | None
    seconds: float
    iterations: int
    converged: bool
    history: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    predictor: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    def predict(self, points) -> torch.Tensor:
        """The solution at ``points`` ``(N, d)`` -> ``(N,)`` float64."""
        p = validate_points(points, len(self.grid))
        with torch.no_grad():
            return self.predictor(p).to(F64).reshape(-1)

    def __repr__(self) -> str:
        err = "n/a" if self.rel_l2 is None else f"{self.rel_l2:.3e}"
        return (
            f"BaselineResult({self.method!r}, pde={self.name!r}, grid={self.grid}, rel_l2={err}, "
            f"iterations={self.iterations}, converged={self.converged}, seconds={self.seconds:.2f})"
        )


@dataclass(frozen=True)
class FDRefinement:
    """``pairs``: (n, relative L2 error) per grid; ``order``: slope of log error against log h."""

    pairs: tuple[tuple[int, float], ...]
    order: float
    results: tuple[BaselineResult, ...] = field(repr=False, default=())


# ------------------------------------------------------------------------------------ Chebyshev
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
    included); boundary data are imposed at the nodes of the data faces (see the module docstring
    for first-order problems). Linear problems: one direct solve with the coefficients of
    ``spec.linear_parts``. Nonlinear: Newton with the Jacobian of the pointwise operator with respect
    to the jet (``torch.func``), stopping at relative update ``tol`` or after ``max_iter`` steps;
    non-convergence is recorded (``converged``, ``info["stopped"]``), never raised.

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


# ---------------------------------------------------------------------------- finite differences
def _fd_matrices(m: int, h: float) -> list[sp.csr_array]:
    """Identity, D1, D2 (central; second-order one-sided end rows), sparse ``(m, m)``."""
    D1 = sp.diags_array([-0.5 / h, 0.0, 0.5 / h], offsets=[-1, 0, 1], shape=(m, m)).tolil()
    D2 = sp.diags_array([1 / h**2, -2 / h**2, 1 / h**2], offsets=[-1, 0, 1], shape=(m, m)).tolil()
    for D in (D1, D2):
        D[0, :] = 0.0
        D[m - 1, :] = 0.0
    D1[0, :3] = np.array([-3.0, 4.0, -1.0]) / (2 * h)
    D1[m - 1, m - 3 :] = np.array([1.0, -4.0, 3.0]) / (2 * h)
    D2[0, :4] = np.array([2.0, -5.0, 4.0, -1.0]) / h**2
    D2[m - 1, m - 4 :] = np.array([-1.0, 4.0, -5.0, 2.0]) / h**2
    return [sp.eye_array(m, format="csr"), D1.tocsr(), D2.tocsr()]


def finite_differences(
    spec: PDESpec,
    n: int | Sequence[int],
    *,
    tol: float = 1e-12,
    max_iter: int = 50,
    eval_grid: int | Sequence[int] | None = None,
    test_grid: int = TEST_GRID,
) -> BaselineResult:
    """Second-order finite differences on a uniform grid with ``n`` nodes per axis.

    Second-order problems: central differences (5-point Laplacian in 2-D) at every node without
    Dirichlet data, second-order one-sided stencils on faces without data; sparse LU (``spsolve``)
    for linear problems, Newton (same rules as :func:`chebyshev_collocation`) otherwise.
    First-order problems (advection): the second-order *box scheme* (Keller/Preissmann) in space-time
    -- the PDE is collocated at cell centres with every jet entry averaged over the cell's corners --
    with data on the inflow faces only; it has as many cells as unknown nodes.
    """
    t0 = time.perf_counter()
    d, sizes, faces, note = _check_spec(spec, n, "finite_differences")
    _check_newton(tol, max_iter)
    axes = [a.numpy() for a in spec.domain.axes(sizes)]
    hs = [L / (m - 1) for L, m in zip(spec.domain.lengths, sizes)]
    keep = _keep(sizes, faces)
    unk = _unknowns(keep, sizes)
    if max(sum(a) for a in spec.jet) == 1:
        if len(unk) != math.prod(m - 1 for m in sizes):
            raise ValueError(
                f"finite_differences: the box scheme for {spec.name!r} needs one inflow face per axis, "
                f"got faces {faces}"
            )
        avg = [sp.diags_array([0.5, 0.5], offsets=[0, 1], shape=(m - 1, m)) for m in sizes]
        dif = [
            sp.diags_array([-1 / h, 1 / h], offsets=[0, 1], shape=(m - 1, m))
            for m, h in zip(sizes, hs)
        ]
        K = [_kron([(avg, dif)[a[j]][j] for j in range(d)], sparse=True) for a in spec.jet]
        x_eq = tensor_points([torch.from_numpy(0.5 * (x[1:] + x[:-1])) for x in axes])
        scheme = "box scheme (cell-centred, inflow data)"
    else:
        mats = [_fd_matrices(m, h) for m, h in zip(sizes, hs)]
        K = [_kron([mats[j][a[j]] for j in range(d)], sparse=True)[unk] for a in spec.jet]
        x_eq = None
        scheme = "central differences, one-sided on faces without data"
    disc = _Assembled(K, axes, keep, sparse=True, x_eq=x_eq)
    u, iters, ok, hist, info = _solve(spec, disc, axes, tol, max_iter)
    seconds = time.perf_counter() - t0
    interp = _Interpolant(u.reshape(sizes), [_spline_basis(x) for x in axes])
    info.update(faces=[list(f) for f in faces], note=note, scheme=scheme)
    if spec.exact is not None:
        ref = spec.exact(tensor_points([torch.from_numpy(x) for x in axes])).detach().numpy()
        info["nodal_rel_l2"] = float(np.linalg.norm(u - ref) / np.linalg.norm(ref))
    return _result("fd", spec, sizes, interp, seconds, iters, ok, hist, info, eval_grid, test_grid)


def fd_refinement(spec: PDESpec, sizes: Sequence[int], **kwargs) -> FDRefinement:
    """:func:`finite_differences` at each ``n`` in ``sizes``; the order is the least-squares slope of
    log(relative L2 error) against log h, h = L / (n - 1) on the first axis."""
    if spec.exact is None:
        raise ValueError(
            f"fd_refinement: {spec.name!r} has no exact solution to measure errors against"
        )
    sizes = [int(m) for m in sizes]
    if len(set(sizes)) < 2:
        raise ValueError(f"fd_refinement: need at least two distinct sizes, got {sizes}")
    results = tuple(finite_differences(spec, m, **kwargs) for m in sizes)
    h = np.array([spec.domain.lengths[0] / (m - 1) for m in sizes])
    err = np.array([r.rel_l2 for r in results])
    order = float(np.polyfit(np.log(h), np.log(err), 1)[0])
    return FDRefinement(tuple(zip(sizes, err.tolist())), order, results)


def _spline_basis(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    spline = make_interp_spline(x, np.eye(len(x)), k=3)
    return lambda t: spline(np.asarray(t, dtype=np.float64))


# ----------------------------------------------------------------------- shared discretisation
def _unknowns(keep: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """Flat (C-order) indices of the unknown nodes, the tensor product of ``keep``."""
    return np.ravel_multi_index(np.meshgrid(*keep, indexing="ij"), tuple(sizes)).reshape(-1)


def _keep(sizes, faces) -> list[np.ndarray]:
    keep = []
    for j, m in enumerate(sizes):
        drop = {0 if side == 0 else m - 1 for axis, side in faces if axis == j}
        keep.append(np.array([i for i in range(m) if i not in drop]))
    return keep


def _kron(mats, sparse: bool = False):
    out = mats[0]
    for m in mats[1:]:
        out = sp.kron(out, m, format="csr") if sparse else np.kron(out, m)
    return sp.csr_array(out) if sparse else out


class _Assembled:
    """Jet matrices ``K_k`` ``(N_eq, N_nodes)``; unknowns are the nodes in ``keep``; equations sit at
    ``x_eq`` (default: the unknown nodes)."""

    def __init__(self, K, nodes, keep, *, sparse: bool, x_eq=None):
        sizes = [len(x) for x in nodes]
        self.unk = _unknowns(keep, sizes)
        pts = tensor_points([torch.from_numpy(x) for x in nodes])
        self.x_eq = pts[self.unk] if x_eq is None else x_eq
        self.K, self.sparse = K, sparse
        self.Ku = [k[:, self.unk] for k in K]
        self.kind = "sparse LU (spsolve)" if sparse else "dense LU"

    def jet(self, u: np.ndarray) -> np.ndarray:
        return np.stack([k @ u for k in self.K], axis=1)

    def solve(self, c: np.ndarray, rhs: np.ndarray):
        if self.sparse:
            J = sum(sp.diags_array(c[:, k]) @ K for k, K in enumerate(self.Ku))
            return spla.spsolve(sp.csc_array(J), rhs), {}
        J = sum(c[:, k, None] * K for k, K in enumerate(self.Ku))
        return scipy.linalg.solve(J, rhs), {}


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


def _solve(spec: PDESpec, disc, nodes, tol, max_iter):
    """Lift the Dirichlet data, then one linear solve or Newton. Returns u on all nodes (flat)."""
    pts = tensor_points([torch.from_numpy(x) for x in nodes])
    known = np.setdiff1d(np.arange(pts.shape[0]), disc.unk)
    u = np.zeros(pts.shape[0])
    g = spec.boundary(pts[known]).to(F64).reshape(-1).numpy() if len(known) else np.zeros(0)
    _check_finite(f"{spec.name}: boundary data g on the faces", g)
    u[known] = g
    x = disc.x_eq
    f = spec.source(x).to(F64).reshape(-1).numpy()
    _check_finite(f"{spec.name}: source f at the collocation points", f)
    history: dict = {"update": [], "residual": []}
    fnorm = max(float(np.linalg.norm(f)), 1e-300)
    xt = x.to(F64)
    linear = spec.linear_parts(xt) if spec.is_linear else None

    def op_sum(j):
        return spec.operator(j, xt).sum()

    stopped, it, solvers = "max_iter", 0, []
    for it in range(1, (1 if linear else max_iter) + 1):  # noqa: B007
        jet = torch.from_numpy(disc.jet(u))
        if linear is not None:  # P = c . jet + c0
            c = linear[0].numpy()
            r = (jet.numpy() * c).sum(axis=1) + linear[1].numpy() - f
        else:
            r = (spec.operator(jet, xt) - torch.from_numpy(f)).numpy()
            c = torch.func.grad(op_sum)(jet).numpy()
        history["residual"].append(float(np.linalg.norm(r) / fnorm))
        try:
            delta, sinfo = disc.solve(c, -r)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            stopped = "singular"
            break
        if not np.all(np.isfinite(delta)):
            stopped = "singular"
            break
        solvers.append(sinfo.pop("solver", disc.kind))
        ok = sinfo.pop("ok", True)
        for key, v in sinfo.items():
            history.setdefault(key, []).append(v)
        u[disc.unk] += delta
        rel = float(np.linalg.norm(delta) / max(np.linalg.norm(u), 1e-300))
        history["update"].append(rel)
        if linear is not None:
            stopped = "direct" if ok else "inexact"
        elif rel <= tol:
            stopped = "tol"
            break
    converged = stopped in ("direct", "tol")
    info = {"stopped": stopped, "linear_solver": " + ".join(dict.fromkeys(solvers))}
    if linear is None:
        info["tol"] = tol
    if not converged:
        last = history["update"][-1] if history["update"] else float("nan")
        info["message"] = (
            f"{'solve' if linear is not None else 'Newton'} stopped ({stopped}) after {it} step(s) "
            f"at relative update {last:.2e}; try a finer grid, method='dense', a larger max_iter "
            "or a looser tol"
        )
    return u, it, converged, history, info


# -------------------------------------------------------------------------- evaluation, records
class _Interpolant:
    """Tensor-product interpolant ``u(x) = sum U[a, b] B0(x0)[a] B1(x1)[b]`` of nodal values."""

    def __init__(self, U: np.ndarray, bases):
        self.U, self.bases = U, bases

    def on_grid(self, axes: Sequence[np.ndarray]) -> np.ndarray:
        out = self.bases[0](axes[0]) @ self.U
        return out if len(axes) == 1 else out @ self.bases[1](axes[1]).T

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        p = points.detach().cpu().numpy()
        if p.shape[1] == 1:
            return torch.from_numpy(self.bases[0](p[:, 0]) @ self.U)
        out = np.empty(p.shape[0])
        for s in range(0, p.shape[0], 4096):
            q = p[s : s + 4096]
            out[s : s + 4096] = ((self.bases[0](q[:, 0]) @ self.U) * self.bases[1](q[:, 1])).sum(1)
        return torch.from_numpy(out)


def _test_axes(spec: PDESpec, sizes) -> list[np.ndarray]:
    return [a.numpy() for a in spec.domain.axes(sizes)]


def _errors(spec: PDESpec, values: np.ndarray, axes) -> tuple[float | None, float | None]:
    if spec.exact is None:
        return None, None
    pts = tensor_points([torch.from_numpy(a) for a in axes])
    ref = spec.exact(pts).detach().to(F64).reshape(values.shape).numpy()
    diff = values - ref
    return float(np.linalg.norm(diff) / np.linalg.norm(ref)), float(np.sqrt(np.mean(diff**2)))


def _result(method, spec, sizes, interp, seconds, iters, ok, hist, info, eval_grid, test_grid):
    d = spec.domain.dim
    test_sizes = _sizes(test_grid, d, "test_grid", 2)
    test_axes = _test_axes(spec, test_sizes)
    on_test = interp.on_grid(test_axes)
    rel, rms = _errors(spec, on_test, test_axes)
    eval_sizes = test_sizes if eval_grid is None else _sizes(eval_grid, d, "eval_grid", 2)
    values = on_test if eval_sizes == test_sizes else interp.on_grid(_test_axes(spec, eval_sizes))
    info.setdefault("test_grid", list(test_sizes))
    return BaselineResult(
        method=method,
        name=spec.name,
        grid=tuple(sizes),
        values=torch.from_numpy(values),
        eval_sizes=eval_sizes,
        rel_l2=rel,
        rms=rms,
        seconds=seconds,
        iterations=iters,
        converged=ok,
        history=hist,
        info=info,
        predictor=interp,
    )


# ------------------------------------------------------------------------------------ validation
def _sizes(v, d: int, what: str, minimum: int) -> tuple[int, ...]:
    vals = (v,) * d if isinstance(v, (int, np.integer)) else tuple(np.atleast_1d(np.asarray(v)))
    if len(vals) != d or not all(isinstance(m, (int, np.integer)) and m >= minimum for m in vals):
        raise ValueError(f"{what}: expected one int >= {minimum} or {d} of them, got {v!r}")
    return tuple(int(m) for m in vals)


def _check_finite(what: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: contains NaN or Inf; check the spec's functions on the box")


def _check_newton(tol, max_iter) -> None:
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol: expected a positive float, got {tol!r}")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter: expected an int >= 1, got {max_iter!r}")


def _check_spec(spec, n, who: str, minimum: int = 4):
    """Dimension, orders and grid size; returns ``(d, sizes, data faces, note)``."""
    if not isinstance(spec, PDESpec):
        raise ValueError(f"{who}: expected a PDESpec, got {type(spec).__name__}")
    d = spec.domain.dim
    if d > 2:
        raise ValueError(f"{who}: {spec.name!r} is {d}-d; supported are 1-d and 2-d boxes")
    top = max(sum(a) for a in spec.jet)
    if top == 0 or top > 2:
        raise ValueError(
            f"{who}: {spec.name!r} reads derivatives of order {top} (jet {spec.jet}); supported are "
            "operators of order at most 2"
        )
    sizes = _sizes(n, d, "n", minimum)
    if top == 2:
        return d, sizes, tuple(spec.boundary_faces), "Dirichlet data on spec.boundary_faces"
    faces = _inflow_faces(spec, who)
    note = (
        "first-order problem: Dirichlet data on the inflow faces only "
        f"{faces} (spec lists {list(spec.boundary_faces)})"
    )
    return d, sizes, faces, note


def _inflow_faces(spec: PDESpec, who: str) -> tuple[tuple[int, int], ...]:
    if not spec.is_linear:
        raise ValueError(
            f"{who}: {spec.name!r} is a nonlinear first-order problem; supported first-order "
            "problems are linear (inflow faces follow from the sign of the coefficients)"
        )
    d = spec.domain.dim
    x = spec.domain.grid_points(9)
    c, _ = spec.linear_parts(x)
    faces = []
    for j in range(d):
        e = tuple(int(i == j) for i in range(d))
        if e not in spec.jet:
            continue
        cj = c[:, spec.jet.index(e)]
        if bool((cj > 0).all()):
            faces.append((j, 0))
        elif bool((cj < 0).all()):
            faces.append((j, 1))
        elif bool((cj != 0).any()):
            raise ValueError(
                f"{who}: the coefficient of d/d{spec.domain.names[j]} in {spec.name!r} changes sign; "
                "supported first-order problems have one inflow face per axis"
            )
    missing = [f for f in faces if f not in spec.boundary_faces]
    if missing:
        raise ValueError(
            f"{who}: {spec.name!r} has no boundary data on inflow face(s) {missing} "
            f"(boundary_faces={list(spec.boundary_faces)})"
        )
    return tuple(faces)


# ------------------------------------------------------------------------------------------ PINN
class _MLP(torch.nn.Module):
    """tanh MLP ``(N, d) -> (N,)``: inputs scaled to [-1, 1], or random Fourier features
    ``[cos 2 pi x B, sin 2 pi x B]`` of the raw coordinates with ``B ~ N(0, sigma^2)`` (cycles per
    unit length, as GP-HM's frequencies)."""

    def __init__(self, lower, upper, width, depth, rff, generator):
        super().__init__()
        d = len(lower)
        self.register_buffer("lo", torch.tensor(lower, dtype=F64))
        self.register_buffer("hi", torch.tensor(upper, dtype=F64))
        if rff is None:
            self.register_buffer("B", None)
            n_in = d
        else:
            nf, sigma = rff
            self.register_buffer("B", sigma * torch.randn(d, nf, dtype=F64, generator=generator))
            n_in = 2 * nf
        layers = []
        for k in range(depth + 1):
            lin = torch.nn.Linear(n_in if k == 0 else width, width if k < depth else 1, dtype=F64)
            torch.nn.init.xavier_normal_(lin.weight, generator=generator)
            torch.nn.init.zeros_(lin.bias)
            layers += [lin, torch.nn.Tanh()] if k < depth else [lin]
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.B is None:
            z = 2 * (x - self.lo) / (self.hi - self.lo) - 1
        else:
            z = 2 * math.pi * x @ self.B
            z = torch.cat([torch.cos(z), torch.sin(z)], dim=1)
        return self.net(z).squeeze(-1)


def _net_jet(net, x: torch.Tensor, jet) -> torch.Tensor:
    """``D^alpha net`` at ``x`` by autograd, keeping the graph: ``(N, len(jet))``."""
    cache: dict = {}

    def deriv(alpha):
        if alpha not in cache:
            if sum(alpha) == 0:
                cache[alpha] = net(x)
            else:
                j = max(i for i, a in enumerate(alpha) if a > 0)
                prev = deriv(tuple(a - (i == j) for i, a in enumerate(alpha)))
                (g,) = torch.autograd.grad(prev.sum(), x, create_graph=True)
                cache[alpha] = g[:, j]
        return cache[alpha]

    return torch.stack([deriv(a) for a in jet], dim=1)


def pinn(
    spec: PDESpec,
    grid: int | Sequence[int],
    *,
    steps: int,
    lr: float = 1e-3,
    width: int = 100,
    depth: int = 4,
    boundary_weight: float = 200.0,
    seed: int = 0,
    rff: tuple[int, float] | None = None,
    eval_every: int | None = None,
    eval_grid: int | Sequence[int] | None = None,
    test_grid: int = TEST_GRID,
    device: str | torch.device = "cpu",
) -> BaselineResult:
    """Physics-informed network: a tanh MLP (``depth`` hidden layers of ``width``), float64, Adam.

    Loss: mean squared residual ``P(u) - f`` at all ``grid`` nodes per axis (the GP-HM collocation
    grid, boundary included) plus ``boundary_weight`` times the mean squared misfit at the nodes of
    ``spec.boundary_faces`` (corners twice, as GP-HM; for advection that is all four edges, the
    data GP-HM gets). Derivatives by autograd. Inputs are scaled to [-1, 1]; ``rff=(n_features,
    sigma)`` replaces that by fixed random Fourier features ``[cos 2 pi x B, sin 2 pi x B]`` of the raw
    coordinates, ``B ~ N(0, sigma^2)`` in cycles per unit length (GP-HM's unit for frequencies).
    The error on the test grid is recorded every ``eval_every`` (default ``steps // 20``) steps and
    at the end: ``rel_l2`` is the final one, ``info["oracle_min_error"]`` the minimum (selected with
    the exact solution). ``converged`` means all steps ran with a finite loss; on a non-finite loss
    training stops with the last finite parameters (``info["stopped"] == "non_finite"``).
    Thread count (``torch.set_num_threads``) is the caller's choice.
    """
    t0 = time.perf_counter()
    d, sizes, _, _ = _check_spec(spec, grid, "pinn", minimum=2)
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a finite positive float, got {lr!r}")
    if not (isinstance(boundary_weight, (int, float)) and 0 <= boundary_weight < math.inf):
        raise ValueError(f"boundary_weight: expected a finite float >= 0, got {boundary_weight!r}")
    for name, v in (("width", width), ("depth", depth)):
        if not (isinstance(v, int) and v >= 1):
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    if rff is not None and not (len(rff) == 2 and int(rff[0]) >= 1 and float(rff[1]) > 0):
        raise ValueError(f"rff: expected (n_features >= 1, sigma > 0), got {rff!r}")
    rff = None if rff is None else (int(rff[0]), float(rff[1]))
    every = int(eval_every or max(1, steps // 20))
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(int(seed))
    net = _MLP(spec.domain.lower, spec.domain.upper, width, depth, rff, gen).to(dev)
    axes = spec.domain.axes(sizes)
    X = tensor_points(axes)
    f = spec.source(X).to(F64).reshape(-1)
    _check_finite(f"{spec.name}: source f on the grid", f.numpy())
    flat = torch.arange(X.shape[0]).reshape(sizes)
    idx = torch.cat([flat.select(a, -1 if s else 0).reshape(-1) for a, s in spec.boundary_faces])
    g = spec.boundary(X[idx]).to(F64).reshape(-1)
    _check_finite(f"{spec.name}: boundary data g on the faces", g.numpy())
    X, f, g, Xb = X.to(dev), f.to(dev), g.to(dev), X[idx].to(dev)
    X.requires_grad_(True)
    test_sizes = _sizes(test_grid, d, "test_grid", 2)
    test_axes = _test_axes(spec, test_sizes)
    test_pts = tensor_points([torch.from_numpy(a) for a in test_axes]).to(dev)
    ref = None if spec.exact is None else spec.exact(test_pts.cpu()).detach().to(F64).reshape(-1)

    def evaluate():
        with torch.no_grad():
            pred = torch.cat([net(p) for p in test_pts.split(65536)]).cpu()
        return pred, None if ref is None else float(
            torch.linalg.norm(pred - ref) / torch.linalg.norm(ref)
        )

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history: dict = {"step": [], "loss": [], "eval_step": [], "error": []}
    stopped, step, last = "max_steps", 0, None
    while True:
        jet = _net_jet(net, X, spec.jet)
        res = spec.operator(jet, X) - f
        loss = (res**2).mean() + boundary_weight * ((net(Xb) - g) ** 2).mean()
        history["step"].append(step)
        history["loss"].append(float(loss.detach()))
        if not math.isfinite(history["loss"][-1]):
            stopped = "non_finite"
            if last is not None:  # back to the last parameters with a finite loss
                with torch.no_grad():
                    for p, q in zip(net.parameters(), last):
                        p.copy_(q)
            break
        if step % every == 0 or step == steps:
            history["eval_step"].append(step)
            history["error"].append(evaluate()[1])
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        last = [p.detach().clone() for p in net.parameters()]
        opt.step()
        step += 1
    seconds = time.perf_counter() - t0
    net.eval()
    errors = [e for e in history["error"] if e is not None]
    info = {
        "stopped": stopped,
        "final_error": errors[-1] if errors else None,
        "oracle_min_error": min(errors) if errors else None,
        "oracle_note": "oracle_min_error is the minimum over checkpoints, selected with the exact solution",
        "faces": [list(fc) for fc in spec.boundary_faces],
        "width": width,
        "depth": depth,
        "lr": lr,
        "boundary_weight": boundary_weight,
        "rff": None if rff is None else list(rff),
        "seed": int(seed),
        "device": str(dev),
        "parameters": sum(p.numel() for p in net.parameters()),
    }

    def predictor(points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(points.to(dev)).cpu()

    pred, _ = evaluate()
    on_test = pred.reshape(test_sizes).numpy()
    rel, rms = _errors(spec, on_test, test_axes)
    eval_sizes = test_sizes if eval_grid is None else _sizes(eval_grid, d, "eval_grid", 2)
    if eval_sizes == test_sizes:
        values = torch.from_numpy(on_test)
    else:
        values = predictor(spec.domain.grid_points(eval_sizes)).reshape(eval_sizes)
    info["test_grid"] = list(test_sizes)
    return BaselineResult(
        method="pinn",
        name=spec.name,
        grid=sizes,
        values=values,
        eval_sizes=eval_sizes,
        rel_l2=rel,
        rms=rms,
        seconds=seconds,
        iterations=step,
        converged=stopped == "max_steps",
        history=history,
        info=info,
        predictor=predictor,
    )
