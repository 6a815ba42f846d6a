"""GP-HM: spectral-mixture Gaussian processes on a Kronecker grid (Fang et al., ICLR 2024).

The latent grid values ``U`` (``M_1 x ... x M_d``) have the prior ``vec U ~ N(0, kron_j C_j)``,
``C_j = K_j + eps I``. Derivatives act on the conditional mean: on the grid, order ``n`` along axis
``j`` is the mode product with ``K_j^{(n)} C_j^{-1}`` (order 0 is ``U`` itself, as in the reference
code). The objective, minimised jointly over ``U``, the kernel parameters and ``log tau_1/2`` by
Adam, is ``-L`` with

    L = log N(vec U | 0, C) + lambda_b log N(g | B(U), 1/tau_1) + log N(0 | H(U), 1/tau_2),

``B(U)`` the boundary values (faces concatenated, corners counted once per face) and ``H`` the PDE
residual ``P(u) - f`` at all grid points (``residual_points="interior"`` restricts it).
Shapes: points are ``(N, d)`` float64; fields on the grid are ``(M_1, ..., M_d)``.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from neuralops.gp._hm_field import HMPredictor, _eye_chols, _GridGP, _predictor_from
from neuralops.gp._hm_polish import POLISH_MAX_POINTS, check_polish, polish
from neuralops.gp._linalg import GPConditioningWarning, check_finite
from neuralops.gp.kernels import (
    KERNELS,
    AbstractKernel1d,
    GaussianMixture1d,
    Matern1d,
    StudentTMixture1d,
    make_kernel,
)
from neuralops.gp.kron import (
    kron_logdet,
    kron_quadform,
)
from neuralops.gp.solution import GPSolution
from neuralops.pde.spec import PDESpec, tensor_points

__all__ = ["GPHMConfig", "HMPredictor", "fit_hm", "restore", "POLISH_MAX_POINTS"]

F64 = torch.float64


@dataclass(frozen=True)
class GPHMConfig:
    """GP-HM settings; defaults are the reference's except ``grid`` and ``steps`` (see gp.md §3, §7).

    kernel: ``"stm"``, ``"gm"``, ``"se"``, ``"matern"`` or a 1-D kernel object (copied per axis).
    grid: points per axis (int or one per axis), end points included. freq_scale: ``F`` in
    ``mu = linspace(0, F, Q)`` (cycles per unit length; one value or one per axis).
    residual_points: ``"all"`` grid points (reference) or ``"interior"``.
    eval_every: steps between evaluations on an ``eval_grid``-per-axis test grid (default steps/20).
    extra_gp / change_point: after ``change_point * steps`` freeze the mixture GP and add a
    Matern-5/2 GP with its own latent values. polish: finish by minimising the objective exactly in
    the (last) GP's latent values with kernel and tau frozen: one solve for a linear PDE,
    Gauss-Newton for a nonlinear one; at most :data:`POLISH_MAX_POINTS` grid points. tol: stop early when the relative PDE
    residual on the grid falls below it (0 disables). keep: ``"last"`` returns Adam's last iterate;
    ``"best_residual"`` the checkpoint (or last iterate) with the smallest PDE residual at the cell
    midpoints plus boundary misfit, a selection that needs no exact solution (Adam's error is
    non-monotone). history["midpoint_residual"] records that residual at every checkpoint.
    """

    kernel: object = "stm"
    nu: float = 2.5
    grid: object = 200
    n_components: int = 30
    freq_scale: object = 20.0
    boundary_weight: float = 200.0
    steps: int = 10_000
    lr: float = 1e-2
    seed: int = 0
    jitter: float = 1e-6
    logdet: bool = True
    residual_points: str = "all"
    learn_kernel: bool = True
    learn_tau: bool = True
    tau_init: tuple = (1.0, 1.0)
    eval_every: int | None = None
    eval_grid: int = 300
    extra_gp: bool = False
    change_point: float = 0.5
    polish: bool = False
    keep: str = "last"
    tol: float = 0.0
    residual_tol: float = 1e-3
    toeplitz: bool = True
    device: str = "cpu"
    dtype: str = "float64"
    max_jitter_escalations: int = 4

    def __post_init__(self):
        def bad(name, expected):
            raise ValueError(f"GPHMConfig.{name}: expected {expected}, got {getattr(self, name)!r}")

        if self.dtype not in ("float64", "torch.float64") and self.dtype is not F64:
            bad("dtype", "float64 (GP solves need double precision; float32 is not supported)")
        if isinstance(self.kernel, str):
            if self.kernel not in KERNELS:
                bad("kernel", f"one of {KERNELS} or a 1-D kernel object")
        elif not isinstance(self.kernel, AbstractKernel1d):
            bad("kernel", f"one of {KERNELS} or a 1-D kernel object")
        grid = (self.grid,) if isinstance(self.grid, int) else tuple(self.grid)
        if not grid or any(int(m) < 3 for m in grid):
            bad("grid", "M_j >= 3 points per axis")
        object.__setattr__(self, "grid", grid[0] if len(grid) == 1 else tuple(int(m) for m in grid))
        fs = (
            (self.freq_scale,)
            if isinstance(self.freq_scale, (int, float))
            else tuple(self.freq_scale)
        )
        if not fs or any(not (float(v) > 0) for v in fs):
            bad("freq_scale", "F > 0 (cycles per unit length, just above the highest frequency)")
        if int(self.n_components) < 1:
            bad("n_components", "Q >= 1")
        if not self.jitter >= 0:
            bad("jitter", "eps >= 0")
        if not (self.boundary_weight > 0 and self.lr > 0):
            bad("boundary_weight" if not self.boundary_weight > 0 else "lr", "a positive number")
        if int(self.steps) < 0:
            bad("steps", "steps >= 0")
        if self.residual_points not in ("all", "interior"):
            bad("residual_points", "'all' or 'interior'")
        if not 0 < self.change_point < 1:
            bad("change_point", "a fraction in (0, 1)")
        if self.keep not in ("last", "best_residual"):
            bad("keep", "'last' (Adam's last iterate) or 'best_residual'")
        if self.nu not in (0.5, 1.5, 2.5):
            bad("nu", "0.5, 1.5 or 2.5")
        tau = tuple(float(t) for t in self.tau_init)
        if len(tau) != 2 or not all(t > 0 and math.isfinite(t) for t in tau):
            bad("tau_init", "two positive numbers (tau_1 boundary, tau_2 equation precision)")
        object.__setattr__(self, "tau_init", tau)
        if int(self.eval_grid) < 2:
            bad("eval_grid", "at least 2 points per axis")

    def sizes(self, d: int) -> tuple[int, ...]:
        g = (self.grid,) if isinstance(self.grid, int) else tuple(self.grid)
        if len(g) == 1:
            return g * d
        if len(g) != d:
            raise ValueError(f"GPHMConfig.grid: {len(g)} sizes for a {d}-d domain")
        return g

    def freq_scales(self, d: int) -> tuple[float, ...]:
        fs = (
            (self.freq_scale,)
            if isinstance(self.freq_scale, (int, float))
            else tuple(self.freq_scale)
        )
        if len(fs) == 1:
            return (float(fs[0]),) * d
        if len(fs) != d:
            raise ValueError(f"GPHMConfig.freq_scale: {len(fs)} values for a {d}-d domain")
        return tuple(float(v) for v in fs)

    def kernels(self, d: int) -> list[AbstractKernel1d]:
        if isinstance(self.kernel, AbstractKernel1d):
            return [copy.deepcopy(self.kernel) for _ in range(d)]
        return [
            make_kernel(self.kernel, n_components=self.n_components, freq_scale=f, nu=self.nu)
            for f in self.freq_scales(d)
        ]


# ------------------------------------------------------------------------------------- the fit
@dataclass
class _Terms:
    loss: torch.Tensor
    prior: torch.Tensor
    boundary: torch.Tensor
    equation: torch.Tensor
    residual: torch.Tensor


@dataclass
class _Problem:
    spec: PDESpec
    config: GPHMConfig
    axes: list
    X: torch.Tensor
    f: torch.Tensor
    face_index: list
    g: torch.Tensor
    res_mask: torch.Tensor | None
    jitter: float
    escalations: int = 0
    warnings: list = field(default_factory=list)


def _setup(spec: PDESpec, config: GPHMConfig) -> _Problem:
    if not isinstance(spec, PDESpec):
        raise ValueError(f"fit_hm: expected a PDESpec, got {type(spec).__name__}")
    d = spec.domain.dim
    sizes = config.sizes(d)
    device = torch.device(config.device)
    axes = [a.to(device) for a in spec.domain.axes(sizes)]
    X = tensor_points(axes)
    f = spec.source(X).to(F64).reshape(-1)
    check_finite(f"{spec.name}: source f on the grid", f)
    face_index = []
    flat = torch.arange(X.shape[0], device=device).reshape(sizes)
    for axis, side in spec.boundary_faces:
        face_index.append(flat.select(axis, -1 if side else 0).reshape(-1))
    idx = torch.cat(face_index) if face_index else torch.zeros(0, dtype=torch.long)
    g = spec.boundary(X[idx]).to(F64).reshape(-1)
    check_finite(f"{spec.name}: boundary data g on the faces", g)
    res_mask = None
    if config.residual_points == "interior":
        res_mask = ~spec.domain.face_mask(sizes, "all").reshape(-1).to(device)
    return _Problem(spec, config, axes, X, f, idx, g, res_mask, float(config.jitter))


def _check_orders(spec: PDESpec, kernels: Sequence[AbstractKernel1d]) -> None:
    for j, (k, need) in enumerate(zip(kernels, spec.order)):
        if k.max_order < need:
            raise ValueError(
                f"kernel on axis {spec.domain.names[j]!r}: {type(k).__name__} has max_order "
                f"{k.max_order} but {spec.name!r} needs derivatives of order {need}; use 'gm', "
                "'stm' with nu=2.5, 'se' or 'matern'"
            )


def _terms(prob: _Problem, gps, chols, prior_gp: int, log_tau, fixed_jet=None) -> _Terms:
    cfg, spec = prob.config, prob.spec
    tau1, tau2 = log_tau[0].exp(), log_tau[1].exp()
    gp = gps[prior_gp]
    prior = 0.5 * kron_quadform(chols[prior_gp], gp.U)
    if cfg.logdet:
        prior = prior + 0.5 * kron_logdet(chols[prior_gp])
    cols = gp.jet(chols[prior_gp], spec.jet, cfg.toeplitz)
    cols = [c.reshape(-1) for c in cols]
    u_flat = gp.U.reshape(-1)
    if fixed_jet is not None:
        cols = [c + fj for c, fj in zip(cols, fixed_jet[0])]
        u_flat = u_flat + fixed_jet[1]
    residual = spec.operator(torch.stack(cols, dim=1), prob.X) - prob.f
    r = residual if prob.res_mask is None else residual[prob.res_mask]
    bmis = u_flat[prob.face_index] - prob.g
    lam = cfg.boundary_weight
    boundary = lam * (0.5 * tau1 * (bmis * bmis).sum() - 0.5 * bmis.numel() * log_tau[0])
    equation = 0.5 * tau2 * (r * r).sum() - 0.5 * r.numel() * log_tau[1]
    return _Terms(prior + boundary + equation, prior, boundary, equation, residual)


def fit_hm(spec: PDESpec, config: GPHMConfig | None = None) -> GPSolution:
    """Fit GP-HM to ``spec``; never raises on non-convergence (see ``GPSolution.info['stopped']``)."""
    config = config or GPHMConfig()
    t0 = time.perf_counter()
    prob = _setup(spec, config)
    d = spec.domain.dim
    device = prob.X.device
    torch.manual_seed(config.seed)
    kernels = [k.to(device) for k in config.kernels(d)]
    _check_orders(spec, kernels)
    if config.polish:
        check_polish(prob)
    for k in kernels:
        for name, p in k.named_parameters():
            p.requires_grad_(config.learn_kernel and (name != "mu" or k.mu.requires_grad))
    U = torch.zeros(config.sizes(d), dtype=F64, device=device, requires_grad=True)
    gps = [_GridGP(kernels, prob.axes, U)]
    log_tau = torch.tensor([math.log(t) for t in config.tau_init], dtype=F64, device=device)
    log_tau.requires_grad_(config.learn_tau)

    exact_grid = _exact_on_test_grid(spec, config, device)
    keys = ("step", "loss", "prior", "boundary", "equation", "tau1", "tau2", "midpoint_residual")
    history = {k: [] for k in keys}
    if exact_grid is not None:
        history["error"] = []
        if config.polish:  # diagnostic: what the polish would give at each checkpoint
            history["polished_error"] = []
    steps = int(config.steps)
    eval_every = config.eval_every or max(1, steps // 20)
    switch = int(config.change_point * steps) if config.extra_gp else None

    def params():
        ps = [U, log_tau] if config.learn_tau else [U]
        return ps + [p for k in gps[-1].kernels for p in k.parameters() if p.requires_grad]

    opt = torch.optim.Adam(params(), lr=config.lr)
    stopped, lr_halved, last = "max_steps", False, None
    best = (float("inf"), None, -1)  # (midpoint residual, snapshot, step) within the current stage
    prior_gp, fixed_jet, step = 0, None, 0
    chols_all: list = [None]
    while step < steps:
        if switch is not None and step == switch:
            gps, fixed_jet, chols_all = _add_extra_gp(prob, gps, chols_all, device)
            best = (float("inf"), None, -1)
            prior_gp = 1
            U = gps[1].U
            fresh = torch.tensor(math.log(config.tau_init[1]), dtype=F64, device=device)
            log_tau = torch.stack([log_tau.detach()[0], fresh])
            log_tau.requires_grad_(config.learn_tau)
            opt = torch.optim.Adam(params(), lr=config.lr)
            switch = None
        chols = gps[prior_gp].factorise(prob.jitter, config.toeplitz)
        if chols is None:
            if not _escalate(prob):
                stopped = "ill_conditioned"
                _restore(last, gps, log_tau)
                break
            continue
        chols_all[prior_gp] = chols
        opt.zero_grad(set_to_none=True)
        terms = _terms(prob, gps, chols_all, prior_gp, log_tau, fixed_jet)
        ok = bool(torch.isfinite(terms.loss))
        if ok:
            terms.loss.backward()
            ok = all(bool(torch.isfinite(p.grad).all()) for p in params() if p.grad is not None)
        if not ok:
            _restore(last, gps, log_tau)
            if lr_halved:
                stopped = "non_finite"
                msg = (
                    f"{spec.name}: non-finite loss again at step {step}; kept the last finite state"
                )
                prob.warnings.append(msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
                break
            lr_halved = True
            for group in opt.param_groups:
                group["lr"] *= 0.5
            prob.warnings.append(
                f"non-finite loss at step {step}: restored the last state, halved lr"
            )
            continue
        if step % eval_every == 0:
            _record(history, step, terms, log_tau, gps, chols_all, exact_grid, prob)
            res = history["midpoint_residual"][-1]
            if config.keep == "best_residual" and res is not None and res < best[0]:
                best = (res, _snapshot(gps, log_tau), step)
            if config.polish and exact_grid is not None:
                history["polished_error"].append(
                    _polished_error(prob, gps, chols_all, log_tau, fixed_jet, exact_grid)
                )
            if config.tol > 0 and _relres(terms, prob) <= config.tol:
                stopped = "tol"
                break
        last = _snapshot(gps, log_tau)
        opt.step()
        step += 1

    kept_step = step
    if config.keep == "best_residual" and best[1] is not None:
        final_res = _midpoint_residual(gps, _refactorised(gps, chols_all, prob), prob)
        if final_res is None or best[0] < final_res:
            _restore(best[1], gps, log_tau)
            kept_step = best[2]
    chols_all[prior_gp] = gps[prior_gp].factorise(prob.jitter, config.toeplitz)
    if chols_all[prior_gp] is None:
        _restore(last, gps, log_tau)
        chols_all[prior_gp] = gps[prior_gp].factorise(prob.jitter, config.toeplitz) or _eye_chols(
            gps
        )
        stopped = "ill_conditioned"
    polish_info = None
    if config.polish and stopped != "ill_conditioned":
        before = _error_now(gps, chols_all, exact_grid, prob)
        res_before = _midpoint_residual(gps, chols_all, prob)
        saved = gps[-1].U.detach().clone()
        polish_info = polish(prob, gps[-1], chols_all[-1], log_tau.detach(), fixed_jet)
        res_after = _midpoint_residual(gps, chols_all, prob)
        # accept only what the PDE itself confirms between the grid nodes (no exact solution)
        accepted = res_before is None or res_after <= res_before
        if not accepted:
            with torch.no_grad():
                gps[-1].U.copy_(saved)
        polish_info.update(
            error_before=before,
            midpoint_residual_before=res_before,
            midpoint_residual_after=res_after,
            accepted=accepted,
        )
        stopped = "tol"
    with torch.no_grad():
        terms = _terms(prob, gps, chols_all, prior_gp, log_tau, fixed_jet)
    if stopped in ("max_steps", "tol") and not bool(torch.isfinite(terms.loss)):
        stopped = "non_finite"
    _record(history, step, terms, log_tau, gps, chols_all, exact_grid, prob)
    predictor = HMPredictor(gps, chols_all, prob.jitter)
    relres = _relres(terms, prob)
    errors = history.get("error", [])
    info = {
        "stopped": stopped,
        "jitter": prob.jitter,
        "final_error": errors[-1] if errors else None,
        "oracle_min_error": _oracle_min(errors, polish_info),
        "oracle_note": "oracle_min_error is the minimum over checkpoints, selected with the exact solution",
        "relative_residual": relres,
        "grid": list(config.sizes(d)),
        "device": str(device),
        "warnings": list(prob.warnings),
        "test_grid": int(config.eval_grid),
        "kept_step": kept_step,
    }
    if polish_info is not None:
        info["polish"] = polish_info
    converged = stopped in ("max_steps", "tol") and relres <= max(config.residual_tol, config.tol)
    return GPSolution(
        method="hm",
        config=config,
        predictor=predictor,
        kernel_params=[[k.describe() for k in gp.kernels] for gp in gps],
        history=history,
        converged=converged,
        iterations=step,
        seconds=time.perf_counter() - t0,
        info=info,
        name=spec.name,
    )


def _oracle_min(errors: list, polish_info: dict | None) -> float | None:
    """Minimum over the Adam checkpoints and the last Adam iterate (a polished result is not one)."""
    if polish_info is None:
        return min(errors) if errors else None
    adam = errors[:-1] + [polish_info["error_before"]]
    return min(e for e in adam if e is not None) if adam[-1] is not None else None


def _relres(terms: _Terms, prob: _Problem) -> float:
    """``||P(u) - f|| / ||f||`` over the points where the residual is enforced."""
    r, f = terms.residual.detach(), prob.f
    if prob.res_mask is not None:
        r, f = r[prob.res_mask], f[prob.res_mask]
    scale = float(torch.linalg.norm(f))
    return float(torch.linalg.norm(r)) / (scale if scale > 0 else 1.0)


def _escalate(prob: _Problem) -> bool:
    cfg = prob.config
    if prob.escalations >= cfg.max_jitter_escalations:
        msg = f"Cholesky of the kernel matrices fails even with jitter {prob.jitter:g}; stopped"
        prob.warnings.append(msg)
        warnings.warn(msg, GPConditioningWarning, stacklevel=3)
        return False
    prob.escalations += 1
    prob.jitter = prob.jitter * 10 if prob.jitter > 0 else 1e-10
    msg = f"Cholesky failed: jitter escalated to {prob.jitter:g}"
    prob.warnings.append(msg)
    warnings.warn(msg + " (recorded in info['jitter'])", GPConditioningWarning, stacklevel=3)
    return True


def _state_tensors(gps, log_tau) -> list[torch.Tensor]:
    return (
        [gp.U for gp in gps]
        + [p for gp in gps for k in gp.kernels for p in k.parameters()]
        + [log_tau]
    )


def _snapshot(gps, log_tau):
    return [t.detach().clone() for t in _state_tensors(gps, log_tau)]


def _restore(last, gps, log_tau) -> None:
    if last is None:
        return
    with torch.no_grad():
        for t, saved in zip(_state_tensors(gps, log_tau), last):
            t.copy_(saved)


@torch.no_grad()
def _error_now(gps, chols_all, exact_grid, prob) -> float | None:
    """Relative L2 error on the test grid (None without an exact solution)."""
    if exact_grid is None:
        return None
    axes, ref = exact_grid
    pred = HMPredictor(gps, chols_all, prob.jitter).on_grid(axes)
    err = float(torch.linalg.norm(pred - ref) / torch.linalg.norm(ref))
    return err if math.isfinite(err) else float("inf")


@torch.no_grad()
def _midpoint_residual(gps, chols_all, prob) -> float | None:
    """``||P(u) - f|| / ||f||`` at the cell midpoints, between the collocation nodes, plus the
    relative boundary misfit: the check that decides whether a polish is kept (it needs no exact
    solution)."""
    spec = prob.spec
    axes = [0.5 * (a[1:] + a[:-1]) for a in prob.axes]
    pred = HMPredictor(gps, chols_all, prob.jitter)
    jet = torch.stack([pred.on_grid(axes, tuple(a)).reshape(-1) for a in spec.jet], dim=1)
    X = tensor_points(axes)
    try:
        f = spec.source(X).to(F64).reshape(-1)
    except ValueError:  # data given at the nodes only (PDEDataset samples): no check possible
        return None
    r = float(torch.linalg.norm(spec.operator(jet, X) - f))
    scale = float(torch.linalg.norm(f))
    grid = pred.on_grid(prob.axes).reshape(-1)
    ub = grid[prob.face_index]
    bscale = max(
        float(torch.linalg.norm(prob.g)),
        float(grid.abs().max()) * math.sqrt(ub.numel()),
        1e-300,
    )
    out = r / (scale if scale > 0 else 1.0) + float(torch.linalg.norm(ub - prob.g)) / bscale
    return out if math.isfinite(out) else float("inf")


def _refactorised(gps, chols_all, prob):
    """Factors of the current kernels (the loop's factors predate the last Adam step)."""
    out = list(chols_all)
    out[-1] = gps[-1].factorise(prob.jitter, prob.config.toeplitz) or chols_all[-1]
    return out


@torch.no_grad()
def _polished_error(prob, gps, chols_all, log_tau, fixed_jet, exact_grid) -> float:
    """The test error the polish would give from the current state (on a copy; diagnostic)."""
    last = gps[-1]
    trial = _GridGP(last.kernels, last.axes, last.U.detach().clone())
    polish(prob, trial, chols_all[-1], log_tau.detach(), fixed_jet)
    return _error_now(gps[:-1] + [trial], chols_all, exact_grid, prob)


@torch.no_grad()
def _record(history, step, terms, log_tau, gps, chols_all, exact_grid, prob) -> None:
    history["step"].append(int(step))
    for name in ("loss", "prior", "boundary", "equation"):
        history[name].append(float(getattr(terms, name)))
    history["tau1"].append(float(log_tau[0].exp()))
    history["tau2"].append(float(log_tau[1].exp()))
    if exact_grid is not None:
        history["error"].append(_error_now(gps, chols_all, exact_grid, prob))
    history["midpoint_residual"].append(_midpoint_residual(gps, chols_all, prob))


def _exact_on_test_grid(spec: PDESpec, config: GPHMConfig, device):
    if spec.exact is None:
        return None
    axes = [a.to(device) for a in spec.domain.axes(int(config.eval_grid))]
    ref = spec.exact(tensor_points(axes)).to(F64).reshape([a.numel() for a in axes])
    return axes, ref


def _add_extra_gp(prob: _Problem, gps, chols_all, device):
    """Freeze the mixture GP (its jet becomes a constant) and add a Matern-5/2 GP with U = 0."""
    base = gps[0]
    with torch.no_grad():
        # refactorise: the last Adam step moved the kernel after chols_all[0] was computed
        chols0 = base.factorise(prob.jitter, prob.config.toeplitz) or chols_all[0]
        fixed = [
            c.reshape(-1).detach() for c in base.jet(chols0, prob.spec.jet, prob.config.toeplitz)
        ]
    base.U.requires_grad_(False)
    for k in base.kernels:
        k.requires_grad_(False)
    kernels = [Matern1d(lengthscale=1.0).to(device) for _ in prob.axes]
    for k in kernels:
        k.log_inv_ls.requires_grad_(prob.config.learn_kernel)
        k.log_weight.requires_grad_(prob.config.learn_kernel)
    V = torch.zeros_like(base.U, requires_grad=True)
    return (
        [base, _GridGP(kernels, prob.axes, V)],
        (fixed, base.U.reshape(-1).detach()),
        [chols0, None],
    )


# ---------------------------------------------------------------------------------- persistence
def restore(config_dict: dict, state: dict[str, torch.Tensor]):
    """Rebuild ``(GPHMConfig, HMPredictor)`` from ``GPSolution.save`` output."""
    cfg = dict(config_dict)
    kernel = cfg.get("kernel")
    if isinstance(kernel, dict):  # a kernel object was passed: the state holds its parameters
        cfg["kernel"] = "gm" if kernel.get("module") in ("GaussianMixture1d", "SE1d") else "stm"
    for key in ("grid", "freq_scale", "tau_init"):
        if isinstance(cfg.get(key), list):
            cfg[key] = tuple(cfg[key])
    known = set(GPHMConfig.__dataclass_fields__)
    config = GPHMConfig(**{k: v for k, v in cfg.items() if k in known})
    jitter = float(state["jitter"][0])
    gps = []
    g = 0
    while f"gp{g}.U" in state:
        kinds = state[f"gp{g}.kinds"].tolist()
        nus = state[f"gp{g}.nu"].tolist()
        axes, kernels = [], []
        for j, (kind, nu) in enumerate(zip(kinds, nus)):
            lw = state[f"gp{g}.k{j}.log_weight"]
            q = lw.numel()
            lil, mu = state[f"gp{g}.k{j}.log_inv_ls"], state[f"gp{g}.k{j}.mu"]
            k = (
                GaussianMixture1d(q, lw, lil, mu)
                if kind == 0
                else StudentTMixture1d(q, lw, lil, mu, nu=nu)
            )
            kernels.append(k.requires_grad_(False))
            axes.append(state[f"gp{g}.axis{j}"])
        gp = _GridGP(kernels, axes, state[f"gp{g}.U"])
        gps.append(gp)
        g += 1
    return config, _predictor_from(gps, jitter, config.toeplitz)
