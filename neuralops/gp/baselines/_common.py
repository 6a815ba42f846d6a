"""What the baselines share: the result records, the Dirichlet lift and linear / Newton solve on
an assembled discretisation, interpolation onto the test grid, the error measures and the checks of
their inputs (faces with data, grid sizes, tolerances)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from neuralops.gp.solution import validate_points
from neuralops.pde.spec import PDESpec, tensor_points

__all__ = ["BaselineResult", "FDRefinement", "TEST_GRID"]

F64 = torch.float64
#: uniform nodes per axis (end points included) of the test grid, as in GP-HM
TEST_GRID = 300


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
