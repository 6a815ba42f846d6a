"""GCRO-DR against scipy's restarted GMRES, recycling gains, the recycle space, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from neuralops.solvers import gallery
from neuralops.solvers.recycling import GCRODR, RecycleSpace

INFO_KEYS = {
    "method",
    "stop_reason",
    "matvecs",
    "precond_applies",
    "setup_seconds",
    "rtol",
    "atol",
    "norm",
    "k_used",
    "cycles",
    "refresh_seconds",
}


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def true_rel_residual(A, x, b):
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def scipy_gmres(A, b, m, rtol, maxiter):
    """scipy's GMRES(m): final x and the number of inner (Krylov) iterations."""
    count = [0]

    def callback(_):
        count[0] += 1

    x, _ = spla.gmres(
        A, b, restart=m, rtol=rtol, maxiter=maxiter, callback=callback, callback_type="pr_norm"
    )
    return x, count[0]


@pytest.fixture(scope="module")
def cd20():
    return gallery.convection_diffusion(20, eps=0.05)


@pytest.fixture(scope="module")
def rhs400():
    return np.random.default_rng(0).standard_normal(400)


# (a) k = 0 is restarted GMRES(m)
def test_k0_converged_matches_scipy_gmres(cd20, rhs400):
    sol = GCRODR(m=15, k=0, rtol=1e-12).solve(cd20, rhs400)
    x_ref, its_ref = scipy_gmres(cd20, rhs400, 15, 1e-12, 1000)
    assert sol.converged and sol.info["k_used"] == 0
    assert rel(sol.x, x_ref) <= 1e-10
    assert abs(sol.iterations - its_ref) <= 1


@pytest.mark.parametrize("cycles", [1, 3])
def test_k0_reproduces_gmres_iterates(cd20, rhs400, cycles):
    """After a fixed number of restart cycles (far from converged) the iterates agree."""
    sol = GCRODR(m=15, k=0, rtol=1e-15, maxiter=15 * cycles).solve(cd20, rhs400)
    x_ref, its_ref = scipy_gmres(cd20, rhs400, 15, 1e-15, cycles)
    assert not sol.converged and sol.info["stop_reason"] == "maxiter"
    assert sol.iterations == its_ref == 15 * cycles
    assert rel(sol.x, x_ref) <= 1e-10


def test_k0_matches_our_gmres(cd20, rhs400):
    krylov = pytest.importorskip("neuralops.solvers.krylov")
    ours = GCRODR(m=15, k=0, rtol=1e-12).solve(cd20, rhs400)
    ref = krylov.GMRES(m=15, rtol=1e-12).solve(cd20, rhs400)
    assert rel(ours.x, ref.x) <= 1e-10
    assert abs(ours.iterations - ref.iterations) <= 1


def test_k0_never_builds_a_recycle_space(cd20, rhs400):
    solver = GCRODR(m=15, k=0)
    solver.solve(cd20, rhs400)
    assert solver.recycle.k == 0


# (b) a single system
def test_single_system_true_residual(cd20, rhs400):
    sol = GCRODR(m=20, k=5, rtol=1e-10).solve(cd20, rhs400)
    true = true_rel_residual(cd20, sol.x, rhs400)
    assert sol.converged and sol.info["stop_reason"] == "rtol"
    assert true <= 1e-10
    assert sol.residual == pytest.approx(true, rel=1e-6)
    assert sol.info["true_residuals"][-1] == pytest.approx(true * np.linalg.norm(rhs400))
    assert INFO_KEYS <= set(sol.info) and sol.info["method"] == "gcrodr"
    assert len(sol.residuals) == sol.iterations + 1 and sol.seconds > 0
    assert sol.info["cycles"] == len(sol.info["true_residuals"]) >= 2


def test_recycling_within_one_solve_beats_gmres(cd20, rhs400):
    ours = GCRODR(m=20, k=5, rtol=1e-10).solve(cd20, rhs400)
    _, its_gmres = scipy_gmres(cd20, rhs400, 20, 1e-10, 1000)
    assert ours.iterations < its_gmres


