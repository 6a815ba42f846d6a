"""Darcy family: convergence order, SPD structure, agreement with the 5-point Laplacian and with a
loop-by-loop assembly, stored shapes, and recipe validation."""

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from neuralops.data import RecipeError
from neuralops.pde.base import GridConfig
from neuralops.pde.darcy import DarcyFamily, darcy_operator
from neuralops.pde.grf import GRF, Transform, Uniform


def _family(size=(17, 17), stride=2, params=None, options=None) -> DarcyFamily:
    return DarcyFamily.from_config(GridConfig(size, stride), params or {}, options or {})


def test_manufactured_second_order():
    ns = np.array([16, 32, 64])
    errors = np.array([DarcyFamily.manufactured(int(n)) for n in ns])
    order = -np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert order >= 1.9, (errors, order)
    assert errors[-1] < 1e-3


def test_symmetric_positive_definite():
    a = GRF(2.0, 3.0, boundary="neumann", transform=Transform.threshold(12, 3)).sample(
        np.random.default_rng(0), (9, 11)
    )
    A = darcy_operator(a)
    assert A.shape == (7 * 9, 7 * 9) and A.has_sorted_indices
    assert abs(A - A.T).max() == 0
    eig = np.linalg.eigvalsh(A.toarray())
    assert eig.min() > 0
    problem = _family((9, 11), 2).assemble({"a": a})
    assert problem.meta["spd"] and problem.b.shape == (63,)


def test_matches_loop_assembly():
    """An independent node-by-node assembly of the same FV scheme, on a non-square grid."""
    rng = np.random.default_rng(1)
    sx, sy = 7, 6
    a = np.exp(rng.standard_normal((sx, sy)))
    hx, hy = 1 / (sx - 1), 1 / (sy - 1)
    harm = lambda p, q: 2 * p * q / (p + q)
    n = (sx - 2) * (sy - 2)
    ref = np.zeros((n, n))
    for i in range(1, sx - 1):
        for j in range(1, sy - 1):
            row = (i - 1) * (sy - 2) + (j - 1)
            for di, dj, h in ((1, 0, hx), (-1, 0, hx), (0, 1, hy), (0, -1, hy)):
                w = harm(a[i, j], a[i + di, j + dj]) / h**2
                ref[row, row] += w
                if 1 <= i + di <= sx - 2 and 1 <= j + dj <= sy - 2:
                    ref[row, (i + di - 1) * (sy - 2) + (j + dj - 1)] -= w
    np.testing.assert_allclose(darcy_operator(a).toarray(), ref, rtol=1e-14)


def test_constant_coefficient_is_five_point_laplacian():
    s = 13
    h = 1 / (s - 1)
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(s - 2, s - 2)) / h**2
    lap = sp.kron(T, sp.eye(s - 2)) + sp.kron(sp.eye(s - 2), T)
    A = darcy_operator(np.full((s, s), 2.5))
    assert abs(A - 2.5 * lap).max() < 1e-10 * abs(lap).max()
    # u for a constant a is the Poisson solution scaled by 1 / a
    u = spla.spsolve(A.tocsc(), np.ones(A.shape[0]))
    np.testing.assert_allclose(2.5 * u, spla.spsolve(lap.tocsc(), np.ones(A.shape[0])), rtol=1e-12)


def test_fields_and_stride_shapes():
    fam = _family((17, 17), 2)
    assert fam.spatial_dims == ["x", "y"]
    specs = {f.name: f for f in fam.field_specs()}
    assert specs["a"].role == "input" and specs["u"].role == "target"
    assert specs["a"].shape == specs["u"].shape == (9, 9)
    assert specs["u"].dims == ("sample", "x", "y")
    np.testing.assert_allclose(fam.coords()["x"], np.linspace(0, 1, 9))
    params = fam.sample_params(np.random.default_rng(3))
    assert params["a"].shape == (17, 17) and set(np.unique(params["a"])) <= {3.0, 12.0}
    problem = fam.assemble(params)
    x = spla.spsolve(problem.A.tocsc(), problem.b)
    fields, extra = fam.fields_from_solution(params, x)
    assert extra == {}
    assert fields["a"].shape == fields["u"].shape == (9, 9)
    np.testing.assert_array_equal(fields["a"], params["a"][::2, ::2])
    u = fields["u"]
    assert np.all(u[[0, -1], :] == 0) and np.all(u[:, [0, -1]] == 0) and np.all(u[1:-1, 1:-1] > 0)
    np.testing.assert_allclose(u[4, 4], x.reshape(15, 15)[7, 7], rtol=1e-6)  # node (8, 8)
    with pytest.raises(ValueError, match="expected"):
        fam.fields_from_solution(params, x[:-1])


