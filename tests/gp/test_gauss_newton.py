"""Gauss-Newton kernel collocation (neuralops.gp.gauss_newton) against known answers."""

import dataclasses
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralops.gp import gauss_newton as gn
from neuralops.gp._linalg import GPConditioningWarning
from neuralops.gp.cases import burgers_cole_hopf
from neuralops.gp.gauss_newton import (
    Functional,
    GaussNewtonConfig,
    fit_gauss_newton,
    theta_matrix,
)
from neuralops.gp.kernels import Matern1d, ProductKernel, SE1d, make_kernel
from neuralops.gp.solution import GPSolution
from neuralops.gp.solver import GPSolver
from neuralops.pde.spec import BoxDomain, nonlinear_elliptic, poisson

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import gp_gn  # noqa: E402

PI = math.pi
F64 = torch.float64
UNIT = BoxDomain((0.0,), (1.0,))
SQUARE = BoxDomain((0.0, 0.0), (1.0, 1.0))


def u1(x):
    return torch.sin(PI * x[:, 0]) + 0.5 * torch.sin(4 * PI * x[:, 0])


def u2(x):
    return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])


@pytest.fixture(scope="module")
def ell1():
    return nonlinear_elliptic(UNIT, exact=u1)


def test_1d_nonlinear_elliptic_refines(ell1):
    """-u'' + u^3 = f, Gaussian sigma 0.2, nugget 1e-10 (numpy prototype: 5.6e-6, 9.2e-8, 6.9e-9)."""
    errs = []
    for n in (20, 40, 80):
        sol = fit_gauss_newton(
            ell1, GaussNewtonConfig(kernel=SE1d(0.2), n_interior=n, nugget=1e-10)
        )
        assert sol.converged and sol.info["stopped"] == "tol" and sol.iterations <= 8
        errs.append(sol.info["final_error"])
    assert errs[0] < 1e-4 and errs[1] < errs[0] / 10 and errs[2] < errs[1]
    assert errs[2] < 1e-7
    assert sol.predict(torch.rand(7, 1, dtype=F64)).shape == (7,)


def test_2d_nonlinear_elliptic():
    spec = nonlinear_elliptic(SQUARE, exact=u2)
    sol = fit_gauss_newton(spec, GaussNewtonConfig(n_interior=15))
    assert sol.converged and sol.info["final_error"] < 1e-3
    assert sol.info["path"] == "elimination" and sol.info["functionals"] == [
        "principal",
        "u",
        "boundary",
    ]
    assert sol.info["n_functionals"] == 2 * 225 + 64 and sol.info["error_grid"].startswith(
        "uniform"
    )


def _se(r, l, n):
    """Hand-written SE derivatives k^{(n)}(r), n = 0, 2, 4."""
    k = np.exp(-(r**2) / (2 * l * l))
    return {
        0: k,
        2: (r**2 / l**4 - 1 / l**2) * k,
        4: (r**4 / l**8 - 6 * r**2 / l**6 + 3 / l**4) * k,
    }[n]


def test_linear_poisson_matches_dense_collocation():
    """A linear PDE: GN converges in <= 2 steps to the dense kernel-collocation solution."""
    spec = poisson(UNIT, exact=u1)
    n, ls, nug = 20, 0.2, 1e-10
    sol = fit_gauss_newton(spec, GaussNewtonConfig(kernel=SE1d(ls), n_interior=n, nugget=nug))
    assert sol.info["path"] == "linearised" and sol.converged and sol.iterations <= 2
    # independent: constraint functionals [u'' interior; u boundary], same adaptive nugget
    xi, xb = np.linspace(0, 1, n + 2)[1:-1], np.array([0.0, 1.0])
    f = spec.source(torch.tensor(xi)[:, None]).numpy()
    g = u1(torch.tensor(xb)[:, None]).numpy()
    ratio = n * _se(0.0, ls, 4) / ((n + 2) * _se(0.0, ls, 0))
    lag = lambda a, b: a[:, None] - b[None, :]  # noqa: E731
    K = np.block(
        [
            [_se(lag(xi, xi), ls, 4) + nug * ratio * np.eye(n), _se(lag(xi, xb), ls, 2)],
            [_se(lag(xb, xi), ls, 2), _se(lag(xb, xb), ls, 0) + nug * np.eye(2)],
        ]
    )
    lam = np.linalg.solve(K, np.r_[f, g])
    xt = np.linspace(0, 1, 301)
    direct = np.c_[_se(lag(xt, xi), ls, 2), _se(lag(xt, xb), ls, 0)] @ lam
    ours = sol.predict(torch.tensor(xt)[:, None]).numpy()
    assert np.abs(ours - direct).max() < 1e-10


