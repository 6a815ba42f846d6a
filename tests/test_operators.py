"""One operator interface over scipy sparse, dense, torch CSR/COO and callables."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from neuralops.solvers import (
    CG,
    GMRES,
    CallableOperator,
    MatrixOperator,
    TorchCSROperator,
    as_operator,
    gallery,
)

pytestmark = pytest.mark.filterwarnings("ignore:Sparse")

A = gallery.convection_diffusion(6, eps=0.1)  # (36, 36), nonsymmetric
X = np.random.default_rng(0).standard_normal((36, 3))


def torch_csr(M, layout="csr"):
    coo = sp.coo_matrix(M)
    t = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, size=M.shape).coalesce()
    return t.to_sparse_csr() if layout == "csr" else t


@pytest.mark.parametrize(
    "make",
    [
        lambda: A,
        lambda: A.toarray(),
        lambda: sp.csc_matrix(A),
        lambda: torch_csr(A),
        lambda: torch_csr(A, "coo"),
        lambda: torch.as_tensor(A.toarray()),
        lambda: spla.aslinearoperator(A),
        lambda: as_operator(lambda v: A @ v, n=36),
    ],
    ids=["csr", "dense", "csc", "torch-csr", "torch-coo", "torch-dense", "linop", "callable"],
)
def test_every_kind_gives_the_same_matvec_and_solve(make):
    op = as_operator(make())
    assert op.shape == (36, 36) and op.n == 36
    assert np.allclose(op.matvec(X[:, 0]), A @ X[:, 0], atol=1e-13)
    assert np.allclose(op.matvec(X), A @ X, atol=1e-13)  # block of right-hand sides
    b = np.ones(36)
    sol = GMRES(rtol=1e-12).solve(make(), b)
    assert sol.converged and np.allclose(A @ sol.x, b, atol=1e-10)


def test_torch_in_torch_out_for_matrix_and_torch_operators():
    xt = torch.as_tensor(X[:, 0])
    for op in (as_operator(A), as_operator(torch_csr(A))):
        y = op.matvec(xt)
        assert isinstance(y, torch.Tensor) and np.allclose(y.numpy(), A @ X[:, 0])
    assert isinstance(as_operator(torch_csr(A)), TorchCSROperator)
    assert np.allclose(as_operator(torch_csr(A)).diagonal(), A.diagonal())


def test_structure_tags_and_symmetry_defect():
    P = gallery.poisson((5, 5))
    op = as_operator(P, spd=True)
    assert op.is_spd and op.is_symmetric
    assert "spd" in repr(as_operator(lambda v: v, n=3, spd=True))
    assert as_operator(P).symmetry_defect() == 0.0 and as_operator(A).symmetry_defect() > 0.1
    assert as_operator(op) is op
    assert isinstance(as_operator(A), MatrixOperator) and "nnz=" in repr(as_operator(A))


def test_cg_skips_the_check_for_a_tagged_callable_and_checks_untagged_ones():
    P = gallery.poisson((6, 6))
    calls = []

    def matvec(v):
        calls.append(1)
        return P @ v

    sol = CG(rtol=1e-10).solve(as_operator(matvec, n=36, spd=True), np.ones(36))
    tagged = len(calls)
    calls.clear()
    CG(rtol=1e-10).solve(as_operator(matvec, n=36), np.ones(36))
    assert sol.converged and len(calls) == tagged + 3  # symmetry pair + positivity probe


@pytest.mark.parametrize(
    "bad, err, word",
    [
        (np.ones((3, 4)), ValueError, "square"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "NaN"),
        (lambda v: v, ValueError, "needs its size"),
        ("matrix", TypeError, "cannot use str"),
    ],
)
def test_bad_operators(bad, err, word):
    with pytest.raises(err, match=word):
        as_operator(bad)


def test_matvec_returning_the_wrong_shape_is_named():
    op = CallableOperator(lambda v: np.ones(5), 6)
    with pytest.raises(ValueError, match="matvec of A returned shape"):
        GMRES().solve(op, np.ones(6))


def test_a_matvec_returning_its_input_does_not_corrupt_the_krylov_basis():
    b = np.array([1.0, -2.0, 3.0])
    identity = as_operator(lambda v: v, n=3)
    for solver in (GMRES(), GMRES(flexible=True), CG()):
        sol = solver.solve(identity, b, M=None if isinstance(solver, CG) else (lambda r: r))
        assert sol.converged and np.allclose(sol.x, b)
