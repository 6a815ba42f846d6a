"""Gauss-Newton kernel collocation for pointwise nonlinear PDEs (Chen, Hosseini, Owhadi, Stuart,
"Solving and learning nonlinear PDEs with Gaussian processes", JCP 447 (2021), arXiv 2103.12959).

The solution is the minimum-norm function of the kernel's RKHS that satisfies the PDE at the
collocation points. With the functionals ``phi`` (values at interior and boundary points, and
derivative combinations at interior points) and ``Theta = K(phi, phi)``, it is
``u(x) = K(x, phi) Theta^{-1} z`` where ``z`` minimises ``z^T Theta^{-1} z`` subject to the PDE.

Two paths, chosen by ``spec.principal``:

- **elimination** (principal set): the principal combination ``L u = sum_a c_a D^a u`` is
  eliminated, ``L u = f - R(other jet entries)``; the unknowns are the interior values and the
  other non-principal jet entries, ``w`` ``(N, n_u)``. Gauss-Newton on ``J(w) = z(w)^T Theta^{-1} z(w)``.
- **linearised constraint** (no principal): ``z_{k+1} = Theta G^T (G Theta G^T)^{-1} (y - F(z_k) + G z_k)``
  with ``G = DF(z_k)``, over all functional values ``z``.

All arithmetic is float64; ``Theta`` gets the adaptive nugget ``eta * blockdiag(r_b I)``,
``r_b = tr Theta_bb / tr Theta_vv`` (``v``: all value functionals, interior and boundary).
Functionals, Gram and cross matrices and the predictor: :mod:`neuralops.gp.collocation`.

>>> import math, torch
>>> from neuralops.pde.spec import BoxDomain, nonlinear_elliptic
>>> spec = nonlinear_elliptic(BoxDomain((0.0,), (1.0,)), exact=lambda x: torch.sin(math.pi * x[:, 0]))
>>> sol = fit_gauss_newton(spec, GaussNewtonConfig(n_interior=20))
>>> sol.converged, sol.info["final_error"] < 1e-4
(True, True)
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from dataclasses import dataclass, field, fields

import torch

from neuralops.pde.spec import PDESpec

from ._linalg import check_finite
from .collocation import (
    Functional,
    GNPredictor,
    _check_orders,
    _collocation,
    _factor,
    _functionals,
    _GridEval,
    _label,
    _predictor_from_state,
    cross_matrix,
    theta_matrix,
)
from .kernels import KERNELS, AbstractKernel1d, ProductKernel, SE1d, make_kernel
from .solution import GPSolution

__all__ = [
    "GaussNewtonConfig",
    "Functional",
    "GNPredictor",
    "fit_gauss_newton",
    "theta_matrix",
    "cross_matrix",
    "restore",
]

log = logging.getLogger(__name__)
F64 = torch.float64
#: above this many functionals the dense O(M^3) solve gets slow: warn
MAX_FUNCTIONALS = 8000
#: stop when |J_{k-1} - J_k| <= STALL_RTOL * J_k (a rounding-level change)
STALL_RTOL = 1e-13


# ---------------------------------------------------------------------------------------- config
@dataclass(frozen=True, eq=False)
class GaussNewtonConfig:
    """Settings of :func:`fit_gauss_newton` (frozen; JSON through ``config_to_dict``).

    kernel: a 1-D kernel (the same on every axis), a :class:`ProductKernel` (one per axis) or a
    name of :data:`KERNELS`; GN needs ``max_order >= 2 x`` the derivative order on each axis.
    points: explicit interior collocation points ``(N, d)`` (kept in the saved state, not the
    JSON), or None for the uniform grid of ``n_interior + 2`` nodes per axis (end points
    included) less its nodes on the Dirichlet faces: ``n_interior`` per axis strictly inside, plus
    the nodes of faces without data (e.g. ``t = 1``), where the PDE still holds.
    n_boundary: None for the nodes of that grid on the Dirichlet faces, or a number of random
    boundary points (drawn with ``seed``; 2-D and up).
    nugget: ``eta`` of the nugget ``eta * diag(r)``; ``nugget_scaling`` "adaptive" (``r`` per
    functional block, as the reference) or "identity" (``r = 1``). Jitter escalates x10 at most
    ``max_escalations`` times. Stop at ``||delta|| <= tol (1 + ||w||)``, a J stall, or ``max_iter``.
    init: "random" (``N(0, 1)``, ``seed``) or "zeros". dtype must be float64.
    """

    kernel: object = field(default_factory=lambda: SE1d(lengthscale=0.2))
    points: torch.Tensor | None = None
    n_interior: int = 20
    n_boundary: int | None = None
    nugget: float = 1e-10
    nugget_scaling: str = "adaptive"
    max_iter: int = 20
    tol: float = 1e-10
    init: str = "random"
    seed: int = 0
    max_escalations: int = 4
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self):
        def bad(name, expected, got):
            raise ValueError(f"GaussNewtonConfig.{name}: expected {expected}, got {got!r}")

        k = self.kernel
        if isinstance(k, str):
            if k not in KERNELS:
                bad("kernel", f"a 1-D kernel, a ProductKernel or one of {KERNELS}", k)
        elif not isinstance(k, (AbstractKernel1d, ProductKernel)):
            bad("kernel", f"a 1-D kernel, a ProductKernel or one of {KERNELS}", type(k).__name__)
        if self.points is not None:
            p = torch.as_tensor(self.points)
            if p.ndim == 1:
                p = p[:, None]
            if p.ndim != 2 or p.shape[0] < 1:
                bad("points", "a tensor of shape (N, d) or None", tuple(p.shape))
            p = p.detach().to("cpu", F64).clone()
            if not bool(torch.isfinite(p).all()):
                bad("points", "finite coordinates", "NaN/Inf entries")
            object.__setattr__(self, "points", p)
        for name, lo in (("n_interior", 1), ("max_iter", 1), ("max_escalations", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                bad(name, f"an int >= {lo}", v)
        nb = self.n_boundary
        if nb is not None and (isinstance(nb, bool) or not isinstance(nb, int) or nb < 1):
            bad("n_boundary", "None or an int >= 1", nb)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            bad("seed", "an int", self.seed)
        for name in ("nugget", "tol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < math.inf):
                bad(name, "a finite float >= 0", v)
            object.__setattr__(self, name, float(v))
        if self.nugget_scaling not in ("adaptive", "identity"):
            bad("nugget_scaling", "'adaptive' or 'identity'", self.nugget_scaling)
        if self.init not in ("random", "zeros"):
            bad("init", "'random' or 'zeros'", self.init)
        dt = self.dtype
        if dt not in ("float64", torch.float64):
            bad("dtype", "float64 (Gauss-Newton collocation runs in float64 only)", str(dt))
        object.__setattr__(self, "dtype", "float64")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            bad("device", "a torch device string such as 'cpu' or 'cuda'", self.device)

    def __repr__(self) -> str:
        pts = "grid" if self.points is None else f"tensor{tuple(self.points.shape)}"
        kern = self.kernel if isinstance(self.kernel, str) else type(self.kernel).__name__
        return (
            f"GaussNewtonConfig(kernel={kern}, points={pts}, n_interior={self.n_interior}, "
            f"nugget={self.nugget:g}, max_iter={self.max_iter}, tol={self.tol:g}, init={self.init!r})"
        )


# --------------------------------------------------------------------------------------- restore
def restore(config_dict: dict, state: dict) -> tuple[GaussNewtonConfig, GNPredictor]:
    """Rebuild ``(config, predictor)`` from :meth:`GPSolution.save`'s JSON config and state."""
    names = {f.name for f in fields(GaussNewtonConfig)}
    missing, unexpected = sorted(names - set(config_dict)), sorted(set(config_dict) - names)
    if missing or unexpected:
        raise ValueError(f"GN config: missing keys {missing}, unexpected keys {unexpected}")
    pred = _predictor_from_state(state)
    kw = dict(config_dict)
    k = kw["kernel"]
    if not isinstance(k, str):
        kernel = pred.kernel
        kw["kernel"] = kernel if k.get("module") == "ProductKernel" else kernel.factors[0]
    kw["points"] = pred.config_points
    return GaussNewtonConfig(**kw), pred


