"""SKR ordering (greedy nearest-neighbour tour) and sequence solves written back in place."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from neuralops.solvers import gallery
from neuralops.solvers.recycling import GCRODR
from neuralops.solvers.sorting import SequenceResult, skr_order, solve_sequence


def darcy(c, N=24):
    """Flux-form ``-div(a grad u)`` (5-point, harmonic face averages), log a = 3 sine modes."""
    x = np.arange(N + 2) / (N + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    sx, sy = np.sin(np.pi * X), np.sin(np.pi * Y)
    a = np.exp(
        c[0] * sx * sy + c[1] * np.sin(2 * np.pi * X) * sy + c[2] * sx * np.sin(2 * np.pi * Y)
    )
    ax = 2 / (1 / a[:-1, 1:-1] + 1 / a[1:, 1:-1])  # (N+1, N) x-faces
    ay = 2 / (1 / a[1:-1, :-1] + 1 / a[1:-1, 1:])  # (N, N+1) y-faces
    idx = np.arange(N * N).reshape(N, N)
    diag = (ax[:-1] + ax[1:] + ay[:, :-1] + ay[:, 1:]).ravel()
    rows = [idx.ravel(), idx[1:].ravel(), idx[:-1].ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel()]
    cols = [idx.ravel(), idx[:-1].ravel(), idx[1:].ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel()]
    off_x, off_y = -ax[1:-1].ravel(), -ay[:, 1:-1].ravel()
    vals = [diag, off_x, off_x, off_y, off_y]
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(N * N, N * N)
    )


@pytest.fixture(scope="module")
def darcy_systems():
    coeffs = np.random.default_rng(0).uniform(-1.0, 1.0, (20, 3))
    return [(darcy(c), np.ones(24 * 24)) for c in coeffs], coeffs


# ordering
@pytest.mark.parametrize("block", [2000, 16])
@pytest.mark.parametrize("metric", ["fro", "l1", "linf"])
def test_order_is_a_permutation_starting_at_start(block, metric):
    feats = np.random.default_rng(1).standard_normal((100, 4, 3))
    order = skr_order(feats, start=7, metric=metric, block=block)
    assert order.dtype == np.int64 and order[0] == 7
    assert np.array_equal(np.sort(order), np.arange(100))


@pytest.mark.parametrize("block", [2000, 16, 7])
@pytest.mark.parametrize("metric", ["fro", "l1", "linf"])
def test_points_on_a_line_give_a_monotone_order(block, metric):
    rng = np.random.default_rng(2)
    t = rng.permutation(np.linspace(0.0, 1.0, 60)) + rng.uniform(0, 1e-3, 60)
    feats = t[:, None] * np.array([1.0, -2.0, 0.5])
    order = skr_order(feats, start=int(np.argmin(t)), metric=metric, block=block)
    assert np.all(np.diff(t[order]) > 0)
    down = skr_order(list(feats), start=int(np.argmax(t)), metric=metric, block=block)
    assert np.all(np.diff(t[down]) < 0)


def test_callable_metric_matches_fro():
    feats = list(np.random.default_rng(3).standard_normal((40, 5)))
    order = skr_order(feats, metric=lambda a, b: float(np.linalg.norm(a - b)))
    assert np.array_equal(order, skr_order(feats))
    blocked = skr_order(feats, metric=lambda a, b: float(np.linalg.norm(a - b)), block=10)
    assert np.array_equal(blocked, skr_order(feats, block=10))


def test_nan_feature_names_the_system():
    feats = [np.ones((8, 8)) * i for i in range(10)]
    feats[7][2, 3] = np.nan
    with pytest.raises(ValueError, match="system 7"):
        skr_order(feats)
    with pytest.raises(ValueError, match="system 7"):
        solve_sequence([(np.eye(2), np.ones(2))] * 10, solver=GCRODR(m=2, k=1), features=feats)


def test_bad_order_arguments_raise():
    with pytest.raises(ValueError, match="system 2 have shape"):
        skr_order([np.ones(3), np.ones(3), np.ones(4)])
    with pytest.raises(ValueError, match="metric must be one of"):
        skr_order(np.ones((3, 2)), metric="l2")
    with pytest.raises(ValueError, match="start must be an index"):
        skr_order(np.ones((3, 2)), start=3)
    systems = [(np.eye(3), np.ones(3))] * 3
    with pytest.raises(ValueError, match="order must be 'skr'"):
        solve_sequence(systems, order="sorted", solver=GCRODR(m=2, k=1))
    with pytest.raises(ValueError, match="permutation of range"):
        solve_sequence(systems, order=[0, 0, 1], solver=GCRODR(m=2, k=1))
    assert skr_order(np.empty((0, 3))).shape == (0,)


# solving sequences
def test_written_back_results_equal_an_unsorted_solve(darcy_systems):
    systems, coeffs = darcy_systems
    systems, coeffs = systems[:8], coeffs[:8]
    skr = solve_sequence(
        systems, order="skr", solver=GCRODR(m=30, k=10, rtol=1e-10), features=coeffs
    )
    given = solve_sequence(systems, order="given", solver=GCRODR(m=30, k=10, rtol=1e-10))
    assert not np.array_equal(skr.order, np.arange(8))
    assert skr.converged_count == given.converged_count == 8
    for i, (A, b) in enumerate(systems):
        x_direct = spla.spsolve(sp.csc_matrix(A), b)
        assert np.linalg.norm(skr.solutions[i].x - x_direct) <= 1e-7 * np.linalg.norm(x_direct)
        assert np.linalg.norm(skr.solutions[i].x - given.solutions[i].x) <= 1e-7 * np.linalg.norm(
            x_direct
        )
    assert skr.max_residual <= 1e-10 and np.all(skr.true_residuals > 0)


def test_skr_order_needs_fewer_iterations_than_random(darcy_systems):
    systems, coeffs = darcy_systems
    skr = solve_sequence(systems, order="skr", solver=GCRODR(m=30, k=10), features=coeffs)
    random_totals = [
        solve_sequence(systems, order="random", solver=GCRODR(m=30, k=10), rng=seed)
        for seed in range(2)
    ]
    assert skr.converged_count == 20
    assert all(skr.total_iterations < r.total_iterations for r in random_totals), (
        skr.total_iterations,
        [r.total_iterations for r in random_totals],
    )


def test_summary_and_record():
    A0 = gallery.convection_diffusion(10, eps=0.1)
    systems = [(A0 * (1.0 + 0.02 * i), np.ones(100)) for i in range(5)]
    result = solve_sequence(systems, order="random", solver=GCRODR(m=20, k=4), rng=0)
    assert isinstance(result, SequenceResult) and result.method == "random"
    again = solve_sequence(systems, order="random", solver=GCRODR(m=20, k=4), rng=0)
    assert np.array_equal(result.order, again.order)
    s = result.summary
    assert s["systems"] == 5 and s["converged"] == 5
    assert s["total_iterations"] == sum(sol.iterations for sol in result.solutions)
    assert s["mean_iterations"] == pytest.approx(s["total_iterations"] / 5)
    assert s["seconds"] >= s["sort_seconds"] >= 0 and s["max_true_residual"] <= 1e-8
    assert s["total_matvecs"] >= s["total_iterations"]
    assert "converged=5/5" in repr(result)


def test_default_features_from_the_matrices():
    A0 = gallery.convection_diffusion(10, eps=0.1)
    scales = [0.0, 0.3, 0.1, 0.2]
    systems = [(A0 + s * sp.eye(100), np.ones(100)) for s in scales]
    result = solve_sequence(systems, solver=GCRODR(m=20, k=4))
    assert result.order.tolist() == [0, 2, 3, 1]
    mixed = systems + [(gallery.poisson((5, 20)), np.ones(100))]
    with pytest.raises(ValueError, match="system 4 has another matrix size or sparsity"):
        solve_sequence(mixed, solver=GCRODR(m=20, k=4))


class Problem:
    def __init__(self, A, b):
        self.A, self.b = A, b


def test_objects_with_A_b_and_per_chain_reset():
    A0 = gallery.convection_diffusion(10, eps=0.1)
    systems = [Problem(A0 * (1.0 + 0.01 * i), np.ones(100)) for i in range(4)]
    solver = GCRODR(m=20, k=4)
    first = solve_sequence(systems, order="given", solver=solver)
    assert [s.info["k_used"] for s in first.solutions] == [0, 4, 4, 4]
    chain = solve_sequence(systems[2:], order=[1, 0], solver=solver)  # fresh recycle space
    assert chain.method == "explicit" and chain.solutions[1].info["k_used"] == 0
    cont = solve_sequence(systems[:1], order="given", solver=solver, reset=False)
    assert cont.solutions[0].info["k_used"] == 4


def test_failing_system_is_named():
    A0 = gallery.convection_diffusion(10, eps=0.1)
    b_bad = np.ones(100)
    b_bad[5] = np.inf
    systems = [(A0, np.ones(100)), (A0, np.ones(100)), (A0, b_bad)]
    with pytest.raises(ValueError, match="b contains NaN") as info:
        solve_sequence(systems, order="given", solver=GCRODR(m=20, k=4))
    assert any("system 2" in note for note in info.value.__notes__)


def test_any_solver_with_solve_works():
    krylov = pytest.importorskip("neuralops.solvers.krylov")
    A0 = gallery.convection_diffusion(10, eps=0.1)
    systems = [(A0, np.ones(100) * (i + 1)) for i in range(3)]
    result = solve_sequence(systems, order="given", solver=krylov.GMRES(m=20))
    assert result.converged_count == 3


def test_preconditioned_gcrodr_chain_is_reset():
    factory = pytest.importorskip("neuralops.solvers.factory")
    A0 = gallery.convection_diffusion(10, eps=0.1)
    systems = [(A0 * (1.0 + 0.01 * i), np.ones(100)) for i in range(3)]
    solver = factory.make_solver("gcrodr", preconditioner="jacobi", m=20, k=4)
    for _ in range(2):
        result = solve_sequence(systems, order="given", solver=solver)
        assert [s.info["k_used"] for s in result.solutions] == [0, 4, 4]
        assert result.converged_count == 3
