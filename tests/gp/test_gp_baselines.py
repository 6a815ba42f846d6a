"""Reference solvers of the GP-HM benchmark: Chebyshev collocation, finite differences, PINN."""

import math

import numpy as np
import pytest
import torch

from neuralops.gp.baselines import (
    BaselineResult,
    chebyshev_collocation,
    chebyshev_nodes,
    fd_refinement,
    finite_differences,
    pinn,
)
from neuralops.pde.spec import BoxDomain, PDESpec, advection, allen_cahn, poisson

F64 = torch.float64
UNIT = BoxDomain((0.0,), (1.0,))
SQUARE = BoxDomain((0.0, 0.0), (1.0, 1.0))
XT = BoxDomain((0.0, 0.0), (1.0, 1.0), names=("x", "t"))


def sin3(x):
    return torch.sin(3 * x[:, 0])


def smooth2d(x):
    return torch.sin(math.pi * x[:, 0]) * torch.exp(x[:, 1])


# ------------------------------------------------------------------------------------ Chebyshev
def test_chebyshev_matrices_differentiate_polynomials_exactly():
    n = 12
    x, _, D, D2 = chebyshev_nodes(n, -0.5, 2.0)
    assert x[0] == -0.5 and x[-1] == 2.0 and np.all(np.diff(x) > 0)
    for k in range(n):
        p = x**k
        np.testing.assert_allclose(D @ p, k * x ** max(k - 1, 0) * (k > 0), atol=1e-10 * 2**k)
        d2 = k * (k - 1) * x ** max(k - 2, 0) * (k > 1)
        np.testing.assert_allclose(D2 @ p, d2, atol=1e-9 * 2**k)
    np.testing.assert_allclose(D2, D @ D, atol=1e-9 * np.abs(D2).max())
    assert np.abs(D.sum(axis=1)).max() < 1e-12 * np.abs(D).max()


def test_chebyshev_1d_poisson_converges_spectrally():
    spec = poisson(BoxDomain((0.0,), (2 * math.pi,)), exact=sin3)
    errs = {n: chebyshev_collocation(spec, n).rel_l2 for n in (10, 20, 40)}
    assert errs[20] < 1e-3 * errs[10]
    assert errs[40] < 1e-10
    res = chebyshev_collocation(spec, 40)
    assert isinstance(res, BaselineResult) and res.converged and res.iterations == 1
    assert res.values.shape == (300,) and res.values.dtype == F64
    assert res.rms < 1e-10 and res.info["stopped"] == "direct"


def test_chebyshev_recovers_a_polynomial_and_predicts_off_grid():
    spec = poisson(UNIT, exact=lambda x: x[:, 0] ** 5 - 2 * x[:, 0] ** 2 + 0.5)
    res = chebyshev_collocation(spec, 8)
    pts = torch.rand(50, 1, dtype=F64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.predict(pts), spec.exact(pts), atol=1e-12, rtol=0)
    assert res.rel_l2 < 1e-12


def test_chebyshev_allen_cahn_newton_is_quadratic():
    exact = lambda x: torch.sin(2 * math.pi * x[:, 0]) + 0.3 * x[:, 0]
    spec = allen_cahn(UNIT, exact=exact)
    assert not spec.is_linear
    res = chebyshev_collocation(spec, 30)
    assert res.converged and res.info["stopped"] == "tol" and res.rel_l2 < 1e-8
    e = res.history["update"]
    assert e[-1] <= 1e-12 and 3 <= res.iterations == len(e) <= 10
    pairs = [(a, b) for a, b in zip(e[1:], e[2:]) if b > 1e-13]
    assert len(pairs) >= 2
    for a, b in pairs:  # e_{k+1} <= e_k^2 before roundoff
        assert b <= a**2, e
    short = chebyshev_collocation(spec, 30, max_iter=2)
    assert (
        not short.converged
        and short.info["stopped"] == "max_iter"
        and "Newton" in short.info["message"]
    )