# ---------------------------------------------------------------------------------------- solver
def _product_kernel(kernel, d: int) -> ProductKernel:
    if isinstance(kernel, str):
        kernel = make_kernel(kernel)
    if isinstance(kernel, ProductKernel):
        if kernel.dim != d:
            raise ValueError(
                f"kernel: the ProductKernel has {kernel.dim} factors, the domain is {d}-d"
            )
        return copy.deepcopy(kernel)
    return ProductKernel([copy.deepcopy(kernel) for _ in range(d)])


def _field(fn, x, name) -> torch.Tensor:
    v = torch.as_tensor(fn(x)).to(F64).reshape(-1)
    if v.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: expected {x.shape[0]} values, got shape {tuple(v.shape)}")
    check_finite(name, v)
    return v


def _test_grid(spec: PDESpec, per_axis: int | None = None):
    """``(axes, points, description)`` of the uniform error grid (end points included)."""
    d = spec.domain.dim
    n = per_axis or {1: 300, 2: 100, 3: 30}.get(d, 10)
    desc = f"uniform grid, {n} points per axis, boundary included"
    return spec.domain.axes([n] * d), spec.domain.grid_points([n] * d), desc


def fit_gauss_newton(
    spec: PDESpec,
    config: GaussNewtonConfig | None = None,
    *,
    interior: torch.Tensor | None = None,
    boundary: torch.Tensor | None = None,
) -> GPSolution:
    """Solve ``spec`` by kernel collocation with Gauss-Newton; never raises on non-convergence.

    interior ``(N, d)`` / boundary ``(N_b, d)`` override the config's collocation points. The
    returned :class:`GPSolution` predicts ``(N, d) -> (N,)`` float64; ``info['stopped']`` says why
    the iteration ended, ``info['final_error']`` (relative L2) and ``info['rms_error']`` compare
    with ``spec.exact`` on ``info['error_grid']`` when it is set.
    """
    cfg = config or GaussNewtonConfig()
    t0 = time.perf_counter()
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"GaussNewtonConfig.device: expected an available device, got {cfg.device!r}"
        )
    d, names = spec.domain.dim, spec.domain.names
    kernel = _product_kernel(cfg.kernel, d).to(dev)
    xi, xb = _collocation(spec, cfg, interior, boundary)
    f = _field(spec.source, xi, "source")
    g = _field(spec.boundary, xb, "boundary")
    functionals, entries = _functionals(spec)
    _check_orders(kernel, functionals, names)
    xi, xb, f, g = (t.to(dev) for t in (xi, xb, f, g))
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        out = _run(spec, cfg, kernel, functionals, entries, xi, xb, f, g)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    pred, info, history, iterations, converged = out
    info["warnings"] = [str(w.message) for w in caught]
    info["device"] = str(dev)
    if spec.exact is not None:
        axes, xt, desc = _test_grid(spec)
        ref = spec.exact(xt).detach().to(F64).reshape(-1)
        with torch.no_grad():
            axes = [a.to(dev) for a in axes]
            ev = _GridEval(
                pred.kernel, axes, (0,) * d, pred.functionals, pred.interior, pred.boundary
            )
            err = ev(pred.coef).cpu() - ref
        info["final_error"] = float(err.norm() / ref.norm().clamp_min(1e-300))
        info["rms_error"] = float(err.pow(2).mean().sqrt())
        info["error_grid"] = desc
        finite = [e for e in history.get("test_error", []) if math.isfinite(e)]
        info["oracle_min_error"] = min(finite) if finite else float("nan")
    else:
        info.update(final_error=float("nan"), rms_error=float("nan"), oracle_min_error=float("nan"))
    return GPSolution(
        method="gn",
        config=cfg,
        predictor=pred,
        kernel_params=kernel.describe(),
        history=history,
        converged=converged,
        iterations=iterations,
        seconds=time.perf_counter() - t0,
        info=info,
        name=spec.name,
    )