# (c) one matrix, several right-hand sides
def test_same_matrix_five_rhs():
    A = gallery.convection_diffusion(32, eps=0.5)
    rng = np.random.default_rng(1)
    bs = [1.0 + 0.3 * rng.standard_normal(A.shape[0]) for _ in range(5)]
    solver = GCRODR(m=20, k=5, rtol=1e-6)
    sols = [solver.solve(A, b) for b in bs]
    its = np.array([s.iterations for s in sols])
    gmres_its = np.mean([scipy_gmres(A, b, 20, 1e-6, 1000)[1] for b in bs[1:]])
    assert all(s.converged for s in sols)
    assert [s.info["k_used"] for s in sols] == [0, 5, 5, 5, 5]
    assert its[1:].mean() <= 0.8 * its[0]
    assert its[1:].mean() < gmres_its


# (d) a slowly varying sequence A_i = A_0 + eps_i E
def test_slowly_varying_sequence_beats_gmres40():
    A0 = gallery.convection_diffusion(40, eps=0.05)
    E = gallery.convection_diffusion(40, wind=(-0.5, 1.0), eps=1e-9)
    rng = np.random.default_rng(2)
    n = A0.shape[0]
    solver = GCRODR(m=40, k=10, rtol=1e-8)
    ours, ref = [], []
    for i in range(8):
        A = sp.csr_matrix(A0 + 0.01 * 1.01**i * E)
        b = 1.0 + 0.3 * rng.standard_normal(n)
        sol = solver.solve(A, b)
        assert sol.converged and true_rel_residual(A, sol.x, b) <= 1e-8
        ours.append(sol.iterations)
        ref.append(scipy_gmres(A, b, 40, 1e-8, 1000)[1])
    assert np.mean(ours) <= 0.85 * np.mean(ref), (ours, ref)


# (e) the recycle space invariants
def test_refresh_keeps_invariants(cd20, rhs400):
    solver = GCRODR(m=20, k=6, rtol=1e-10)
    solver.solve(cd20, rhs400)
    assert max(solver.recycle.defects(cd20)) <= 1e-10
    A2 = sp.csr_matrix(cd20 + 0.05 * sp.eye(400))
    solver.recycle.refresh(A2)
    assert solver.recycle.k == 6
    assert max(solver.recycle.defects(A2)) <= 1e-10
    sol = solver.solve(A2, rhs400)
    assert sol.converged and sol.info["k_used"] == 6
    assert max(solver.recycle.defects(A2)) <= 1e-10


def test_recycle_space_roundtrip_and_sharing(cd20, rhs400):
    first = GCRODR(m=20, k=5, rtol=1e-10)
    first.solve(cd20, rhs400)
    arrays = first.recycle.to_arrays()
    assert arrays["U"].shape == arrays["C"].shape == (400, 5)
    b2 = np.cos(np.arange(400.0))
    a = GCRODR(m=20, k=5, rtol=1e-10, recycle=RecycleSpace.from_arrays(arrays)).solve(cd20, b2)
    b = first.solve(cd20, b2)
    assert a.iterations == b.iterations and a.info["k_used"] == 5
    first.recycle.reset()
    assert first.recycle.k == 0 and first.recycle.n is None
    assert RecycleSpace.from_arrays(RecycleSpace().to_arrays()).k == 0


def test_right_preconditioning(cd20, rhs400):
    from neuralops.solvers.precond import ILU, Jacobi

    plain = GCRODR(m=20, k=5, rtol=1e-10).solve(cd20, rhs400)
    for M in (Jacobi(cd20), ILU(cd20, drop_tol=1e-2, fill_factor=2)):
        sol = GCRODR(m=20, k=5, rtol=1e-10, M=M).solve(cd20, rhs400)
        assert sol.converged and true_rel_residual(cd20, sol.x, rhs400) <= 1e-10
        assert sol.info["precond_applies"] > 0 and sol.info["norm"] == "recurrence"
    assert sol.iterations < plain.iterations  # ILU
    callable_M = GCRODR(m=20, k=5, rtol=1e-10, M=lambda r: r / cd20.diagonal())
    assert callable_M.solve(cd20, rhs400).converged


def test_make_solver_builds_gcrodr(cd20, rhs400):
    factory = pytest.importorskip("neuralops.solvers.factory")
    solver = factory.make_solver("gcrodr", preconditioner="jacobi", rtol=1e-9, m=20, k=4)
    first, second = solver.solve(cd20, rhs400), solver.solve(cd20, rhs400 + 1.0)
    assert first.converged and second.converged and second.info["k_used"] == 4


# non-convergence, trivial cases, torch
def test_never_raises_on_non_convergence(cd20, rhs400):
    sol = GCRODR(m=10, k=3, rtol=1e-12, maxiter=25).solve(cd20, rhs400)
    assert not sol.converged and sol.info["stop_reason"] == "maxiter"
    assert sol.iterations == 25 and np.isfinite(sol.x).all() and sol.message


