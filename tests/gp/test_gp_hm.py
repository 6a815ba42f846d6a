"""GP-HM: polish recovery and refinement, a short Adam run, float64, determinism, failures."""

import math
import warnings

import pytest
import torch

from neuralops.gp import GPConditioningWarning, GPSolution, GPSolver
from neuralops.gp.hm import GPHMConfig, fit_hm
from neuralops.gp.kernels import Matern1d, SE1d
from neuralops.pde.spec import BoxDomain, PDESpec, allen_cahn, poisson

F64 = torch.float64
UNIT = BoxDomain((0.0,), (1.0,))


def _smooth(x):
    return torch.sin(2 * math.pi * x[:, 0]) + x[:, 0] ** 2


def test_polish_recovers_a_smooth_solution():
    """Fixed SE (l = 0.2, eps = 1e-10), M = 32, tau = 1e6: the exact quadratic minimiser."""
    spec = poisson(UNIT, exact=_smooth)
    sol = GPSolver(
        "hm", kernel=SE1d(0.2), jitter=1e-10, grid=32, steps=0, polish=True, tau_init=(1e6, 1e6)
    ).fit(spec)
    assert sol.info["final_error"] < 1e-4
    x = torch.rand(50, 1, dtype=F64)
    assert torch.allclose(sol.predict(x), _smooth(x), atol=1e-4)
    # the second derivative comes out too: u'' = -4 pi^2 sin(2 pi x) + 2
    uxx = sol.predict(x, derivative=(2,))
    ref = -4 * math.pi**2 * torch.sin(2 * math.pi * x[:, 0]) + 2
    assert float((uxx - ref).norm() / ref.norm()) < 1e-2


def test_polish_error_falls_under_refinement():
    """Fixed Matern-5/2 (alpha = 5): M = 16 ... 128, strictly decreasing, more than 30x overall."""
    spec = poisson(UNIT, exact=_smooth)
    errors = []
    for m in (16, 32, 64, 128):
        cfg = GPHMConfig(
            kernel=Matern1d(math.sqrt(5) / 5), grid=m, steps=0, polish=True, tau_init=(1e6, 1e6)
        )
        errors.append(fit_hm(spec, cfg).info["final_error"])
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[0] / errors[-1] > 30, errors


def test_polish_matches_dense_minimiser_of_the_objective():
    """With tau = 1 the polish is the exact minimiser: no Adam step beats it."""
    spec = poisson(UNIT, exact=_smooth)
    cfg = GPHMConfig(
        kernel=SE1d(0.3), jitter=1e-8, grid=16, steps=0, polish=True, learn_kernel=False
    )
    sol = fit_hm(spec, cfg)
    base = sol.history["loss"][-1]
    from dataclasses import replace

    more = fit_hm(spec, replace(cfg, polish=False, steps=200, learn_tau=False, lr=1e-3))
    assert min(more.history["loss"]) >= base - 1e-8 * abs(base)


def test_gauss_newton_polish_solves_allen_cahn():
    """Nonlinear polish: Gauss-Newton in U reaches the same accuracy as the linear polish of the
    Poisson problem with the same solution and kernel, and stops at a stationary point of -L."""
    opts = dict(kernel=SE1d(0.2), jitter=1e-10, grid=32, steps=0, polish=True, tau_init=(1e6, 1e6))
    lin = fit_hm(poisson(UNIT, exact=_smooth), GPHMConfig(**opts))
    ac = fit_hm(allen_cahn(UNIT, exact=_smooth), GPHMConfig(**opts))
    assert lin.info["polish"]["iterations"] == 1
    pol = ac.info["polish"]
    assert 2 <= pol["iterations"] <= 20 and pol["objective_after"] < pol["objective_before"]
    assert ac.info["final_error"] < 1e-4 and ac.info["final_error"] < 10 * lin.info["final_error"]
    # stationarity: the gradient of -L in U vanishes relative to its size at U = 0
    from neuralops.gp import hm

    spec, cfg = allen_cahn(UNIT, exact=_smooth), GPHMConfig(**opts)
    prob = hm._setup(spec, cfg)
    kernels = cfg.kernels(1)
    tau = torch.log(torch.tensor(cfg.tau_init, dtype=F64))

    def grad_at(u):
        U = u.clone().requires_grad_(True)
        gp = hm._GridGP(kernels, prob.axes, U)
        chols = gp.factorise(prob.jitter, True)
        (g,) = torch.autograd.grad(hm._terms(prob, [gp], [chols], 0, tau).loss, U)
        return float(g.norm())

    u_star = ac.predictor.gps[0].U.detach()
    assert grad_at(u_star) < 1e-6 * grad_at(torch.zeros_like(u_star))