def _run(spec, cfg, kernel, functionals, entries, xi, xb, f, g):
    n, d = xi.shape[0], xi.shape[1]
    dev = xi.device
    sizes = [(xi if fn.where == 0 else xb).shape[0] for fn in functionals]
    m = sum(sizes)
    if m > MAX_FUNCTIONALS:
        warnings.warn(
            f"Gauss-Newton: {m} functionals (> {MAX_FUNCTIONALS}); the dense O(M^3) solve will be "
            "slow and memory-hungry; use fewer collocation points",
            UserWarning,
            stacklevel=3,
        )
    theta = theta_matrix(kernel, functionals, xi, xb)
    check_finite("Theta (kernel Gram matrix)", theta)
    diag = theta.diagonal()
    value = [i for i, fn in enumerate(functionals) if fn.terms == (((0,) * d, 1.0),)]
    offs = torch.tensor([0] + sizes).cumsum(0).tolist()
    ratio = []
    tr_v = sum(float(diag[offs[i] : offs[i + 1]].sum()) for i in value)
    for i in range(len(functionals)):
        r = 1.0
        if cfg.nugget_scaling == "adaptive" and i not in value:
            r = float(diag[offs[i] : offs[i + 1]].sum()) / tr_v
        ratio.append(r)
    scale = torch.cat([torch.full((s,), r, dtype=F64, device=dev) for s, r in zip(sizes, ratio)])
    fac = _factor(theta, cfg.nugget, scale, cfg.max_escalations, "Gauss-Newton Theta")
    gen = torch.Generator().manual_seed(cfg.seed)
    exact_i = spec.exact(xi.cpu()).detach().to(F64).reshape(-1).to(dev) if spec.exact else None
    test = ref_test = None
    if spec.exact is not None:
        axes, xt, _ = _test_grid(spec, {1: 100, 2: 30}.get(d, 6))
        ref_test = spec.exact(xt).detach().to(F64).reshape(-1).to(dev)
        test = _GridEval(kernel, [a.to(dev) for a in axes], (0,) * d, functionals, xi, xb)
    history = {"J": [], "step_norm": [], "nugget": [], "error": [], "test_error": []}

    def record(J, step, values, coef):
        history["J"].append(float(J))
        history["step_norm"].append(float(step))
        history["nugget"].append(fac.jitter)
        if exact_i is not None:
            history["error"].append(float((values - exact_i).norm() / exact_i.norm()))
            history["test_error"].append(float((test(coef) - ref_test).norm() / ref_test.norm()))

    if spec.principal is not None:
        loop = _eliminate(spec, cfg, fac, entries, xi, f, g, gen, record)
    else:
        loop = _linearised(spec, cfg, fac, theta, scale, entries, xi, f, g, gen, record)
    coef, iterations, stopped, detail, extra = loop
    converged = stopped == "tol"
    if not (fac.ok and extra.get("constraint_ok", True)):
        stopped, converged = "ill_conditioned", False
    if stopped == "non_finite":
        warnings.warn(
            "Gauss-Newton: non-finite J or iterate; kept the last finite state (try init='zeros', "
            "a larger nugget or a smoother kernel)",
            RuntimeWarning,
            stacklevel=3,
        )
    info = {
        "path": "elimination" if spec.principal is not None else "linearised",
        "stopped": stopped,
        "stop_detail": detail,
        "jitter": fac.jitter,
        "nugget": cfg.nugget,
        "nugget_ratio": {fn.name: r for fn, r in zip(functionals, ratio)},
        "functionals": [fn.name for fn in functionals],
        "n_functionals": m,
        "n_interior": n,
        "n_boundary": xb.shape[0],
        **extra,
    }
    if history["J"]:
        info["final_J"] = history["J"][-1]
    if not history["error"]:
        del history["error"], history["test_error"]
    pred = GNPredictor(kernel, functionals, xi, xb, coef, cfg.points)
    return pred, info, history, iterations, converged