def test_zero_rhs_and_exact_start(cd20, rhs400):
    solver = GCRODR(m=10, k=3)
    zero = solver.solve(cd20, np.zeros(400))
    assert zero.converged and zero.iterations == 0 and not zero.x.any()
    x = spla.spsolve(sp.csc_matrix(cd20), rhs400)
    exact = solver.solve(cd20, rhs400, x0=x)
    assert exact.converged and exact.iterations == 0


def test_torch_in_torch_out(cd20, rhs400):
    torch = pytest.importorskip("torch")
    sol = GCRODR(m=20, k=5, rtol=1e-10).solve(cd20, torch.as_tensor(rhs400))
    assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float64
    assert true_rel_residual(cd20, sol.x.numpy(), rhs400) <= 1e-10


def test_repr_shows_recycle_state(cd20, rhs400):
    solver = GCRODR(m=20, k=5)
    solver.solve(cd20, rhs400)
    assert "recycle=RecycleSpace(n=400, k=5)" in repr(solver)


# (f) bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"m": 10, "k": 10}, "k=10 must be < restart length m=10"),
        ({"m": 10, "k": 12}, "k=12"),
        ({"m": 0, "k": 0}, "restart length m"),
        ({"k": -1}, "recycle dimension k"),
        ({"rtol": -1.0}, "rtol"),
        ({"maxiter": 0}, "maxiter"),
    ],
)
def test_bad_configuration_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GCRODR(**kwargs)


def test_m_larger_than_n_raises():
    with pytest.raises(ValueError, match="m=40 exceeds the system size n=25"):
        GCRODR(m=40, k=5).solve(gallery.poisson((5, 5)), np.ones(25))


def test_recycle_space_of_another_size_raises(cd20, rhs400):
    solver = GCRODR(m=20, k=5)
    solver.solve(cd20, rhs400)
    A = gallery.convection_diffusion(16, eps=0.05)
    with pytest.raises(ValueError, match="size mismatch.*n=400.*n=256"):
        solver.solve(A, np.ones(256))
    with pytest.raises(ValueError, match="size mismatch"):
        solver.recycle.refresh(A)
    solver.recycle.reset()
    assert solver.solve(A, np.ones(256)).converged


def test_nonfinite_input_raises(cd20, rhs400):
    solver = GCRODR(m=10, k=3)
    bad = rhs400.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="b contains NaN"):
        solver.solve(cd20, bad)
    with pytest.raises(ValueError, match="x0 contains NaN"):
        solver.solve(cd20, rhs400, x0=bad)
    A = cd20.copy()
    A.data[0] = np.inf
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        solver.solve(A, rhs400)
    with pytest.raises(ValueError, match="b has shape"):
        solver.solve(cd20, np.ones(399))


def test_bad_recycle_arrays_raise():
    with pytest.raises(ValueError, match="one shape"):
        RecycleSpace(np.ones((5, 2)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        RecycleSpace(np.full((5, 2), np.nan), np.ones((5, 2)))
    with pytest.raises(ValueError, match="lack keys"):
        RecycleSpace.from_arrays({"U": np.ones((5, 2))})


def test_stalled_recycled_space_is_dropped_and_the_solve_still_converges():
    """A space carried over from another (indefinite) system that does not help: once the true
    residual fails to halve over ``stall_cycles`` cycles, it is dropped and the solve converges
    from where it was; the answer matches a dense solve (float64)."""
    from neuralops.solvers import gallery

    s = 24
    L = gallery.poisson((s, s)).tocsr() * (s + 1) ** 2
    I = sp.eye(s * s, format="csr")
    b = np.sin(np.arange(s * s) * 0.37) + 1.0
    g = GCRODR(m=20, k=10, rtol=1e-9, maxiter=20000, stall_cycles=2)
    g.solve((L - 40.0 * np.pi**2 * I).tocsr(), b)  # a different indefinite system
    A = (L - 57.0 * np.pi**2 * I).tocsr()  # between two eigenvalue clusters
    sol = g.solve(A, b)
    assert sol.converged and sol.info["recycle_dropped_at"] is not None
    np.testing.assert_allclose(sol.x, np.linalg.solve(A.toarray(), b), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="stall_cycles"):
        GCRODR(stall_cycles=0)
