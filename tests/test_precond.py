"""Preconditioners: exactness where it is known, fewer iterations where it matters, the registry."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from neuralops.solvers import (
    AMG,
    ASM,
    CG,
    GMRES,
    IC0,
    ILU,
    PRECONDITIONERS,
    Identity,
    Jacobi,
    NetworkPreconditioner,
    cg,
    gallery,
    gmres,
    make_preconditioner,
    pcg,
)


def ic0_reference(A: np.ndarray) -> np.ndarray:
    """Textbook dense IC(0) (Saad, Algorithm 10.8 style, kij form) on the pattern of A."""
    n = A.shape[0]
    L = np.tril(A).astype(float)
    pattern = np.tril(A) != 0
    for k in range(n):
        L[k, k] = np.sqrt(L[k, k])
        for i in range(k + 1, n):
            if pattern[i, k]:
                L[i, k] /= L[k, k]
        for j in range(k + 1, n):
            for i in range(j, n):
                if pattern[i, j]:
                    L[i, j] -= L[i, k] * L[j, k]
    return L


def test_ic0_is_exact_cholesky_on_a_tridiagonal_matrix():
    A = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(50, 50))
    M = IC0(A)
    L_exact = np.linalg.cholesky(A.toarray())
    assert np.abs(M.L.toarray() - L_exact).max() <= 1e-12
    r = np.random.default_rng(0).random(50)
    assert np.allclose(A @ M.apply(r), r, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "A",
    [
        gallery.poisson((5, 6)),
        gallery.anisotropic(6, eps=0.1, theta=0.3),
        gallery.random_sparse(40, 0.1, symmetric=True, rng=0),
    ],
    ids=["poisson", "anisotropic", "random"],
)
def test_ic0_matches_a_dense_reference_and_applies_its_inverse(A):
    M = IC0(A)
    L_ref = ic0_reference(A.toarray())
    assert np.abs(M.L.toarray() - L_ref).max() <= 1e-12
    r = np.random.default_rng(1).standard_normal(A.shape[0])
    z = M.apply(r)
    assert np.allclose(L_ref @ (L_ref.T @ z), r, rtol=0, atol=1e-12)
    assert M.symmetric and M.setup_seconds > 0 and "nnz(L)" in repr(M)


def test_ic0_breakdown_raises_and_shift_helps():
    A = sp.csr_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="IC\\(0\\) broke down"):
        IC0(A)
    assert np.isfinite(IC0(A, shift=4.0).L.data).all()


def test_jacobi_fixes_bad_scaling():
    P = gallery.poisson((12, 12))
    D = sp.diags(np.geomspace(1.0, 1e3, 144)[np.random.default_rng(0).permutation(144)])
    A = sp.csr_matrix(D @ P @ D)
    b = np.ones(144)
    plain = cg(A, b, rtol=1e-8, maxiter=5000)
    jac = pcg(A, b, "jacobi", rtol=1e-8)
    assert jac.converged and jac.iterations < plain.iterations / 3
    with pytest.raises(ValueError, match="nonzero diagonal"):
        Jacobi(sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 2.0]])))


@pytest.mark.parametrize("name", ["ic0", "amg"])
def test_symmetric_preconditioners_reduce_cg_iterations_on_poisson(name):
    if name == "amg":
        pytest.importorskip("pyamg")
    A = gallery.poisson((32, 32))
    b = np.ones(1024)
    plain = cg(A, b, rtol=1e-8)
    sol = pcg(A, b, name, rtol=1e-8)
    assert sol.converged and sol.iterations < plain.iterations / 2
    assert sol.info["setup_seconds"] > 0


def test_ilu_reduces_gmres_iterations_and_exact_ilu_is_lu():
    A = gallery.convection_diffusion(24, eps=0.01)
    b = np.ones(A.shape[0])
    plain = gmres(A, b, m=30, rtol=1e-8)
    sol = gmres(A, b, M="ilu", m=30, rtol=1e-8)
    assert sol.converged and sol.iterations < plain.iterations / 3
    exact = ILU(A, drop_tol=0.0, fill_factor=100)
    x = np.random.default_rng(0).random(A.shape[0])
    assert np.allclose(exact.apply(A @ x), x, atol=1e-10)
    assert not exact.symmetric


def test_amg_missing_pyamg_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyamg", None)
    with pytest.raises(ImportError, match=r"neuralops-pde\[bench\]"):
        AMG(gallery.poisson((4, 4)))


def test_amg_kinds_and_repr():
    pytest.importorskip("pyamg")
    A = gallery.poisson((24, 24))
    rs = AMG(A, kind="rs")
    assert "levels=" in repr(rs) and rs.name == "amg-rs"
    assert CG(rtol=1e-8).solve(A, np.ones(576), M=rs).iterations < 15
    with pytest.raises(ValueError, match="kind"):
        AMG(A, kind="geometric")


class ExactInverse(torch.nn.Module):
    """A 'network' that applies A^{-1} exactly: (batch, 1, nx, ny) -> same."""

    def __init__(self, A):
        super().__init__()
        self.register_buffer("inv", torch.as_tensor(np.linalg.inv(A.toarray())))

    def forward(self, x):
        flat = x.reshape(x.shape[0], -1)
        return (flat @ self.inv.T).reshape(x.shape)


def test_network_preconditioner_exact_inverse_converges_in_one_fgmres_step():
    A = gallery.poisson((8, 8))
    M = NetworkPreconditioner(ExactInverse(A), (8, 8))
    assert M.symmetric is False
    b = np.random.default_rng(0).random(64)
    sol = GMRES(flexible=True, rtol=1e-10).solve(A, b, M=M)
    assert sol.converged and sol.iterations == 1
    assert np.allclose(A @ sol.x, b, atol=1e-10)
    tz = M.apply(torch.as_tensor(b))
    assert isinstance(tz, torch.Tensor) and np.allclose(tz.numpy(), M.apply(b))
    assert isinstance(M.apply(b), np.ndarray) and M.apply(b).dtype == np.float64


def test_network_preconditioner_mask_and_bad_shapes():
    A = gallery.poisson((4, 4))
    mask = np.ones((4, 4), dtype=bool)
    mask[0, :] = False
    M = NetworkPreconditioner(ExactInverse(A), (4, 4), mask=mask)
    z = M.apply(np.ones(16)).reshape(4, 4)
    assert np.all(z[0] == 0) and np.all(z[1:] != 0)
    with pytest.raises(ValueError, match="r has shape"):
        M.apply(np.ones(15))
    with pytest.raises(ValueError, match="mask has shape"):
        NetworkPreconditioner(ExactInverse(A), (4, 4), mask=np.ones((2, 8), bool))
    wrong = NetworkPreconditioner(torch.nn.AvgPool2d(2), (4, 4))
    with pytest.raises(ValueError, match="module output has shape"):
        wrong.apply(np.ones(16))


def test_registry_and_factory():
    A = gallery.poisson((6, 6))
    assert {"none", "jacobi", "ic0", "ilu", "amg", "sor", "ssor"} <= set(PRECONDITIONERS)
    assert isinstance(make_preconditioner("none", A), Identity)
    assert isinstance(make_preconditioner("ilu", A, drop_tol=1e-2), ILU)
    with pytest.raises(ValueError, match="choose one of"):
        make_preconditioner("ic1", A)
    r = np.ones(36)
    for name in ("jacobi", "ic0", "ilu"):
        M = make_preconditioner(name, A)
        assert M.apply(r).shape == (36,) and M.setup_seconds > 0 and M.name == name
        assert type(M).__name__ in repr(M)


def test_asm_without_overlap_is_block_jacobi():
    A = gallery.convection_diffusion(8, eps=0.3).tocsr()  # nonsymmetric, 64 unknowns
    M = make_preconditioner("asm", A, n_subdomains=4, overlap=0)
    dense = A.toarray()
    blocks = np.zeros_like(dense)
    for i in range(4):
        s = slice(16 * i, 16 * (i + 1))
        blocks[s, s] = np.linalg.inv(dense[s, s])
    r = np.random.default_rng(0).standard_normal(64)
    np.testing.assert_allclose(M.apply(r), blocks @ r, rtol=1e-12, atol=1e-12)


def test_asm_is_symmetric_ras_is_not_and_overlap_helps():
    A = gallery.poisson((24, 24))
    rng = np.random.default_rng(1)
    v, w = rng.standard_normal((2, 576))
    asm = make_preconditioner("asm", A, n_subdomains=6, overlap=2)
    assert asm.symmetric and abs(v @ asm.apply(w) - w @ asm.apply(v)) < 1e-12 * np.linalg.norm(v)
    ras = make_preconditioner("ras", A, n_subdomains=6, overlap=2)
    assert not ras.symmetric and ras.name == "ras"
    b = np.ones(576)
    its = {
        ov: pcg(A, b, M=ASM(A, n_subdomains=6, overlap=ov), rtol=1e-8).iterations
        for ov in (0, 1, 3)
    }
    plain = cg(A, b, rtol=1e-8).iterations
    assert (
        plain > its[0] > its[1] > its[3]
    )  # a one-level method: overlap is what couples subdomains
    for M in (asm, ras):
        sol = gmres(A, b, M=M, rtol=1e-10)
        assert sol.converged and np.linalg.norm(b - A @ sol.x) < 1e-9 * np.linalg.norm(b)


def test_asm_bad_input():
    A = gallery.poisson((4, 4))
    with pytest.raises(ValueError, match="n_subdomains"):
        ASM(A, n_subdomains=17)
    with pytest.raises(ValueError, match="overlap"):
        ASM(A, overlap=-1)
    with pytest.raises(ValueError, match="labels"):
        ASM(A, labels=np.zeros(3, dtype=int))


def _darcy_pair(s=24, seed=3):
    from neuralops.pde.darcy import darcy_operator
    from neuralops.pde.grf import GRF, Transform

    grf = GRF(alpha=2.5, tau=7.0, boundary="neumann", transform=Transform.exp())
    rng = np.random.default_rng(seed)
    return [darcy_operator(grf.sample(rng, (s + 2, s + 2))).tocsr() for _ in range(2)]


@pytest.mark.parametrize("kind", ["sa", "rs"])
def test_amg_lean_v_cycle_equals_pyamg(kind):
    """Our V-cycle loop on the pyamg hierarchy is pyamg's own cycle, to rounding."""
    pytest.importorskip("pyamg")
    A, _ = _darcy_pair()
    M = make_preconditioner("amg", A, kind=kind)
    assert M._lean is not None
    r = np.random.default_rng(0).standard_normal(A.shape[0])
    ref = M._M.matvec(r)
    np.testing.assert_allclose(M.apply(r), ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    strided = np.stack([r, -r], axis=1)[:, 0]  # a non-contiguous view: the sweeps need a copy
    np.testing.assert_allclose(M.apply(strided), ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    # a non-default smoother falls back to pyamg's cycle
    J = make_preconditioner("amg", A, presmoother="jacobi", postsmoother="jacobi")
    assert J._lean is None


def test_amg_update_keeps_the_hierarchy_and_takes_the_new_operator():
    """``update(A2)``: same interpolation, Galerkin operators of A2. Exact checks: updating to the
    same matrix changes nothing; updating to 2 A halves the output (Gauss-Seidel sweeps are
    scale-invariant, every coarse operator doubles); on a different coefficient PCG needs the
    iterations of a fresh set-up (+-1) and solves A2, not A."""
    pytest.importorskip("pyamg")
    from neuralops.solvers import CG

    A, A2 = _darcy_pair()
    r = np.random.default_rng(1).standard_normal(A.shape[0])
    M = make_preconditioner("amg", A)
    z = M.apply(r)
    M.update(A.copy())
    np.testing.assert_allclose(M.apply(r), z, rtol=0, atol=1e-13 * np.abs(z).max())
    M.update(2.0 * A)
    np.testing.assert_allclose(M.apply(r), 0.5 * z, rtol=0, atol=1e-13 * np.abs(z).max())
    M.update(A2)
    b = np.ones(A.shape[0])
    upd = CG(rtol=1e-10).solve(A2, b, M=M)
    fresh = CG(rtol=1e-10).solve(A2, b, M=make_preconditioner("amg", A2))
    assert upd.converged and abs(upd.iterations - fresh.iterations) <= 1
    x = np.linalg.solve(A2.toarray(), b)
    np.testing.assert_allclose(upd.x, x, atol=1e-8 * np.abs(x).max())
    assert M.updates == 3
    # the pyamg cycle (non-default smoother, no lean path) is rebound to the new operators too
    fwd = ("gauss_seidel", {"sweep": "forward"})
    J = make_preconditioner("amg", A, presmoother=fwd, postsmoother=fwd)
    assert J._lean is None
    zj = J.apply(r)
    J.update(2.0 * A)
    np.testing.assert_allclose(J.apply(r), 0.5 * zj, rtol=0, atol=1e-12 * np.abs(zj).max())
    with pytest.raises(ValueError, match="hierarchy is for n = 576"):
        M.update(sp.eye(10, format="csr"))


@pytest.mark.parametrize("name", ["identity", "jacobi", "ic0", "ilu", "asm", "amg"])
def test_apply_block_equals_column_by_column(name):
    """The block path GCRO-DR's refresh takes is the same linear map as ``apply``."""
    if name == "amg":
        pytest.importorskip("pyamg")
    A, _ = _darcy_pair(s=14)
    M = make_preconditioner(name, A)
    R = np.random.default_rng(2).standard_normal((A.shape[0], 5))
    Z = M.apply_block(R)
    ref = np.column_stack([M.apply(R[:, j].copy()) for j in range(5)])
    assert Z.shape == (A.shape[0], 5)
    np.testing.assert_allclose(Z, ref, rtol=0, atol=1e-13 * np.abs(ref).max())


def test_asm_with_incomplete_subdomain_solves():
    """``sub_solver="ilu0"``: with one subdomain it is the ILU(0)-like factor of A itself; with
    several it is weaker than exact subdomain solves (more GMRES iterations) but still helps."""
    A, _ = _darcy_pair(s=20)
    b = np.ones(A.shape[0])
    r = np.random.default_rng(3).standard_normal(A.shape[0])
    one = ASM(A, n_subdomains=1, overlap=0, sub_solver="ilu0")
    ref = ILU(A, drop_tol=0.0, fill_factor=1.0)
    np.testing.assert_allclose(one.apply(r), ref.apply(r), rtol=1e-12, atol=1e-14)
    its = {
        name: GMRES(m=40, rtol=1e-10).solve(A, b, M=M).iterations
        for name, M in (
            ("none", None),
            ("ilu0", ASM(A, n_subdomains=4, sub_solver="ilu0")),
            ("lu", ASM(A, n_subdomains=4)),
        )
    }
    assert its["lu"] < its["ilu0"] < its["none"]
    with pytest.raises(ValueError, match="sub_solver"):
        ASM(A, sub_solver="amg")