def test_solve_records_the_true_residual():
    direct = SimpleNamespace(
        solve=lambda A, b: SimpleNamespace(
            x=spla.spsolve(A.tocsc(), b), converged=True, iterations=1, message=""
        )
    )
    fam = _family((9, 9), 1, options={"forcing": 2.0})
    result = fam.solve(fam.sample_params(np.random.default_rng(0)), direct)
    assert not result.failed and result.record.residual < 1e-12
    assert result.fields["u"].shape == (9, 9)


def test_sampling_is_deterministic_and_sort_features():
    fam = _family(
        (33, 33), 2, params={"a": {"sampler": "grf", "alpha": 2.5, "tau": 7, "transform": "exp"}}
    )
    assert fam.coefficient == GRF(2.5, 7.0, boundary="neumann", transform=Transform.exp())
    p, q = (fam.sample_params(np.random.default_rng(11))["a"] for _ in range(2))
    assert np.array_equal(p, q) and np.all(p > 0)
    feats = fam.sort_features({"a": p})
    assert feats.shape == (64,) and np.all(np.isfinite(feats))
    const = fam.sort_features({"a": np.full((33, 33), 4.0)})
    assert const[0] == pytest.approx(4.0) and np.allclose(const[1:], 0, atol=1e-12)


def test_defaults_are_fno_and_scalar_coefficients():
    fam = _family()
    assert fam.coefficient == GRF(
        2.0, 3.0, boundary="neumann", transform=Transform.threshold(12.0, 3.0)
    )
    assert fam.forcing == 1.0
    const = _family(params={"a": {"sampler": "uniform", "low": 1.0, "high": 2.0}})
    assert const.coefficient == Uniform(1.0, 2.0)
    a = const.sample_params(np.random.default_rng(0))["a"]
    assert a.shape == (17, 17) and np.ptp(a) == 0 and 1 <= a[0, 0] < 2


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"size": (17, 17, 17)}, "'dataset.grid.size' must have 2 entries for darcy"),
        ({"size": (17, 2)}, "'dataset.grid.size' must be integers >= 3"),
        (
            {"size": (17, 17), "stride": 3},
            "'dataset.grid.store_stride' = 3 must divide size - 1 = 16",
        ),
        ({"params": {"b": {}}}, "unknown key 'params.b'"),
        ({"options": {"forcng": 1.0}}, "unknown key 'pde.forcng'; did you mean 'forcing'?"),
        ({"options": {"forcing": "1"}}, "'pde.forcing' must be a number"),
        (
            {"params": {"a": {"sampler": "grf", "alpah": 2.0}}},
            "unknown key 'params.a.alpah'; did you mean 'alpha'?",
        ),
        (
            {"params": {"a": {"sampler": "grf", "alpha": 2.0, "tau": 3.0}}},
            "'params.a' must give a positive coefficient",
        ),
        (
            {"params": {"a": {"sampler": "grf", "transform": {"threshold": [1.0, -1.0]}}}},
            "'params.a' must give a positive coefficient",
        ),
        (
            {"params": {"a": {"sampler": "uniform", "low": -1.0, "high": 1.0}}},
            "'params.a' must give a positive coefficient",
        ),
    ],
)
def test_recipe_validation(kwargs, needle):
    args = {"size": (17, 17), "stride": 2, **kwargs}
    with pytest.raises(RecipeError) as err:
        _family(args["size"], args["stride"], args.get("params"), args.get("options"))
    assert needle in str(err.value)


def test_stride_error_lists_valid_strides():
    with pytest.raises(RecipeError, match=r"valid strides for \[65, 33\]: \[1, 2, 4, 8, 16, 32\]"):
        _family((65, 33), 3)
