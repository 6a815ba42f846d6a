"""Kernel collocation for :mod:`neuralops.gp.gauss_newton`: the functionals ``phi`` a PDE is
collocated with, the collocation points, the Gram matrix ``Theta = K(phi, phi)`` and the cross
matrices ``D^alpha_x K(x, phi)``, their factorisation, and the predictor
``D^alpha u(x) = D^alpha_x K(x, phi) Theta^{-1} z`` with its state round trip.

All arithmetic is float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from neuralops.pde.spec import PDESpec

from ._linalg import jittered_cholesky
from .kernels import (
    GaussianMixture1d,
    Matern1d,
    ProductKernel,
    SE1d,
    StudentTMixture1d,
)
from .solution import validate_points

if TYPE_CHECKING:
    from .gauss_newton import GaussNewtonConfig

__all__ = ["Functional", "GNPredictor", "theta_matrix", "cross_matrix"]

F64 = torch.float64
_CHUNK = 2**24  # kernel entries (rows x cols x components) evaluated at once


# ----------------------------------------------------------------------------------- functionals
@dataclass(frozen=True)
class Functional:
    """``sum_a c_a D^a`` evaluated at the interior (``where=0``) or boundary (``where=1``) points."""

    name: str
    terms: tuple[tuple[tuple[int, ...], float], ...]
    where: int = 0

    def order(self, d: int) -> tuple[int, ...]:
        return tuple(max(a[j] for a, _ in self.terms) for j in range(d))


def _label(alpha, names) -> str:
    return "u" + ("_" + "".join(n * k for n, k in zip(names, alpha)) if any(alpha) else "")


def _functionals(spec: PDESpec) -> tuple[list[Functional], list[tuple[int, ...]]]:
    """Functionals in solve order and the unknown jet entries at interior points."""
    d, names = spec.domain.dim, spec.domain.names
    zero = (0,) * d
    bdry = Functional("boundary", ((zero, 1.0),), 1)
    if spec.principal is not None:
        skip = set(spec.principal.indices)
        entries = [zero] + [a for a in spec.jet if a not in skip and a != zero]
        first = [Functional("principal", spec.principal.terms, 0)]
    else:
        entries, first = [zero] + [a for a in spec.jet if a != zero], []
    return first + [Functional(_label(a, names), ((a, 1.0),), 0) for a in entries] + [bdry], entries


def _check_orders(kernel: ProductKernel, functionals, names) -> None:
    d = kernel.dim
    for j, k in enumerate(kernel.factors):
        o = max(f.order(d)[j] for f in functionals)
        if 2 * o > k.max_order:
            raise ValueError(
                f"kernel: Gauss-Newton needs max_order >= {2 * o} on axis {names[j]!r} (twice the "
                f"order {o} applied to each kernel argument), but {type(k).__name__} has max_order "
                f"{k.max_order}; use a smoother kernel, e.g. SE1d, make_kernel('gm') or Matern1d(nu=2.5)"
            )


# ---------------------------------------------------------------------------- collocation points
def _collocation(spec: PDESpec, cfg: GaussNewtonConfig, interior, boundary):
    dom, d = spec.domain, spec.domain.dim
    sizes = [cfg.n_interior + 2] * d
    grid = dom.grid_points(sizes)
    if interior is None:
        interior = cfg.points
    if interior is None:
        interior = grid[~dom.face_mask(sizes, spec.boundary_faces).reshape(-1)]
    interior = validate_points(interior, d, "interior points")
    if boundary is None:
        if cfg.n_boundary is None or d == 1:
            if d == 1 and cfg.n_boundary not in (None, len(spec.boundary_faces)):
                raise ValueError(
                    f"n_boundary: a 1-d domain has {len(spec.boundary_faces)} boundary point(s), "
                    f"got {cfg.n_boundary}; leave it None"
                )
            boundary = grid[dom.face_mask(sizes, spec.boundary_faces).reshape(-1)]
        else:
            gen = torch.Generator().manual_seed(cfg.seed)
            boundary = dom.sample_boundary(cfg.n_boundary, spec.boundary_faces, gen)
    boundary = validate_points(boundary, d, "boundary points")
    return interior, boundary


# --------------------------------------------------------------------------------- Gram matrices
def _blocks(kernel: ProductKernel, xa, xb, alpha, terms_b) -> torch.Tensor:
    """``sum_b c_b D^alpha_x D^b_x' k(xa, xb)`` in row chunks (bounded memory)."""
    q = max(f.n_components for f in kernel.factors)
    rows = max(1, _CHUNK // max(1, xb.shape[0] * q))
    out = []
    for s in range(0, xa.shape[0], rows):
        xs = xa[s : s + rows]
        out.append(sum(c * kernel.block(xs, xb, alpha, b) for b, c in terms_b))
    return torch.cat(out, dim=0)


def theta_matrix(kernel: ProductKernel, functionals, interior, boundary) -> torch.Tensor:
    """``Theta = K(phi, phi)``, ``(M, M)``, ``M = sum`` of the functionals' point counts; the
    lower blocks are exact transposes of the upper ones and diagonal blocks are symmetrised."""
    pts = (interior, boundary)
    sizes = [pts[f.where].shape[0] for f in functionals]
    offs = [0]
    for s in sizes:
        offs.append(offs[-1] + s)
    theta = torch.empty(offs[-1], offs[-1], dtype=F64, device=interior.device)
    for i, fa in enumerate(functionals):
        for j in range(i, len(functionals)):
            fb = functionals[j]
            blk = sum(
                ca * _blocks(kernel, pts[fa.where], pts[fb.where], a, fb.terms)
                for a, ca in fa.terms
            )
            if i == j:
                blk = 0.5 * (blk + blk.T)
            theta[offs[i] : offs[i + 1], offs[j] : offs[j + 1]] = blk
            theta[offs[j] : offs[j + 1], offs[i] : offs[i + 1]] = blk.T
    return theta


def cross_matrix(kernel: ProductKernel, x, alpha, functionals, interior, boundary) -> torch.Tensor:
    """``D^alpha_x K(x, phi)``, ``(N, M)``: the row that maps ``Theta^{-1} z`` to predictions."""
    pts = (interior, boundary)
    return torch.cat([_blocks(kernel, x, pts[f.where], alpha, f.terms) for f in functionals], dim=1)


class _GridEval:
    """``D^alpha u`` on the tensor grid ``axes`` for any ``coef``: the product kernel factorises
    per axis, so the ``(prod n_j, M)`` cross matrix is never formed (per-axis tables + einsum)."""

    def __init__(self, kernel: ProductKernel, axes, alpha, functionals, interior, boundary):
        pts = (interior, boundary)
        self.tables, self.slices = [], []
        start = 0
        for fn in functionals:
            x = pts[fn.where]
            stop = start + x.shape[0]
            for beta, c in fn.terms:
                tabs = []
                for j, (k, ax) in enumerate(zip(kernel.factors, axes)):
                    t = k.deriv(ax[:, None] - x[None, :, j], alpha[j] + beta[j])
                    tabs.append(-t if beta[j] % 2 else t)
                self.tables.append((c, tabs))
                self.slices.append(slice(start, stop))
            start = stop
        d = len(axes)
        self.expr = (
            ",".join(f"{chr(97 + j)}z" for j in range(d))
            + ",z->"
            + "".join(chr(97 + j) for j in range(d))
        )

    def __call__(self, coef: torch.Tensor) -> torch.Tensor:
        out = sum(
            c * torch.einsum(self.expr, *tabs, coef[sl])
            for (c, tabs), sl in zip(self.tables, self.slices)
        )
        return out.reshape(-1)


# --------------------------------------------------------------------------------- factorisation
@dataclass
class _Factor:
    """``A ~ L L^T`` (Cholesky) or, when jitter escalation ran out, ``Q diag(s) Q^T`` with the
    eigenvalues clamped (finite, never NaN)."""

    jitter: float
    ok: bool
    L: torch.Tensor | None = None
    Q: torch.Tensor | None = None
    s: torch.Tensor | None = None

    def inverse(self, k: int) -> torch.Tensor:  # (A^{-1})[:k, :k]
        if self.L is not None:
            return torch.cholesky_inverse(self.L)[:k, :k]
        q = self.Q[:k]
        return (q / self.s) @ q.T

    def solve(self, b):  # A^{-1} b
        b2 = b[:, None] if b.ndim == 1 else b
        if self.L is not None:
            out = torch.cholesky_solve(b2, self.L)
        else:
            out = self.Q @ ((self.Q.T @ b2) / self.s[:, None])
        return out[:, 0] if b.ndim == 1 else out


def _factor(A, jitter, scale, max_escalations, what) -> _Factor:
    ch = jittered_cholesky(A, jitter, diag_scale=scale, max_escalations=max_escalations, what=what)
    if ch.ok:
        return _Factor(ch.jitter, True, L=ch.L)
    Aj = A + torch.diag(ch.jitter * scale)
    s, Q = torch.linalg.eigh(0.5 * (Aj + Aj.T))
    floor = max(float(s.abs().max()) * 1e-13, 1e-300)
    return _Factor(ch.jitter, False, Q=Q, s=s.clamp_min(floor))


# ------------------------------------------------------------------------------------- predictor
_KIND = {GaussianMixture1d: 0, StudentTMixture1d: 1, SE1d: 2, Matern1d: 3}


class GNPredictor:
    """``D^alpha u(x) = D^alpha_x K(x, phi) coef`` with ``coef = Theta^{-1} z`` ``(M,)``."""

    def __init__(
        self, kernel: ProductKernel, functionals, interior, boundary, coef, config_points=None
    ):
        self.kernel = kernel
        self.config_points = config_points
        self.functionals = list(functionals)
        self.interior, self.boundary, self.coef = interior, boundary, coef
        self.dim = interior.shape[1]
        self._order = tuple(
            max(f.order(self.dim)[j] for f in self.functionals) for j in range(self.dim)
        )

    def __call__(self, points: torch.Tensor, derivative: tuple[int, ...]) -> torch.Tensor:
        """``points`` ``(N, d)`` float64 -> ``D^derivative u`` ``(N,)`` float64."""
        for j, (a, k) in enumerate(zip(derivative, self.kernel.factors)):
            if a + self._order[j] > k.max_order:
                raise ValueError(
                    f"derivative: order {a} on axis {j} needs kernel max_order >= "
                    f"{a + self._order[j]}, the kernel has {k.max_order}"
                )
        dev = self.coef.device
        x = points.to(dev, F64)
        rows = max(1, _CHUNK // max(1, self.coef.numel()))
        out = [
            cross_matrix(
                self.kernel,
                x[s : s + rows],
                derivative,
                self.functionals,
                self.interior,
                self.boundary,
            )
            @ self.coef
            for s in range(0, x.shape[0], rows)
        ]
        return torch.cat(out).cpu() if out else torch.zeros(0, dtype=F64)

    def state(self) -> dict[str, torch.Tensor]:
        d = self.dim
        terms = [
            [float(i), float(f.where), c, *map(float, a)]
            for i, f in enumerate(self.functionals)
            for a, c in f.terms
        ]
        out = {
            "interior": self.interior,
            "boundary": self.boundary,
            "coef": self.coef,
            "functionals": torch.tensor(terms, dtype=F64).reshape(-1, 3 + d),
        }
        if self.config_points is not None:
            out["config.points"] = self.config_points
        for j, k in enumerate(self.kernel.factors):
            out[f"kernel.{j}.kind"] = torch.tensor(float(_KIND[type(k)]), dtype=F64)
            out[f"kernel.{j}.nu"] = torch.tensor(getattr(k, "nu", 0.0), dtype=F64)
            for p in ("log_weight", "log_inv_ls", "mu"):
                out[f"kernel.{j}.{p}"] = getattr(k, p).detach()
        return {k: v.detach().cpu().clone() for k, v in out.items()}  # no shared storage

    def __repr__(self) -> str:
        names = ", ".join(f.name for f in self.functionals)
        return f"GNPredictor(dim={self.dim}, M={self.coef.numel()}, functionals=[{names}])"


def _rebuild_kernel(state: dict, d: int) -> ProductKernel:
    factors = []
    for j in range(d):
        kind, nu = int(state[f"kernel.{j}.kind"]), float(state[f"kernel.{j}.nu"])
        lw, ll, mu = (state[f"kernel.{j}.{p}"] for p in ("log_weight", "log_inv_ls", "mu"))
        if kind == 2:
            k = SE1d()
        elif kind == 3:
            k = Matern1d(nu=nu)
        elif kind == 0:
            k = GaussianMixture1d(lw.numel(), 0.0, 0.0, 0.0)
        else:
            k = StudentTMixture1d(lw.numel(), 0.0, 0.0, 0.0, nu=nu)
        with torch.no_grad():
            k.log_weight.copy_(lw)
            k.log_inv_ls.copy_(ll)
            k.mu.copy_(mu)
        factors.append(k)
    return ProductKernel(factors)


def _predictor_from_state(state: dict) -> GNPredictor:
    """Rebuild a :class:`GNPredictor` from :meth:`GNPredictor.state` (the inverse of it)."""
    need = {"interior", "boundary", "coef", "functionals"}
    if not need <= set(state):
        raise ValueError(f"GN state: missing keys {sorted(need - set(state))}")
    # fresh (aligned) storage: BLAS results can differ in the last bit with the data's alignment
    state = {k: v.to(F64).clone() for k, v in state.items()}
    d = state["interior"].shape[1]
    kernel = _rebuild_kernel(state, d)
    functionals: dict[int, list] = {}
    where = {}
    for row in state["functionals"].tolist():
        i, w, c, alpha = int(row[0]), int(row[1]), row[2], tuple(int(v) for v in row[3:])
        functionals.setdefault(i, []).append((alpha, c))
        where[i] = w
    names = "xyzw" if d <= 4 else [f"x{j}" for j in range(d)]

    def name(i):
        terms = functionals[i]
        if where[i]:
            return "boundary"
        return _label(terms[0][0], names) if len(terms) == 1 and terms[0][1] == 1 else "principal"

    funcs = [Functional(name(i), tuple(functionals[i]), where[i]) for i in sorted(functionals)]
    pts = state.get("config.points")
    return GNPredictor(kernel, funcs, state["interior"], state["boundary"], state["coef"], pts)