def test_short_adam_run_finds_the_frequency():
    """GM, Q = 4, M = 64, u = sin(4 pi x): error < 1e-2 and the heaviest component at mu ~ 2."""
    spec = poisson(UNIT, exact=lambda x: torch.sin(4 * math.pi * x[:, 0]))
    sol = GPSolver(
        "hm", kernel="gm", n_components=4, freq_scale=4.0, grid=64, steps=4000, eval_every=500
    ).fit(spec)
    assert sol.info["final_error"] < 1e-2, sol.history["error"]
    assert sol.info["oracle_min_error"] <= sol.info["final_error"]
    top_mu = sol.kernel_params[0][0]["mu"][0]
    assert abs(top_mu - 2.0) < 0.2
    assert sol.info["stopped"] == "max_steps" and sol.iterations == 4000


def test_polish_2d_recovers_and_differentiates():
    """The 2-D Kronecker path: Poisson on the unit square, fixed SE, 20 x 20 grid."""
    exact = lambda x: torch.sin(math.pi * x[:, 0]) * torch.cos(2 * x[:, 1]) + x[:, 1] ** 2  # noqa: E731
    spec = poisson(BoxDomain((0.0, 0.0), (1.0, 1.0)), exact=exact)
    sol = fit_hm(
        spec,
        GPHMConfig(
            kernel=SE1d(0.3), jitter=1e-10, grid=20, steps=0, polish=True, tau_init=(1e6, 1e6)
        ),
    )
    assert sol.info["final_error"] < 1e-4
    x = torch.rand(40, 2, dtype=F64)
    uy = sol.predict(x, derivative=(0, 1))
    ref = -2 * torch.sin(math.pi * x[:, 0]) * torch.sin(2 * x[:, 1]) + 2 * x[:, 1]
    assert float((uy - ref).norm() / ref.norm()) < 1e-3


def test_nonlinear_allen_cahn_lowers_its_objective():
    spec = allen_cahn(UNIT, exact=lambda x: torch.sin(2 * math.pi * x[:, 0]))
    sol = fit_hm(
        spec,
        GPHMConfig(kernel="gm", n_components=4, freq_scale=2.0, grid=32, steps=600, eval_every=100),
    )
    assert sol.history["equation"][-1] < 0.01 * sol.history["equation"][0]
    assert sol.history["error"][-1] < 0.5


def test_float64_everywhere_under_float32_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        spec = poisson(UNIT, exact=_smooth)
        sol = fit_hm(
            spec, GPHMConfig(kernel="gm", n_components=2, freq_scale=2.0, grid=16, steps=5)
        )
        out = sol.predict(torch.rand(7, 1, dtype=torch.float32))
        assert out.dtype == F64
        assert all(
            v.dtype == F64 for k, v in sol.predictor.state().items() if v.is_floating_point()
        )
    finally:
        torch.set_default_dtype(old)
    with pytest.raises(ValueError, match="dtype"):
        GPHMConfig(dtype="float32")


def test_determinism_and_save_load(tmp_path):
    spec = poisson(UNIT, exact=_smooth)
    cfg = GPHMConfig(
        kernel="stm", n_components=3, freq_scale=2.0, grid=20, steps=40, eval_every=10, seed=3
    )
    a, b = fit_hm(spec, cfg), fit_hm(spec, cfg)
    assert a.history == b.history
    a.save(tmp_path / "sol")
    c = GPSolution.load(tmp_path / "sol")
    x = torch.rand(11, 1, dtype=F64)
    assert torch.equal(a.predict(x), c.predict(x))
    assert torch.equal(a.predict(x, (2,)), c.predict(x, (2,)))
    assert c.history == a.history and c.info["stopped"] == a.info["stopped"]


