"""DCDM solver (spec solvers.md §7-8): exact inverse, CG equivalence, monotone energy with an
untrained network, A-orthogonality, fallbacks, masked (fluid-cell) systems and bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from neuralops.models import DCDMConfig, DCDMNet
from neuralops.pde.pressure import obstacle_scene, pressure_poisson
from neuralops.solvers import DCDM, MaskedGridNetwork, cg, gallery, make_solver
from neuralops.solvers.dcdm import dcdm


def random_spd(n, seed, cond=1e3):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


def untrained(dim=2, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return DCDMNet(DCDMConfig(dim=dim, width=4, blocks_fine=1, blocks_coarse=1, blocks_up=1)).to(
        dtype
    )


class Inverse(torch.nn.Module):
    """``A^{-1}`` on a full grid as a torch module (batch, 1, *grid) -> (batch, 1, *grid)."""

    def __init__(self, A, shape):
        super().__init__()
        self.Ainv = torch.as_tensor(np.linalg.inv(A.toarray() if sp.issparse(A) else A))
        self.shape = shape

    def forward(self, x):
        y = self.Ainv @ x.reshape(x.shape[0], -1).T.to(self.Ainv.dtype)
        return y.T.reshape(x.shape).to(x.dtype)


def test_exact_inverse_converges_in_one_iteration():
    A = gallery.poisson((8, 8))
    b = np.random.default_rng(0).standard_normal(64)
    sol = dcdm(A, b, lambda r: np.linalg.solve(A.toarray(), r), rtol=1e-12)
    assert sol.converged and sol.iterations == 1 and sol.info["fallbacks"] == 0
    assert np.linalg.norm(sol.x - np.linalg.solve(A.toarray(), b)) <= 1e-12 * np.linalg.norm(sol.x)
    # the same through a torch module on the grid, float64
    sol = DCDM(Inverse(A, (8, 8)), grid_shape=(8, 8), rtol=1e-12).solve(A, b)
    assert sol.converged and sol.iterations == 1


@pytest.mark.parametrize(
    "make", [lambda: gallery.poisson((16, 16)), lambda: random_spd(60, 1, cond=20.0)]
)
def test_identity_network_reproduces_cg(make):
    A = make()
    b = np.random.default_rng(2).standard_normal(A.shape[0])
    ref = cg(A, b, rtol=1e-10)
    sol = dcdm(A, b, lambda r: r, n_orth=2, rtol=1e-10)
    assert sol.converged and ref.converged
    assert abs(sol.iterations - ref.iterations) <= 1  # the last step can straddle the tolerance
    k = min(sol.iterations, ref.iterations) + 1
    np.testing.assert_allclose(
        sol.residuals[:k], ref.residuals[:k], rtol=0, atol=1e-8 * np.linalg.norm(b)
    )
    assert np.linalg.norm(sol.x - ref.x) <= 1e-8 * np.linalg.norm(ref.x)


def test_untrained_network_energy_never_increases_and_reaches_tolerance():
    A = random_spd(64, 3, cond=1e2)
    b = np.random.default_rng(4).standard_normal(64)
    xs = np.linalg.solve(A, b)
    energy = []

    def track(k, x):
        e = x - xs
        energy.append(float(e @ A @ e))

    e0 = float(xs @ A @ xs)
    sol = DCDM(untrained(), grid_shape=(8, 8), rtol=1e-8, callback=track).solve(A, b)
    assert sol.converged and sol.info["stop_reason"] == "rtol"
    assert np.linalg.norm(b - A @ sol.x) <= 1e-8 * np.linalg.norm(b)
    assert np.all(np.isfinite(sol.x))
    seq = np.array([e0, *energy])
    assert np.all(np.diff(seq) <= 1e-12 * e0), "the A-norm error increased"
    assert set(sol.info["fallback_reasons"]) == {"nonfinite", "zero", "curvature", "cosine"}
    assert sol.info["fallbacks"] == sum(sol.info["fallback_reasons"].values())
    assert sol.info["network_applies"] == sol.iterations


def test_stored_directions_are_a_orthogonal():
    A = random_spd(64, 5, cond=1e2)
    b = np.random.default_rng(6).standard_normal(64)
    for n_orth in (1, 2, 4):
        solver = DCDM(
            untrained(seed=n_orth), grid_shape=(8, 8), n_orth=n_orth, keep_directions=True
        )
        sol = solver.solve(A, b)
        P = sol.info["directions"]
        assert P.shape == (sol.iterations, 64)
        G = P @ A @ P.T
        d = np.sqrt(np.diag(G))
        C = np.abs(G) / np.outer(d, d)
        for i in range(len(P)):
            for j in range(max(0, i - n_orth), i):
                assert C[i, j] <= 1e-10, (n_orth, i, j, C[i, j])


def test_nan_and_orthogonal_directions_fall_back_to_cg_steps():
    A = gallery.poisson((12, 12))
    b = np.random.default_rng(7).standard_normal(144)
    ref = cg(A, b, rtol=1e-10)
    calls = {"n": 0}

    def flaky(r):
        calls["n"] += 1
        return np.full_like(r, np.nan) if calls["n"] % 2 else r

    sol = dcdm(A, b, flaky, rtol=1e-10)
    assert sol.converged and sol.iterations == ref.iterations
    assert sol.info["fallback_reasons"]["nonfinite"] == (sol.iterations + 1) // 2
    v = np.random.default_rng(8).standard_normal(144)
    ortho = lambda r: v - (v @ r) / (r @ r) * r  # q^T r = 0: useless direction
    sol = dcdm(A, b, ortho, rtol=1e-10)
    assert sol.converged and sol.info["fallback_reasons"]["cosine"] == sol.iterations
    np.testing.assert_allclose(sol.residuals, ref.residuals, atol=1e-8 * np.linalg.norm(b))


def test_masked_fluid_system_with_network_and_reduced_unknowns():
    fluid = obstacle_scene((16, 16), seed=3, count=(2, 3), size=(0.1, 0.2))
    A = pressure_poisson(fluid)
    n = A.shape[0]
    assert n == fluid.sum() < fluid.size
    b = np.random.default_rng(9).standard_normal(n)
    # identity module through the scatter/gather adapter equals CG
    sol = DCDM(torch.nn.Identity(), mask=fluid, rtol=1e-9).solve(A, b)
    ref = cg(A, b, rtol=1e-9)
    assert sol.iterations == ref.iterations
    assert np.linalg.norm(sol.x - ref.x) <= 1e-7 * np.linalg.norm(ref.x)
    # an untrained network on the masked grid converges
    net = untrained(seed=1)
    sol = DCDM(net, mask=fluid, rtol=1e-8).solve(A, b)
    assert sol.converged and np.linalg.norm(b - A @ sol.x) <= 1e-8 * np.linalg.norm(b)
    # the adapter keeps masked-out cells at zero in the network's input and output
    M = MaskedGridNetwork(net, fluid)
    seen = {}

    def spy(x):
        seen["x"] = x.detach().clone()
        return net(x)

    z = MaskedGridNetwork(spy, fluid).apply(b)
    assert z.shape == (n,) and np.all(np.isfinite(z))
    assert float(seen["x"].reshape(fluid.shape)[torch.as_tensor(~fluid)].abs().max()) == 0.0
    np.testing.assert_allclose(M.apply(b), z)


def test_torch_vectors_and_factory():
    A = gallery.poisson((8, 8))
    b = torch.ones(64, dtype=torch.float64)
    sol = make_solver("dcdm", net=untrained(), grid_shape=(8, 8), rtol=1e-9).solve(A, b)
    assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float64
    ref = np.linalg.solve(A.toarray(), np.ones(64))
    assert np.linalg.norm(sol.x.numpy() - ref) <= 1e-7 * np.linalg.norm(ref)
    zero = DCDM(lambda r: r).solve(A, np.zeros(64))
    assert zero.converged and zero.iterations == 0 and not zero.x.any()


def test_odd_grid_is_padded_and_recorded():
    fluid = np.ones((9, 7), dtype=bool)
    A = pressure_poisson(fluid, open_sides="all")
    b = np.random.default_rng(10).standard_normal(63)
    sol = DCDM(untrained(), grid_shape=(9, 7), rtol=1e-8).solve(A, b)
    assert sol.converged and sol.info["grid_padding"] == (1, 1)
    assert sol.info["grid_shape"] == (9, 7)


def test_bad_input():
    A = gallery.poisson((8, 8))
    b = np.ones(64)
    net = untrained()
    with pytest.raises(ValueError, match=r"grid \(6, 6\) has 36 cells"):
        DCDM(net, grid_shape=(6, 6)).solve(A, b)
    with pytest.raises(ValueError, match="needs the grid"):
        DCDM(net).solve(A, b)
    with pytest.raises(ValueError, match="needs a network"):
        DCDM().solve(A, b)
    with pytest.raises(ValueError, match="mask"):
        DCDM(net, mask=np.ones((5, 5), dtype=bool)).solve(A, b)
    with pytest.raises(ValueError, match="boolean"):
        DCDM(net, mask=np.ones((8, 8)))
    with pytest.raises(ValueError, match="b has shape"):
        DCDM(net, grid_shape=(8, 8)).solve(A, np.ones(63))
    with pytest.raises(ValueError, match="NaN"):
        DCDM(net, grid_shape=(8, 8)).solve(A, np.r_[np.nan, np.ones(63)])
    with pytest.raises(ValueError, match="not symmetric positive definite"):
        DCDM(net, grid_shape=(8, 8)).solve(A + sp.triu(A, 1), b)  # nonsymmetric
    with pytest.raises(ValueError, match="expected"):
        DCDM(torch.nn.AvgPool2d(2), grid_shape=(8, 8)).solve(A, b)  # output shape != grid
    with pytest.raises(ValueError, match="n_orth"):
        DCDM(net, n_orth=-1)
    with pytest.raises(ValueError, match="maxiter"):
        DCDM(net, maxiter=0)
    # an indefinite symmetric matrix without the check: breakdown recorded, finite x, no raise
    D = sp.diags(np.r_[np.ones(32), -np.ones(32)]).tocsr()
    sol = DCDM(lambda r: r, check_spd=False).solve(D, np.r_[np.ones(32), 2 * np.ones(32)])
    assert not sol.converged and sol.info["stop_reason"] == "breakdown"
    assert np.all(np.isfinite(sol.x)) and "not symmetric positive definite" in sol.message


def test_nan_from_the_operator_stops_with_finite_iterate():
    A = gallery.poisson((8, 8))
    calls = {"n": 0}

    def matvec(x):
        calls["n"] += 1
        y = A @ x
        return y if calls["n"] < 6 else np.full_like(y, np.nan)

    from neuralops.solvers import as_operator

    op = as_operator(matvec, n=64, spd=True)
    sol = DCDM(lambda r: r).solve(op, np.ones(64))
    assert not sol.converged and sol.info["stop_reason"] == "nonfinite"
    assert np.all(np.isfinite(sol.x)) and sol.message


def test_a_network_that_does_not_help_hands_over_to_cg_and_says_so():
    """A map whose directions are mostly fresh noise (a small multiple of r plus a random field of
    r's size, new at every call) passes the cosine test but makes DCDM crawl; after the stall
    window CG takes over and converges."""
    A = gallery.poisson((24, 24))
    n = A.shape[0]
    b = np.random.default_rng(0).standard_normal(n)
    rng = np.random.default_rng(1)

    def poor(r):
        return 0.05 * r + rng.standard_normal(n) * np.linalg.norm(r) / np.sqrt(n)

    stuck = DCDM(poor, rtol=1e-8, maxiter=400, stall_window=None).solve(A, b)
    assert not stuck.converged and stuck.info["cg_switch_iteration"] is None
    sol = DCDM(poor, rtol=1e-8, maxiter=400, stall_window=30).solve(A, b)
    assert sol.converged, sol
    k = sol.info["cg_switch_iteration"]
    assert k is not None and 30 <= k < sol.iterations
    assert "CG took over" in sol.info.get("message", "") or "CG took over" in str(sol)
    np.testing.assert_allclose(A @ sol.x, b, atol=1e-7 * np.linalg.norm(b))
    # CG from the switch point needs about what CG needs from scratch
    plain = cg(A, b, rtol=1e-8)
    assert sol.iterations - k <= plain.iterations + 10
    with pytest.raises(ValueError, match="stall_factor"):
        DCDM(poor, stall_factor=1.5)