def _fd(fn, x, xp, alpha, beta, h):
    """D^alpha_x D^beta_x' fn(x, x') by nested 5-point central differences (orders 0-2)."""
    stencil = {
        0: ([0.0], [1.0]),
        1: ([-2, -1, 1, 2], [1 / 12, -8 / 12, 8 / 12, -1 / 12]),
        2: ([-2, -1, 0, 1, 2], [-1 / 12, 16 / 12, -30 / 12, 16 / 12, -1 / 12]),
    }
    orders = list(alpha) + list(beta)
    d = len(alpha)
    out = 0.0
    grids = [stencil[o] for o in orders]
    for combo in np.ndindex(*[len(s[0]) for s in grids]):
        shift = np.array([grids[i][0][c] for i, c in enumerate(combo)], dtype=float) * h
        w = np.prod([grids[i][1][c] / h ** orders[i] for i, c in enumerate(combo)])
        out = out + w * fn(x + shift[:d], xp + shift[d:])
    return out


def test_theta_symmetric_and_equal_to_kernel_differences():
    ls = (0.3, 0.45)
    kernel = ProductKernel([SE1d(ls[0]), SE1d(ls[1])])
    funcs = [
        Functional("u_t", (((0, 1), 1.0),)),
        Functional("u", (((0, 0), 1.0),)),
        Functional("u_x", (((1, 0), 1.0),)),
        Functional("lap", (((2, 0), -1.0), ((0, 2), -2.0))),
        Functional("boundary", (((0, 0), 1.0),), 1),
    ]
    g = torch.Generator().manual_seed(3)
    xi, xb = torch.rand(6, 2, dtype=F64, generator=g), torch.rand(3, 2, dtype=F64, generator=g)
    theta = theta_matrix(kernel, funcs, xi, xb).detach()
    assert theta.shape == (27, 27) and torch.equal(theta, theta.T)
    assert torch.linalg.eigvalsh(theta).min() > -1e-10

    def k(x, xp):
        return math.exp(
            -((x[0] - xp[0]) ** 2) / (2 * ls[0] ** 2) - (x[1] - xp[1]) ** 2 / (2 * ls[1] ** 2)
        )

    pts = [xi if f.where == 0 else xb for f in funcs]
    offs = np.cumsum([0] + [p.shape[0] for p in pts])
    scale = theta.diagonal().sqrt()  # |Theta_ij| <= sqrt(Theta_ii Theta_jj)
    for a, fa in enumerate(funcs):
        for b, fb in enumerate(funcs):
            for i, x in enumerate(pts[a].numpy()):
                for j, xp in enumerate(pts[b].numpy()):
                    ref = sum(
                        ca * cb * _fd(k, x, xp, al, be, 5e-3)
                        for al, ca in fa.terms
                        for be, cb in fb.terms
                    )
                    row, col = offs[a] + i, offs[b] + j
                    err = abs(float(theta[row, col]) - ref) / float(scale[row] * scale[col])
                    assert err < 1e-6, (fa.name, fb.name, err)