def test_extra_gp_phase_adds_a_second_field():
    spec = poisson(UNIT, exact=_smooth)
    sol = fit_hm(
        spec,
        GPHMConfig(
            kernel="gm",
            n_components=3,
            freq_scale=2.0,
            grid=24,
            steps=60,
            extra_gp=True,
            change_point=0.5,
        ),
    )
    assert len(sol.predictor.gps) == 2 and len(sol.kernel_params) == 2
    assert torch.isfinite(sol.predict(torch.rand(4, 1, dtype=F64))).all()


@pytest.mark.parametrize("pde", [poisson, allen_cahn])
def test_polish_of_the_extra_gp_is_its_exact_minimiser(pde):
    """With the mixture GP frozen, the polish minimises -L in the extra GP's values: the objective
    falls and its gradient in those values vanishes; the frozen field is untouched."""
    from dataclasses import replace

    from neuralops.gp import hm

    spec = pde(UNIT, exact=_smooth)
    cfg = GPHMConfig(
        kernel="gm", n_components=3, freq_scale=2.0, grid=24, steps=60, extra_gp=True, polish=True
    )
    sol = fit_hm(spec, cfg)
    plain = fit_hm(spec, replace(cfg, polish=False))
    pol = sol.info["polish"]
    assert pol["objective_after"] < pol["objective_before"]
    assert pol["error_before"] == plain.info["final_error"]
    base, extra = sol.predictor.gps
    assert torch.equal(base.U, plain.predictor.gps[0].U)
    # stationarity of -L in the extra GP's values (same tau as the run ended with)
    prob = hm._setup(spec, cfg)
    tau = torch.log(torch.tensor([sol.history["tau1"][-1], sol.history["tau2"][-1]], dtype=F64))
    chols = [g.factorise(sol.info["jitter"], True) for g in (base, extra)]
    with torch.no_grad():
        fixed = [c.reshape(-1) for c in base.jet(chols[0], spec.jet, True)]

    def grad_norm(v):
        V = v.clone().requires_grad_(True)
        gp = hm._GridGP(extra.kernels, extra.axes, V)
        chols_v = [chols[0], gp.factorise(sol.info["jitter"], True)]
        loss = hm._terms(prob, [base, gp], chols_v, 1, tau, (fixed, base.U.reshape(-1))).loss
        return float(torch.autograd.grad(loss, V)[0].norm())

    assert grad_norm(extra.U.detach()) < 1e-6 * grad_norm(torch.zeros_like(extra.U))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(grid=2), "grid"),
        (dict(n_components=0), "n_components"),
        (dict(freq_scale=0.0), "freq_scale"),
        (dict(jitter=-1.0), "jitter"),
        (dict(kernel="cauchy"), "kernel"),
        (dict(residual_points="edges"), "residual_points"),
        (dict(bogus=1), "unknown option"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPSolver("hm", **kwargs)


def test_bad_problems():
    spec = poisson(UNIT, exact=_smooth)
    with pytest.raises(
        ValueError, match="max_order"
    ):  # Matern-3/2 has no 4th... here Cauchy: no 2nd
        fit_hm(spec, GPHMConfig(kernel="stm", nu=0.5, grid=8, steps=1))
    with pytest.raises(ValueError, match="polish"):
        fit_hm(spec, GPHMConfig(grid=65 * 65, steps=0, polish=True))
    nan_source = poisson(UNIT, source=lambda x: x[:, 0] / 0.0 * 0.0)
    with pytest.raises(ValueError, match="source"):
        fit_hm(nan_source, GPHMConfig(grid=8, steps=1))
    sol = fit_hm(spec, GPHMConfig(kernel="gm", n_components=2, grid=8, steps=1))
    with pytest.raises(ValueError, match=r"\(N, 1\)"):
        sol.predict(torch.rand(3, 2))
    with pytest.raises(ValueError, match="NaN"):
        sol.predict(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="not pointwise"):
        PDESpec(UNIT, ((2,),), lambda j, x: j[:, 0].cumsum(0), lambda x: x[:, 0], lambda x: x[:, 0])


def test_ill_conditioned_kernel_escalates_jitter():
    spec = poisson(UNIT, exact=_smooth)
    with pytest.warns(GPConditioningWarning):
        sol = fit_hm(
            spec, GPHMConfig(kernel=SE1d(100.0), jitter=0.0, grid=20, steps=3, learn_kernel=False)
        )
    assert sol.info["jitter"] > 0
    assert torch.isfinite(sol.predict(torch.rand(5, 1, dtype=F64))).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GPConditioningWarning)
        stuck = fit_hm(
            spec,
            GPHMConfig(
                kernel=SE1d(100.0),
                jitter=0.0,
                grid=20,
                steps=3,
                learn_kernel=False,
                max_jitter_escalations=0,
            ),
        )
    assert stuck.info["stopped"] == "ill_conditioned" and not stuck.converged
    assert torch.isfinite(stuck.predict(torch.rand(5, 1, dtype=F64))).all()