def _init(cfg, shape, gen, dev):
    if cfg.init == "zeros":
        return torch.zeros(shape, dtype=F64, device=dev)
    return torch.randn(shape, dtype=F64, generator=gen).to(dev)


def _jet_partials(op, jet, x):
    """Values and pointwise partials ``dP_i / d jet_{i,k}`` ``(N, K)`` (one reverse pass: P is
    pointwise, so the gradient of ``sum_i P_i`` holds exactly the diagonal of the Jacobian)."""
    out, vjp = torch.func.vjp(lambda j: op(j, x).to(F64), jet)
    return out, vjp(torch.ones_like(out))[0]


def _stop(step, wnorm, J_prev, J, it, cfg):
    if step <= cfg.tol * (1.0 + wnorm):
        return "tol", "step"
    if J_prev is not None and abs(J_prev - J) <= STALL_RTOL * abs(J):
        return "tol", "J_stall"
    if it >= cfg.max_iter:
        return "max_steps", "max_iter"
    return None, None


def _eliminate(spec, cfg, fac, entries, xi, f, g, gen, record):
    """GN on the unknowns ``w`` ``(N, n_u)`` with the principal combination eliminated."""
    n, nu, dev = xi.shape[0], len(entries), xi.device
    cols = [entries.index(a) if a in entries else -1 for a in spec.jet]
    principal = set(spec.principal.indices)

    def residual(w):  # R(other entries): the operator with the principal entries set to 0
        zero = torch.zeros(n, dtype=F64, device=dev)
        jet = [zero if (a in principal or c < 0) else w[:, c] for a, c in zip(spec.jet, cols)]
        return spec.operator(torch.stack(jet, dim=1), xi)

    def zvec(w):
        r, dr = _jet_partials(lambda j, _: residual(j), w, None)
        return torch.cat([f - r, w.T.reshape(-1), g]), -dr  # a_k = dz_L / dw_k

    k = (1 + nu) * n
    gm = fac.inverse(k)  # (Theta^{-1})[:k, :k]: J's Gauss-Newton Hessian is built from it
    gm = 0.5 * (gm + gm.T)
    d_tile, b_tile, c_blk = gm[:n, :n].repeat(nu, nu), gm[:n, n:].repeat(nu, 1), gm[n:, n:]
    w = _init(cfg, (n, nu), gen, dev)
    z, a = zvec(w)
    coef = fac.solve(z)
    J_prev = float(z @ coef)
    extra = {
        "J0": J_prev,
        "n_unknowns": n * nu,
        "unknowns": [_label(e, spec.domain.names) for e in entries],
    }
    if not math.isfinite(J_prev):  # no finite state to keep: predict u = 0
        return torch.zeros_like(coef), 0, "non_finite", "initial iterate", extra
    it, stopped, detail = 0, None, None
    while stopped is None:
        it += 1
        # Jac = [diag(a_0) .. diag(a_{nu-1}); I] on the first k functionals, H = Jac^T gm Jac
        af = a.T.reshape(-1)
        grad = af * coef[:n].repeat(nu) + coef[n:k]
        bt = af[:, None] * b_tile
        H = torch.outer(af, af).mul_(d_tile).add_(c_blk).add_(bt).add_(bt.T)
        del bt
        L, bad = torch.linalg.cholesky_ex(H)
        if int(bad) == 0:
            delta = torch.cholesky_solve(grad[:, None], L)[:, 0]
        else:
            delta = torch.linalg.lstsq(H, grad[:, None]).solution[:, 0]
        w_new = w - delta.reshape(nu, n).T
        z_new, a_new = zvec(w_new)
        coef_new = fac.solve(z_new)
        J = float(z_new @ coef_new)
        step = float(delta.norm())
        if not (math.isfinite(J) and bool(torch.isfinite(coef_new).all())):
            stopped, detail = "non_finite", f"iteration {it}"
            it -= 1
            break
        w, z, a, coef = w_new, z_new, a_new, coef_new
        record(J, step, w[:, 0], coef)
        stopped, detail = _stop(step, float(w.norm()), J_prev, J, it, cfg)
        J_prev = J
    return coef, it, stopped, detail, extra