def test_chebyshev_2d_dense_and_fast_agree():
    spec = poisson(SQUARE, exact=smooth2d)
    dense = chebyshev_collocation(spec, 20, method="dense")
    fast = chebyshev_collocation(spec, 20, method="fast")
    assert dense.rel_l2 < 1e-9 and fast.rel_l2 < 1e-9
    torch.testing.assert_close(dense.values, fast.values, atol=1e-10, rtol=0)
    assert "Sylvester" in fast.info["linear_solver"]
    ac = allen_cahn(SQUARE, exact=smooth2d)  # variable Jacobian: GMRES path
    dense = chebyshev_collocation(ac, 14, method="dense")
    fast = chebyshev_collocation(ac, 14, method="fast")
    assert dense.converged and fast.converged and fast.rel_l2 < 1e-9
    assert max(fast.history["gmres_iterations"]) > 0
    torch.testing.assert_close(dense.values, fast.values, atol=1e-10, rtol=0)


def test_chebyshev_values_on_a_requested_grid_match_predict():
    res = chebyshev_collocation(poisson(SQUARE, exact=smooth2d), 12, eval_grid=(7, 5))
    assert res.values.shape == (7, 5) and res.eval_sizes == (7, 5)
    pts = SQUARE.grid_points((7, 5))
    torch.testing.assert_close(res.values.reshape(-1), res.predict(pts), atol=1e-13, rtol=0)


@pytest.mark.parametrize("beta", [2.0, -2.0])
def test_advection_space_time_chebyshev_uses_inflow_data(beta):
    spec = advection(beta, XT, exact=lambda x: torch.sin(x[:, 0] - beta * x[:, 1]))
    res = chebyshev_collocation(spec, 16)
    assert res.rel_l2 < 1e-6
    assert res.info["faces"] == [[0, 0 if beta > 0 else 1], [1, 0]]


# --------------------------------------------------------------------------- finite differences
def test_fd_second_order_1d_and_2d():
    one = fd_refinement(poisson(BoxDomain((0.0,), (2 * math.pi,)), exact=sin3), [33, 65, 129, 257])
    assert abs(one.order - 2.0) < 0.15, one
    two = fd_refinement(poisson(SQUARE, exact=smooth2d), [9, 17, 33, 65])
    assert abs(two.order - 2.0) < 0.15, two
    assert [n for n, _ in two.pairs] == [9, 17, 33, 65]
    assert all(r.info["nodal_rel_l2"] > 0 for r in two.results)


def test_fd_box_scheme_and_newton():
    adv = advection(2.0, XT, exact=lambda x: torch.sin(x[:, 0] - 2 * x[:, 1]))
    ref = fd_refinement(adv, [9, 17, 33, 65])
    assert abs(ref.order - 2.0) < 0.15 and "box" in ref.results[0].info["scheme"]
    ac = allen_cahn(UNIT, exact=lambda x: torch.sin(2 * math.pi * x[:, 0]) + 0.3 * x[:, 0])
    res = finite_differences(ac, 65)
    assert res.converged and res.rel_l2 < 2e-3 and res.iterations <= 8


def test_without_exact_solution_errors_are_none():
    spec = poisson(UNIT, source=lambda x: torch.ones(x.shape[0], dtype=F64))
    res = finite_differences(spec, 17)
    assert res.rel_l2 is None and res.rms is None
    torch.testing.assert_close(
        res.predict(torch.tensor([[0.5]])), torch.tensor([-0.125], dtype=F64)
    )


# ------------------------------------------------------------------------------------------ PINN