def test_overflowing_operator_stops_with_non_finite():
    spec = PDESpec(
        UNIT,
        ((2,),),
        lambda j, x: 1.0 / j[:, 0],
        lambda x: torch.ones(x.shape[0], dtype=F64),
        lambda x: 0 * x[:, 0],
    )
    with pytest.warns(RuntimeWarning, match="non-finite"):
        sol = fit_hm(spec, GPHMConfig(kernel="gm", n_components=2, grid=10, steps=5))
    assert sol.info["stopped"] == "non_finite" and not sol.converged
    assert torch.isfinite(sol.predict(torch.rand(3, 1, dtype=F64))).all()


def test_polish_is_kept_only_when_the_midpoint_residual_confirms_it():
    """A kernel far shorter than the grid spacing fits the nodes and nothing between them: the
    residual at the cell midpoints rises, so the polish is rejected and the Adam state kept."""
    spec = poisson(UNIT, exact=_smooth)
    opts = dict(grid=32, steps=0, polish=True, tau_init=(1e6, 1e6))
    good = fit_hm(spec, GPHMConfig(kernel=Matern1d(math.sqrt(5) / 5), **opts))
    bad = fit_hm(spec, GPHMConfig(kernel=Matern1d(0.01), **opts))
    g, b = good.info["polish"], bad.info["polish"]
    assert g["accepted"] and g["midpoint_residual_after"] < 0.2 * g["midpoint_residual_before"]
    assert good.info["final_error"] < 0.2 * g["error_before"]
    assert not b["accepted"] and b["midpoint_residual_after"] > b["midpoint_residual_before"]
    assert bad.info["final_error"] == b["error_before"]
    assert torch.count_nonzero(bad.predictor.gps[0].U) == 0  # the Adam state (no steps: U = 0)


def test_keep_best_residual_returns_the_checkpoint_the_pde_prefers():
    """keep='best_residual' returns the checkpoint with the smallest midpoint residual (no exact
    solution involved); 'last' returns Adam's last iterate."""
    spec = poisson(UNIT, exact=lambda x: torch.sin(4 * math.pi * x[:, 0]))
    opts = dict(kernel="gm", n_components=4, freq_scale=4.0, grid=48, steps=400, eval_every=40)
    last = fit_hm(spec, GPHMConfig(**opts))
    best = fit_hm(spec, GPHMConfig(keep="best_residual", **opts))
    res = last.history["midpoint_residual"]
    assert all(r is not None and r >= 0 for r in res)
    assert last.info["kept_step"] == 400
    i = min(range(len(res)), key=res.__getitem__)
    assert best.info["kept_step"] == last.history["step"][i]
    assert best.history["midpoint_residual"][-1] == pytest.approx(res[i], rel=1e-9)
    with pytest.raises(ValueError, match="keep"):
        GPHMConfig(keep="best")
