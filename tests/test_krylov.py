"""CG/PCG and GMRES against scipy and dense solves, Solution records, bad input, torch in/out."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from neuralops.solvers import (
    CG,
    GMRES,
    Direct,
    Preconditioned,
    as_operator,
    cg,
    gallery,
    gmres,
    make_preconditioner,
    make_solver,
    pcg,
)

INFO_KEYS = {
    "method",
    "stop_reason",
    "matvecs",
    "precond_applies",
    "setup_seconds",
    "rtol",
    "atol",
    "norm",
}


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def spd():
    return gallery.random_sparse(300, 0.02, symmetric=True, rng=1)


@pytest.fixture(scope="module")
def nonsym():
    return gallery.random_sparse(300, 0.02, symmetric=False, rng=2)


@pytest.fixture(scope="module")
def rhs():
    return np.random.default_rng(3).standard_normal(300)


def test_cg_agrees_with_scipy(spd, rhs):
    sol = cg(spd, rhs, rtol=1e-12)
    x_ref, info = spla.cg(spd, rhs, rtol=1e-12)
    assert info == 0 and sol.converged
    assert rel(sol.x, x_ref) <= 1e-10
    assert rel(sol.x, spla.spsolve(spd.tocsc(), rhs)) <= 1e-10


def test_gmres_agrees_with_scipy(nonsym, rhs):
    sol = gmres(nonsym, rhs, m=20, rtol=1e-12)
    x_ref, info = spla.gmres(nonsym, rhs, rtol=1e-12, restart=20)
    assert info == 0 and sol.converged
    assert rel(sol.x, x_ref) <= 1e-10
    A = gallery.convection_diffusion(12, eps=0.2)
    b = np.ones(A.shape[0])
    sol = gmres(A, b, m=30, rtol=1e-12)
    x_ref, info = spla.gmres(A, b, rtol=1e-12, restart=30)
    assert info == 0 and rel(sol.x, x_ref) <= 1e-10


def test_pcg_agrees_with_scipy_pcg(rhs, spd):
    M = make_preconditioner("jacobi", spd)
    sol = pcg(spd, rhs, M, rtol=1e-12)
    x_ref, _ = spla.cg(spd, rhs, rtol=1e-12, M=sp.diags(M.inv_diag))
    assert sol.info["method"] == "pcg" and rel(sol.x, x_ref) <= 1e-10


@pytest.mark.parametrize("k", [3, 6])
def test_cg_finite_termination_with_k_distinct_eigenvalues(k):
    eigs = np.repeat(np.arange(1.0, k + 1) ** 1.5, 80 // k + 1)[:80]
    A = gallery.spd_with_eigenvalues(eigs, rng=k)
    b = np.random.default_rng(k).standard_normal(80)
    sol = cg(A, b, rtol=1e-10)
    assert sol.converged and sol.iterations <= k


@pytest.mark.parametrize("m", [40, 60])
def test_gmres_with_m_at_least_n_is_a_direct_solve(m):
    A = np.random.default_rng(5).standard_normal((40, 40)) + 8 * np.eye(40)
    b = np.random.default_rng(6).standard_normal(40)
    sol = gmres(A, b, m=m, rtol=1e-13)
    assert sol.converged and sol.info["cycles"] == 1 and sol.iterations <= 40
    assert rel(sol.x, np.linalg.solve(A, b)) <= 1e-10


@pytest.mark.parametrize("m", [5, 20])
def test_gmres_residual_history_is_monotone(m):
    A = gallery.convection_diffusion(16, eps=0.05)
    sol = gmres(A, np.ones(A.shape[0]), m=m, rtol=1e-9)
    res = sol.residuals
    assert sol.converged and sol.info["cycles"] > 1
    assert np.all(np.diff(res) <= 1e-12 * res[0])
    assert res[-1] <= 1e-9 * np.linalg.norm(np.ones(A.shape[0]))


@pytest.mark.parametrize(
    "solver, M",
    [(CG(), None), (CG(), "ic0"), (GMRES(m=10), None), (GMRES(m=10, flexible=True), "ilu")],
)
def test_solution_record_is_consistent(solver, M):
    A = gallery.poisson((12, 12))
    b = np.random.default_rng(0).random(144)
    sol = solver.solve(A, b, M=None if M is None else make_preconditioner(M, A))
    assert sol.converged and sol.seconds > 0 and sol.iterations > 0
    assert len(sol.residuals) == sol.iterations + 1
    assert INFO_KEYS <= set(sol.info) and sol.info["stop_reason"] == "rtol"
    true = np.linalg.norm(b - A @ sol.x)
    assert sol.residuals[-1] == pytest.approx(true, rel=1e-8)
    assert sol.residual == pytest.approx(true / np.linalg.norm(b), rel=1e-8)
    assert sol.residual <= 1e-8 and sol.residuals[0] == pytest.approx(np.linalg.norm(b))
    assert sol.info["matvecs"] >= sol.iterations
    if M is not None:
        assert sol.info["precond_applies"] >= sol.iterations and sol.info["setup_seconds"] > 0


def test_zero_rhs_and_good_x0():
    A = gallery.poisson((6, 6))
    for solver in (CG(), GMRES(), Direct()):
        sol = solver.solve(A, np.zeros(36))
        assert sol.converged and sol.iterations == 0 and not sol.x.any()
    x = np.linalg.solve(A.toarray(), np.ones(36))
    for solver in (CG(rtol=1e-8), GMRES(rtol=1e-8)):
        sol = solver.solve(A, np.ones(36), x0=x)
        assert sol.converged and sol.iterations == 0 and len(sol.residuals) == 1


def test_maxiter_returns_unconverged_record():
    A = gallery.poisson((16, 16))
    for solver in (CG(maxiter=3), GMRES(m=2, maxiter=5)):
        sol = solver.solve(A, np.ones(256))
        assert not sol.converged and sol.stop_reason == "maxiter" and "maxiter" in sol.message
        assert sol.iterations == solver.maxiter and np.isfinite(sol.x).all()


BAD_SOLVERS = [
    (lambda: CG(rtol=-1.0), "rtol"),
    (lambda: CG(atol=-1.0), "atol"),
    (lambda: CG(maxiter=0), "maxiter"),
    (lambda: CG(replace_every=0), "replace_every"),
    (lambda: GMRES(m=0), "restart length m"),
    (lambda: GMRES(rtol=float("nan")), "rtol"),
    (lambda: GMRES(maxiter=-3), "maxiter"),
]


@pytest.mark.parametrize("build, word", BAD_SOLVERS)
def test_bad_hyperparameters_raise(build, word):
    with pytest.raises(ValueError, match=word):
        build()


def _bad_inputs():
    A = gallery.poisson((4, 4)).toarray()
    b = np.ones(16)
    nan_A = A.copy()
    nan_A[3, 3] = np.nan
    inf_b = b.copy()
    inf_b[0] = np.inf
    nan_x0 = np.zeros(16)
    nan_x0[5] = np.nan
    return [
        ((np.ones((3, 4)), np.ones(3), None), "square"),
        ((A, np.ones(15), None), "b has shape"),
        ((nan_A, b, None), "A contains NaN"),
        ((sp.csr_matrix(nan_A), b, None), "A contains NaN"),
        ((A, inf_b, None), "b contains NaN"),
        ((A, b, nan_x0), "x0 contains NaN"),
        ((A, b, np.zeros(3)), "x0 has shape"),
        ((A, b.astype(complex), None), "b is complex"),
    ]


@pytest.mark.parametrize("args, word", _bad_inputs())
@pytest.mark.parametrize("solver", [CG(), GMRES(), Direct()], ids=["cg", "gmres", "direct"])
def test_bad_input_raises_value_error_naming_it(solver, args, word):
    A, b, x0 = args
    with pytest.raises(ValueError, match=word):
        solver.solve(A, b, x0=x0)


def test_cg_refuses_non_spd():
    b = np.ones(64)
    with pytest.raises(ValueError, match="not symmetric positive definite"):
        cg(gallery.convection_diffusion(8), b)
    with pytest.raises(ValueError, match="not symmetric positive definite"):
        cg(-gallery.poisson((8, 8)), b)
    A = gallery.poisson((8, 8))
    with pytest.raises(ValueError, match="tagged"):  # known not symmetric: refused even unchecked
        CG(check_spd=False).solve(as_operator(A, symmetric=False), b)
    N = gallery.convection_diffusion(8)
    with pytest.raises(ValueError, match="random"):
        cg(as_operator(lambda v: N @ v, n=64), b)
    assert cg(as_operator(lambda v: A @ v, n=64, spd=True), b).converged


def test_breakdown_returns_finite_x_with_stop_reason():
    A = np.diag([1.0, -1.0])
    sol = CG(check_spd=False).solve(A, np.array([1.0, 1.0]))
    assert not sol.converged and sol.stop_reason == "breakdown" and "p^T A p" in sol.message
    assert np.isfinite(sol.x).all() and sol.iterations == 0
    bad = CG().solve(gallery.poisson((4, 4)), np.ones(16), M=lambda r: r * np.nan)
    assert bad.stop_reason == "nonfinite" and np.isfinite(bad.x).all()
    rot = np.array([[0.0, 1.0], [-1.0, 0.0]])  # GMRES(1) stagnates on a rotation
    sol = GMRES(m=1).solve(rot, np.array([1.0, 0.0]))
    assert not sol.converged and sol.stop_reason == "breakdown" and "stagnated" in sol.message
    assert np.isfinite(sol.x).all()


def test_nonsymmetric_preconditioner_warns_once_in_pcg():
    A = gallery.poisson((10, 10))
    with pytest.warns(UserWarning, match="GMRES") as record:
        CG().solve(A, np.ones(100), M=make_preconditioner("ilu", A))
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CG().solve(A, np.ones(100), M=make_preconditioner("ic0", A))


def test_flexible_gmres_matches_gmres_for_a_fixed_preconditioner():
    A = gallery.convection_diffusion(16, eps=0.02)
    b = np.random.default_rng(1).random(A.shape[0])
    M = make_preconditioner("ilu", A, drop_tol=1e-2, fill_factor=2)
    s1 = GMRES(m=15, rtol=1e-11).solve(A, b, M=M)
    s2 = GMRES(m=15, rtol=1e-11, flexible=True).solve(A, b, M=M)
    assert s1.converged and s2.converged and rel(s2.x, s1.x) <= 1e-9
    assert (
        s2.info["method"] == "fgmres" and s1.iterations < gmres(A, b, m=15, rtol=1e-11).iterations
    )


@pytest.mark.filterwarnings("ignore:Sparse")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_in_torch_out(dtype):
    A = gallery.poisson((10, 10))
    b = np.random.default_rng(2).random(100)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    crow, col = torch.from_numpy(A.indptr), torch.from_numpy(A.indices)
    At = torch.sparse_csr_tensor(crow, col, torch.from_numpy(A.data).to(dtype), size=A.shape)
    for solver, M in [
        (CG(rtol=rtol), None),
        (CG(rtol=rtol), "jacobi"),
        (GMRES(rtol=rtol, m=20), None),
    ]:
        ref = solver.solve(A, b, M=None if M is None else make_preconditioner(M, A))
        for AA in (A, At):
            Mx = None if M is None else make_preconditioner(M, A)
            sol = solver.solve(AA, torch.as_tensor(b, dtype=dtype), M=Mx)
            assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == dtype
            assert sol.converged and sol.info["backend"] == "torch"
            assert rel(sol.x.double().numpy(), ref.x) <= tol


def test_make_solver_names_and_composition():
    A = gallery.poisson((8, 8))
    b = np.ones(64)
    for method in ("direct", "cg", "pcg", "gmres"):
        sol = make_solver(method, rtol=1e-10).solve(A, b)
        assert sol.converged and rel(A @ sol.x, b) <= 1e-9, method
    s = make_solver("gmres", preconditioner="ilu", m=5, rtol=1e-10)
    assert isinstance(s, Preconditioned) and s.solver.m == 5
    assert s.solve(A, b).info["preconditioner"] == "ilu"
    assert make_solver("pcg").preconditioner == "jacobi"
    with pytest.raises(ValueError, match="choose one of"):
        make_solver("bicgstab")
    with pytest.raises(ValueError, match="choose one of"):
        make_solver("cg", preconditioner="ic1")


def test_direct_factorization_reuse_and_singular():
    A = gallery.convection_diffusion(10)
    lu = Direct().factorize(A)
    for seed in range(3):
        b = np.random.default_rng(seed).random(100)
        sol = lu.solve(b)
        assert sol.converged and sol.info["stop_reason"] == "direct" and rel(A @ sol.x, b) < 1e-12
        assert sol.info["setup_seconds"] == lu.setup_seconds > 0
    S = sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 1.0]]))
    sol = Direct().solve(S, np.ones(2))
    assert not sol.converged and np.isfinite(sol.x).all() and "singular" in sol.message
    with pytest.raises(ValueError, match="singular"):
        Direct().factorize(S)


def test_gallery_matrices_have_their_properties():
    P = gallery.poisson((5, 6, 7))
    assert P.shape == (210, 210) and abs(P - P.T).max() == 0
    assert np.linalg.eigvalsh(gallery.poisson((6, 6)).toarray()).min() > 0
    C = gallery.convection_diffusion(6)
    assert abs(C - C.T).max() > 0
    H = np.linalg.eigvalsh(gallery.shifted_laplacian((10, 10), k=12.0).toarray())
    assert H.min() < 0 < H.max()
    An = gallery.anisotropic(8, eps=0.01, theta=0.5).toarray()
    assert np.allclose(An, An.T) and np.linalg.eigvalsh(An).min() > 0
    e = np.linalg.eigvalsh(gallery.random_spd(30, cond=50.0, rng=0))
    assert e.max() / e.min() == pytest.approx(50.0)
    assert gallery.from_spec("poisson:4x5").shape == (20, 20)
    with pytest.raises(ValueError, match="unknown gallery"):
        gallery.from_spec("laplace:4x4")


def test_direct_orders_by_the_symmetric_pattern_when_it_can():
    """``permc_spec="auto"``: minimum degree on A^T + A for a symmetric pattern (also with
    nonsymmetric values), COLAMD otherwise; the solution agrees with a dense solve either way."""
    import scipy.sparse as sp

    from neuralops.solvers import Direct, gallery

    K = gallery.convection_diffusion(12).tocsr()  # symmetric pattern, nonsymmetric values
    b = np.arange(1.0, K.shape[0] + 1)
    sol = Direct().solve(K, b)
    assert sol.info["permc_spec"] == "MMD_AT_PLUS_A"
    np.testing.assert_allclose(sol.x, np.linalg.solve(K.toarray(), b), rtol=1e-10)
    U = (K + sp.eye(K.shape[0], k=3)).tocsr()  # one extra band: pattern no longer symmetric
    sol = Direct().solve(U, b)
    assert sol.info["permc_spec"] == "COLAMD"
    np.testing.assert_allclose(sol.x, np.linalg.solve(U.toarray(), b), rtol=1e-10)
    with pytest.raises(ValueError, match="permc_spec"):
        Direct(permc_spec="metis")