def test_pinn_tiny_run_reduces_the_loss(one_thread):
    spec = poisson(UNIT, exact=lambda x: torch.sin(math.pi * x[:, 0]))
    res = pinn(spec, 32, steps=300, width=20, seed=0)
    loss = res.history["loss"]
    assert len(loss) == 301 and loss[-1] < 0.1 * loss[0]
    assert res.values.dtype == F64 and bool(torch.isfinite(res.values).all())
    assert math.isfinite(res.rel_l2) and res.info["oracle_min_error"] <= res.rel_l2
    assert res.history["eval_step"][0] == 0 and res.history["eval_step"][-1] == 300
    assert res.predict(torch.tensor([[0.25]], dtype=torch.float32)).dtype == F64
    again = pinn(spec, 32, steps=5, width=20, seed=0, rff=(4, 1.0))
    assert (
        again.history["loss"]
        == pinn(spec, 32, steps=5, width=20, seed=0, rff=(4, 1.0)).history["loss"]
    )


# ------------------------------------------------------------------------------------ bad input
def _third_order():
    return PDESpec(
        domain=UNIT,
        jet=((3,),),
        operator=lambda j, x: j[:, 0],
        source=lambda x: torch.zeros(x.shape[0], dtype=F64),
        boundary=lambda x: torch.zeros(x.shape[0], dtype=F64),
    )


def test_bad_input_raises():
    p1 = poisson(UNIT, exact=sin3)
    cube = poisson(BoxDomain((0.0,) * 3, (1.0,) * 3), source=lambda x: x[:, 0])
    for solve in (chebyshev_collocation, finite_differences):
        with pytest.raises(ValueError, match="1-d and 2-d"):
            solve(cube, 8)
        with pytest.raises(ValueError, match="order at most 2"):
            solve(_third_order(), 8)
        for bad in (3, 8.0, (8, 8)):
            with pytest.raises(ValueError, match="n: expected"):
                solve(p1, bad)
        with pytest.raises(ValueError, match="PDESpec"):
            solve("p1-sin", 8)
    with pytest.raises(ValueError, match="method"):
        chebyshev_collocation(p1, 8, method="lu")
    with pytest.raises(ValueError, match="2-d"):
        chebyshev_collocation(p1, 8, method="fast")
    with pytest.raises(ValueError, match="max_iter"):
        chebyshev_collocation(p1, 8, max_iter=0)
    with pytest.raises(ValueError, match="two distinct sizes"):
        fd_refinement(p1, [9, 9])
    outflow = advection(2.0, XT, exact=lambda x: torch.sin(x[:, 0]), boundary=None)
    outflow = PDESpec(
        domain=XT, jet=outflow.jet, operator=outflow.operator, source=outflow.source,
        boundary=outflow.boundary, boundary_faces=((0, 1), (1, 0)),
    )  # fmt: skip
    with pytest.raises(ValueError, match="inflow"):
        chebyshev_collocation(outflow, 8)
    swirl = PDESpec(
        domain=XT, jet=((1, 0), (0, 1)), operator=lambda j, x: (x[:, 0] - 0.5) * j[:, 0] + j[:, 1],
        source=lambda x: torch.zeros(x.shape[0], dtype=F64),
        boundary=lambda x: torch.zeros(x.shape[0], dtype=F64),
    )  # fmt: skip
    with pytest.raises(ValueError, match="changes sign"):
        finite_differences(swirl, 8)
    burgers0 = PDESpec(
        domain=XT, jet=((0, 0), (1, 0), (0, 1)), operator=lambda j, x: j[:, 0] * j[:, 1] + j[:, 2],
        source=lambda x: torch.zeros(x.shape[0], dtype=F64),
        boundary=lambda x: torch.zeros(x.shape[0], dtype=F64),
    )  # fmt: skip
    with pytest.raises(ValueError, match="nonlinear first-order"):
        chebyshev_collocation(burgers0, 8)
    with pytest.raises(ValueError, match="steps"):
        pinn(p1, 8, steps=0)
    with pytest.raises(ValueError, match="lr"):
        pinn(p1, 8, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="rff"):
        pinn(p1, 8, steps=1, rff=(0, 1.0))
    with pytest.raises(ValueError, match="points"):
        chebyshev_collocation(p1, 8).predict(torch.zeros(3, 2))