def test_laplacian_block_matches_closed_form():
    """Gaussian: Delta Delta' k = (r^4/s^8 - 2(d+2) r^2/s^6 + d(d+2)/s^4) k (spec §4)."""
    s, d = 0.2, 2
    x = torch.rand(7, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    lap = Functional("lap", (((2, 0), 1.0), ((0, 2), 1.0)))
    theta = theta_matrix(ProductKernel([SE1d(s), SE1d(s)]), [lap], x, x[:0])
    r2 = torch.cdist(x, x) ** 2
    ref = (r2**2 / s**8 - 2 * (d + 2) * r2 / s**6 + d * (d + 2) / s**4) * torch.exp(
        -r2 / (2 * s * s)
    )
    torch.testing.assert_close(theta, ref, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("domain,exact,tol", [(UNIT, u1, 1e-8), (SQUARE, u2, 1e-5)])
def test_linearised_path_agrees_with_elimination(domain, exact, tol):
    """Same minimum-norm problem; in 2-D the nugget sits on Delta vs on (u_xx, u_yy), hence 1e-5."""
    spec = nonlinear_elliptic(domain, exact=exact)
    cfg = GaussNewtonConfig(n_interior=20 if domain.dim == 1 else 10)
    elim = fit_gauss_newton(spec, cfg)
    lin = fit_gauss_newton(dataclasses.replace(spec, principal=None), cfg)
    assert elim.info["path"] == "elimination" and lin.info["path"] == "linearised"
    assert lin.converged and lin.iterations <= 8
    x = torch.rand(50, domain.dim, dtype=F64)
    assert float((elim.predict(x) - lin.predict(x)).abs().max()) < tol


def test_burgers_unknowns_and_derivative_prediction():
    """Burgers eliminates u_t; unknowns (u, u_x, u_xx); predictions of u_x follow the exact one."""
    spec = gp_gn.burgers_spec(nu=0.2)
    cfg = GaussNewtonConfig(kernel=ProductKernel([SE1d(0.2), SE1d(0.2)]), n_interior=14)
    sol = fit_gauss_newton(spec, cfg)
    assert sol.info["unknowns"] == ["u", "u_x", "u_xx"] and sol.info["n_unknowns"] == 3 * 14 * 15
    assert sol.converged and sol.info["final_error"] < 1e-2
    x = torch.tensor([[-0.5, 0.5], [0.3, 0.8]], dtype=F64)
    u = lambda dx: sol.predict(x + torch.tensor([dx, 0.0]))  # noqa: E731
    h = 1e-3
    ux = (u(-2 * h) - 8 * u(-h) + 8 * u(h) - u(2 * h)) / (12 * h)
    torch.testing.assert_close(sol.predict(x, (1, 0)), ux, rtol=1e-6, atol=1e-8)


def test_cole_hopf_reference_against_finite_differences():
    """Gauss-Hermite Cole-Hopf (80 and 200 nodes) agree; a Crank-Nicolson march converges to it
    at second order."""
    nu = 0.02
    x = torch.linspace(-1, 1, 41, dtype=F64)
    for t in (0.25, 1.0):
        p = torch.stack([x, torch.full_like(x, t)], dim=1)
        torch.testing.assert_close(
            burgers_cole_hopf(nu, 80)(p), burgers_cole_hopf(nu, 200)(p), rtol=0, atol=1e-12
        )
    exact = burgers_cole_hopf(nu, 200)
    errs = []
    for n in (200, 400):
        xs, ts, U = gp_gn.fd_burgers(n, n, nu)
        sel = np.arange(0, n + 1, n // 8)  # t = 1/8, ..., 1 and x on a common coarse grid
        T, X = np.meshgrid(ts[sel][1:], xs[sel], indexing="ij")
        ref = exact(torch.tensor(np.c_[X.ravel(), T.ravel()])).numpy()
        errs.append(np.abs(U[sel][1:][:, sel].ravel() - ref).max())
    assert errs[1] < 2e-3 and 3.0 < errs[0] / errs[1] < 5.5
    p0 = torch.tensor([[0.3, 0.0], [-1.0, 0.5], [1.0, 0.7]], dtype=F64)
    torch.testing.assert_close(exact(p0), torch.tensor([-math.sin(0.3 * PI), 0.0, 0.0], dtype=F64))


def test_bad_input(ell1):
    with pytest.raises(ValueError, match="max_order >= 4.*Matern1d has max_order 2"):
        fit_gauss_newton(ell1, GaussNewtonConfig(kernel=Matern1d(nu=1.5)))
    with pytest.raises(ValueError, match="dtype: expected float64"):
        GaussNewtonConfig(dtype=torch.float32)
    with pytest.raises(ValueError, match="nugget: expected a finite float >= 0, got -1"):
        GaussNewtonConfig(nugget=-1.0)
    with pytest.raises(ValueError, match="init: expected 'random' or 'zeros'"):
        GaussNewtonConfig(init="ones")
    with pytest.raises(ValueError, match="kernel: .* one of"):
        GaussNewtonConfig(kernel="cauchy")
    with pytest.raises(ValueError, match="max_iter: expected an int >= 1"):
        GaussNewtonConfig(max_iter=0)
    with pytest.raises(ValueError, match="points: expected finite"):
        GaussNewtonConfig(points=torch.tensor([[0.5], [float("nan")]]))
    with pytest.raises(ValueError, match=r"interior points: expected shape \(N, 1\), got \(5, 2\)"):
        fit_gauss_newton(ell1, GaussNewtonConfig(), interior=torch.rand(5, 2))
    with pytest.raises(ValueError, match="boundary points: contains NaN"):
        fit_gauss_newton(ell1, GaussNewtonConfig(), boundary=torch.tensor([[0.0], [math.inf]]))
    nan = lambda x: torch.full((x.shape[0],), math.nan, dtype=F64)  # noqa: E731
    with pytest.raises(ValueError, match="source: .* non-finite"):
        fit_gauss_newton(dataclasses.replace(ell1, source=nan), GaussNewtonConfig())
    with pytest.raises(ValueError, match="boundary: .* non-finite"):
        fit_gauss_newton(dataclasses.replace(ell1, boundary=nan), GaussNewtonConfig())
    with pytest.raises(ValueError, match="ProductKernel has 2 factors"):
        fit_gauss_newton(ell1, GaussNewtonConfig(kernel=ProductKernel([SE1d(), SE1d()])))
    sol = fit_gauss_newton(ell1, GaussNewtonConfig(n_interior=8))
    with pytest.raises(ValueError, match="needs kernel max_order >= 5"):
        sol.predict(torch.rand(3, 1), derivative=(3,))


def test_ill_conditioning_warns_and_stays_finite(ell1):
    huge = GaussNewtonConfig(kernel=SE1d(100.0), nugget=0.0, n_interior=20, max_iter=3)
    with pytest.warns(GPConditioningWarning, match="succeeded with"):
        sol = fit_gauss_newton(ell1, huge)
    assert sol.info["jitter"] > 0 and any("Cholesky" in w for w in sol.info["warnings"])
    assert torch.isfinite(sol.predict(torch.rand(20, 1, dtype=F64))).all()
    with pytest.warns(GPConditioningWarning, match="still fails"):
        sol = fit_gauss_newton(ell1, dataclasses.replace(huge, max_escalations=0))
    assert not sol.converged and sol.info["stopped"] == "ill_conditioned"
    assert torch.isfinite(sol.predict(torch.rand(20, 1, dtype=F64))).all()


def test_overflow_stops_non_finite_with_last_finite_state():
    spec = nonlinear_elliptic(UNIT, tau=lambda u: torch.exp(30 * u), exact=u1)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        sol = fit_gauss_newton(spec, GaussNewtonConfig(n_interior=10, init="zeros"))
    assert sol.info["stopped"] == "non_finite" and not sol.converged and sol.iterations == 0
    assert torch.isfinite(sol.predict(torch.rand(5, 1, dtype=F64))).all()


def test_warns_above_functional_limit(ell1, monkeypatch):
    monkeypatch.setattr(gn, "MAX_FUNCTIONALS", 30)
    with pytest.warns(UserWarning, match="functionals"):
        fit_gauss_newton(ell1, GaussNewtonConfig(n_interior=20))


def test_float32_default_dtype_gives_float64(ell1):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        pts = torch.linspace(0.02, 0.98, 20, dtype=torch.float32)[:, None]
        sol = fit_gauss_newton(ell1, GaussNewtonConfig(points=pts))
        out = sol.predict(torch.rand(5, 1))
    finally:
        torch.set_default_dtype(old)
    assert out.dtype == F64 and sol.predictor.coef.dtype == F64 and sol.config.points.dtype == F64
    assert sol.info["final_error"] < 1e-4


def test_save_load_round_trip_and_determinism(tmp_path):
    spec = nonlinear_elliptic(SQUARE, exact=u2)
    pts = torch.rand(40, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    for kernel in (
        SE1d(0.25),
        ProductKernel([SE1d(0.2), SE1d(0.3)]),
        make_kernel("gm", n_components=3, freq_scale=2.0),
    ):
        cfg = GaussNewtonConfig(kernel=kernel, points=pts, n_interior=6, seed=5)
        sol = fit_gauss_newton(spec, cfg)
        loaded = GPSolution.load(sol.save(tmp_path / type(kernel).__name__))
        x = torch.rand(30, 2, dtype=F64)
        assert torch.equal(sol.predict(x), loaded.predict(x))
        assert torch.equal(sol.predict(x, (1, 1)), loaded.predict(x, (1, 1)))
        assert torch.equal(loaded.config.points, pts) and loaded.config.seed == 5
        assert type(loaded.config.kernel) is type(kernel) and loaded.history == sol.history
    again = fit_gauss_newton(spec, cfg)
    assert again.history == sol.history
    other = fit_gauss_newton(spec, dataclasses.replace(cfg, seed=6))
    assert other.info["J0"] != sol.info["J0"]


def test_gp_solver_front_door(ell1):
    sol = GPSolver("gn", kernel=SE1d(0.2), n_interior=20).fit(ell1)
    assert sol.method == "gn" and sol.info["final_error"] < 1e-4
    assert "GaussNewtonConfig(kernel=SE1d" in repr(sol.config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean fit emits nothing
        fit_gauss_newton(ell1, GaussNewtonConfig(n_interior=10))