def _linearised(spec, cfg, fac, theta, scale, entries, xi, f, g, gen, record):
    """``z_{k+1} = Theta G^T (G Theta G^T)^{-1} (y - F(z_k) + G z_k)`` over all functional values."""
    n, ne, nb, dev = xi.shape[0], len(entries), g.shape[0], xi.device
    cols = [entries.index(a) for a in spec.jet]
    th = theta + torch.diag(fac.jitter * scale)
    y = torch.cat([f, g])
    k = ne * n
    z = _init(cfg, (k + nb,), gen, dev)
    coef = fac.solve(z)
    J_prev = float(z @ coef)
    extra = {"J0": J_prev, "n_unknowns": k + nb, "constraint_jitter": 0.0}
    if not math.isfinite(J_prev):
        return torch.zeros_like(coef), 0, "non_finite", "initial iterate", extra
    it, stopped, detail = 0, None, None
    while stopped is None:
        it += 1
        zi = z[:k].reshape(ne, n).T  # (n, ne)
        p, dp = _jet_partials(spec.operator, zi[:, cols], xi)
        gi = torch.zeros(n, ne, dtype=F64, device=dev)
        gi.index_add_(1, torch.tensor(cols, device=dev), dp)
        Fz = torch.cat([p, z[k:]])
        Gz = torch.cat([(gi * zi).sum(1), z[k:]])
        # T = Theta G^T (m, n + nb), then A = G T
        T = torch.cat([(th[:, :k].reshape(-1, ne, n) * gi.T[None]).sum(1), th[:, k:]], dim=1)
        A = torch.cat([(T[:k].reshape(ne, n, -1) * gi.T[:, :, None]).sum(0), T[k:]], dim=0)
        A = 0.5 * (A + A.T)
        facA = _factor(A, 0.0, torch.ones_like(A[0]), cfg.max_escalations, "G Theta G^T")
        extra["constraint_jitter"] = max(extra["constraint_jitter"], facA.jitter)
        extra["constraint_ok"] = extra.get("constraint_ok", True) and facA.ok
        z_new = T @ facA.solve(y - Fz + Gz)
        coef_new = fac.solve(z_new)
        J = float(z_new @ coef_new)
        step = float((z_new - z).norm())
        if not (math.isfinite(J) and bool(torch.isfinite(z_new).all())):
            stopped, detail = "non_finite", f"iteration {it}"
            it -= 1
            break
        z, coef = z_new, coef_new
        record(J, step, z[:n], coef)
        stopped, detail = _stop(step, float(z.norm()), J_prev, J, it, cfg)
        J_prev = J
    return coef, it, stopped, detail, extra
