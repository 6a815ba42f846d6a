"""SOR/SSOR against independent dense implementations and known optima; the ω bandits."""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from neuralops.solvers import CG, gallery
from neuralops.solvers.relax import (
    SOR,
    BinnedTsallisINF,
    SequenceResult,
    SORPreconditioner,
    SSORPreconditioner,
    TsallisINF,
    _pcg,
    default_arms,
    optimal_omega,
    sor,
    ssor_pcg,
    tune_sequence,
)


def random_spd(n: int, seed: int) -> np.ndarray:
    """Dense SPD, not diagonally dominant (SOR still converges for 0 < ω < 2)."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, n))
    return B @ B.T / n + 0.5 * np.eye(n)


def gauss_seidel_dense(A: np.ndarray, b: np.ndarray, sweeps: int) -> list[np.ndarray]:
    """Textbook component-wise Gauss–Seidel; returns the iterates after each sweep."""
    x, out = np.zeros_like(b), []
    for _ in range(sweeps):
        for i in range(len(b)):
            x[i] = (b[i] - A[i, :i] @ x[:i] - A[i, i + 1 :] @ x[i + 1 :]) / A[i, i]
        out.append(x.copy())
    return out


def sor_dense(A: np.ndarray, b: np.ndarray, omega: float, sweeps: int) -> np.ndarray:
    """Component-wise SOR: x_i <- (1 - ω) x_i + ω (b_i - sum_{j != i} a_ij x_j) / a_ii."""
    x = np.zeros_like(b)
    for _ in range(sweeps):
        for i in range(len(b)):
            s = b[i] - A[i, :i] @ x[:i] - A[i, i + 1 :] @ x[i + 1 :]
            x[i] = (1 - omega) * x[i] + omega * s / A[i, i]
    return x


@pytest.mark.parametrize("n", [12, 300])  # dense LAPACK kernel and SuperLU kernel
def test_sor_omega_one_is_gauss_seidel(n):
    A = random_spd(n, 0) if n < 100 else gallery.poisson((15, 20)).toarray()
    b = np.random.default_rng(1).standard_normal(n)
    ref = gauss_seidel_dense(A, b, 6)
    for k in range(1, 7):
        sol = SOR(omega=1.0, rtol=0.0, maxiter=k).solve(sp.csr_matrix(A), b)
        assert sol.iterations == k and not sol.converged and sol.stop_reason == "maxiter"
        assert np.abs(sol.x - ref[k - 1]).max() <= 1e-12 * max(1.0, np.abs(ref[k - 1]).max())
    expected_kernel = "dense-lapack" if n <= 200 else "superlu"
    assert sol.info["kernel"] == expected_kernel


def test_sor_matches_componentwise_over_relaxation():
    A, b = random_spd(10, 3), np.arange(10.0)
    sol = sor(A, b, 1.7, rtol=0.0, maxiter=5)
    np.testing.assert_allclose(sol.x, sor_dense(A, b, 1.7, 5), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("omega", [0.6, 1.0, 1.5, 1.9])
def test_sor_fixed_point_is_direct_solution(omega):
    A = sp.csr_matrix(random_spd(30, 4))
    b = np.random.default_rng(5).standard_normal(30)
    sol = sor(A, b, omega, rtol=1e-14)
    x_direct = spla.spsolve(sp.csc_matrix(A), b)
    assert sol.converged and sol.stop_reason == "rtol"
    assert np.linalg.norm(sol.x - x_direct) <= 1e-10 * np.linalg.norm(x_direct)
    # the solution record: true residual norms, one per iteration plus the initial one
    assert len(sol.residuals) == sol.iterations + 1 and sol.info["norm"] == "true"
    assert sol.residuals[-1] == pytest.approx(np.linalg.norm(b - A @ sol.x), rel=1e-12)
    assert sol.residual <= 1e-14 and sol.seconds > 0 and sol.info["omega"] == omega


def test_sor_x0_and_zero_rhs():
    A, b = gallery.poisson((6, 6)), np.ones(36)
    x = spla.spsolve(sp.csc_matrix(A), b)
    assert sor(A, b, x0=x, rtol=1e-8).iterations == 0
    zero = sor(A, np.zeros(36))
    assert zero.converged and zero.iterations == 0 and not zero.x.any()


@pytest.mark.parametrize("omega", [0.0, 2.0, -0.5, 2.5, float("nan")])
def test_omega_outside_open_interval_raises(omega):
    A = gallery.poisson((4, 4))
    for build in (
        lambda: SOR(omega=omega),
        lambda: sor(A, np.ones(16), omega),
        lambda: SSORPreconditioner(A, omega),
        lambda: SORPreconditioner(A, omega),
        lambda: ssor_pcg(A, np.ones(16), omega),
    ):
        with pytest.raises(ValueError, match="omega"):
            build()


def test_bad_input_raises():
    with pytest.raises(ValueError, match="diagonal"):
        sor(np.array([[0.0, 1.0], [1.0, 2.0]]), np.ones(2))
    with pytest.raises(ValueError, match="b has shape"):
        sor(gallery.poisson((3, 3)), np.ones(8))
    with pytest.raises(ValueError, match="maxiter"):
        SOR(maxiter=0)
    with pytest.raises(ValueError, match="positive diagonal"):
        SSORPreconditioner(-gallery.poisson((3, 3)))


def test_sor_divergence_is_reported_not_raised():
    A = np.array([[1.0, 3.0], [3.0, 1.0]])  # symmetric indefinite: Gauss–Seidel diverges
    sol = sor(A, np.ones(2), 1.0, maxiter=10_000)
    assert not sol.converged and sol.stop_reason == "breakdown"
    assert np.isfinite(sol.x).all() and sol.residual <= 1.0


@pytest.mark.parametrize("n_side", [6, 16])  # dense and SuperLU kernels
def test_ssor_preconditioner_symmetric_and_exact(n_side):
    A = gallery.poisson((n_side, n_side)) + sp.diags(np.linspace(0.1, 1.0, n_side**2))
    M = SSORPreconditioner(A, omega=1.3)
    rng = np.random.default_rng(0)
    y, z = rng.standard_normal((2, A.shape[0]))
    assert abs(z @ M.apply(y) - y @ M.apply(z)) <= 1e-12 * np.linalg.norm(y) * np.linalg.norm(z)
    if n_side == 6:  # against the explicit M = ω/(2−ω) (D/ω + L)(D/ω)^{-1}(D/ω + L)^T
        Ad, w = A.toarray(), 1.3
        K = np.tril(Ad, -1) + np.diag(np.diag(Ad) / w)
        Mfull = w / (2 - w) * K @ np.diag(w / np.diag(Ad)) @ K.T
        np.testing.assert_allclose(M.apply(y), np.linalg.solve(Mfull, y), rtol=1e-12, atol=1e-13)
        Y = rng.standard_normal((A.shape[0], 3))
        np.testing.assert_allclose(M.apply(Y), np.linalg.solve(Mfull, Y), rtol=1e-12, atol=1e-13)
    assert M.symmetric and M.name == "ssor" and M.setup_seconds >= 0


def test_ssor_pcg_beats_cg_on_poisson():
    A = gallery.poisson((32, 32))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    plain = CG(rtol=1e-8).solve(A, b)
    pre = ssor_pcg(A, b, 1.5, rtol=1e-8)
    assert plain.converged and pre.converged
    assert pre.iterations < 0.6 * plain.iterations
    assert np.linalg.norm(b - A @ pre.x) <= 1e-8 * np.linalg.norm(b)
    assert pre.info["method"] == "ssor_pcg" and pre.info["omega"] == 1.5
    # the self-contained fallback PCG loop agrees with krylov.CG
    fallback = _pcg(A, b, SSORPreconditioner(A, 1.5), rtol=1e-8, atol=0.0, maxiter=None, x0=None)
    assert fallback.converged and abs(fallback.iterations - pre.iterations) <= 1
    assert np.linalg.norm(fallback.x - pre.x) <= 1e-6 * np.linalg.norm(pre.x)


def test_optimal_omega_poisson_matches_young():
    N = 32
    A = gallery.poisson((N, N))  # n = 1024 > 600: the Lanczos path
    w = optimal_omega(A)
    assert w == pytest.approx(2.0 / (1.0 + math.sin(math.pi / (N + 1))), abs=1e-3)
    small = gallery.poisson((10, 10))  # dense path
    assert optimal_omega(small) == pytest.approx(2.0 / (1.0 + math.sin(math.pi / 11)), abs=1e-10)
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    fast, gs = sor(A, b, w), sor(A, b, 1.0)
    assert fast.converged and gs.converged
    assert fast.iterations * 10 < gs.iterations
    # no Jacobi convergence -> a clear error
    with pytest.raises(ValueError, match="Jacobi"):
        optimal_omega(np.array([[1.0, 2.0], [2.0, 1.0]]))


def synthetic_costs(arm: int, rng: np.random.Generator, best: int = 7) -> float:
    """Noisy costs in [0, 1]: arm ``best`` has mean 0.2, every other arm mean 0.6."""
    return float(np.clip((0.2 if arm == best else 0.6) + 0.2 * rng.uniform(-1, 1), 0, 1))


def test_bandit_finds_the_clearly_best_arm():
    arms = default_arms()
    tuner = TsallisINF(arms, rng=0, scale=1.0)
    env = np.random.default_rng(1)
    picks = []
    for _ in range(3000):
        omega = tuner.suggest()
        i = int(np.argmin(np.abs(arms - omega)))
        picks.append(i)
        tuner.update(synthetic_costs(i, env))
    assert np.mean(np.array(picks[-500:]) == 7) >= 0.8
    assert int(np.argmax(tuner.probabilities)) == 7


def test_probabilities_sum_to_one_and_stay_finite():
    tuner = TsallisINF(rng=3)  # running-max scale
    env = np.random.default_rng(4)
    for t in range(2000):
        p = tuner.probabilities
        assert np.isfinite(p).all() and (p >= 0).all() and abs(p.sum() - 1) <= 1e-12
        tuner.suggest()
        # adversarial scales: zeros, huge costs, and ordinary ones
        tuner.update(float(env.choice([0.0, 1e9, env.uniform(0, 100)])) if t % 7 else 0.0)
    assert tuner.t == 2000


def test_contextual_variant_learns_per_bin():
    arms = np.linspace(1.0, 1.9, 10)
    tuner = BinnedTsallisINF(arms, bins=2, low=0.0, high=1.0, rng=0, scale=1.0)
    env = np.random.default_rng(1)
    for _ in range(3000):
        c = env.uniform()
        omega = tuner.suggest(c)
        best = 1.2 if c < 0.5 else 1.8  # the best arm depends on the context
        tuner.update(min(1.0, abs(omega - best) + 0.1 * env.uniform()))
    p = tuner.probabilities
    assert p.shape == (2, 10)
    assert arms[np.argmax(p[0])] == pytest.approx(1.2)
    assert arms[np.argmax(p[1])] == pytest.approx(1.8)
    with pytest.raises(ValueError, match="context"):
        tuner.suggest(None)


@pytest.mark.parametrize("cls", ["plain", "binned"])
def test_state_dict_round_trip_reproduces_suggestions(cls):
    def make(seed):
        if cls == "plain":
            return TsallisINF(rng=seed)
        return BinnedTsallisINF(bins=3, low=0.0, high=1.0, rng=seed)

    a = make(0)
    env = np.random.default_rng(1)
    for _ in range(50):
        a.suggest(env.uniform())
        a.update(env.uniform(0, 100))
    state = json.loads(json.dumps(a.state_dict()))
    b = make(12345)
    b.load_state_dict(state)
    contexts = env.uniform(size=40)
    seq_a, seq_b = [], []
    for c in contexts:
        seq_a.append(a.suggest(c))
        a.update(10 * c)
        seq_b.append(b.suggest(c))
        b.update(10 * c)
    assert seq_a == seq_b
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    if cls == "plain":
        assert TsallisINF.from_state_dict(state).t == 50


def test_tuner_misuse_raises():
    tuner = TsallisINF(rng=0)
    with pytest.raises(RuntimeError, match="suggest"):
        tuner.update(1.0)
    tuner.suggest()
    with pytest.raises(ValueError, match="cost"):
        tuner.update(float("nan"))
    with pytest.raises(ValueError, match="arms"):
        tuner.load_state_dict(TsallisINF([1.0, 1.5]).state_dict())
    with pytest.raises(ValueError, match="losses"):
        TsallisINF.from_state_dict({**tuner.state_dict(), "arms": [1.0, 1.5]})
    with pytest.raises(ValueError, match="scale"):
        TsallisINF(scale="median")


def test_tune_sequence_time_stepping_generator():
    """A generator receives each solution via send(): backward Euler steps of u' = -A u."""
    A0 = gallery.poisson((8, 8))
    n, dt = A0.shape[0], 0.5
    u0 = np.ones(n)

    def steps(u):
        for k in range(6):
            A = sp.eye(n) + dt * (1 + 0.1 * k) * A0
            u = yield A, u
        return

    res = tune_sequence(steps(u0), TsallisINF(rng=0), method="ssor_pcg", rtol=1e-10)
    assert isinstance(res, SequenceResult) and res.iterations.size == 6 and res.converged.all()
    # the same sequence, solved directly, step by step
    u = u0
    for k in range(6):
        u = spla.spsolve(sp.csc_matrix(sp.eye(n) + dt * (1 + 0.1 * k) * A0), u)
    u_ref = u
    res2 = tune_sequence(steps(u0), 1.4, method="sor", rtol=1e-12, contexts=range(6))
    assert (res2.omegas == 1.4).all() and res2.contexts.tolist() == list(range(6))
    # rerun with a last-state capture to compare the final state
    final = {}

    def capture(u):
        for k in range(6):
            A = sp.eye(n) + dt * (1 + 0.1 * k) * A0
            u = yield A, u
        final["u"] = u

    tune_sequence(capture(u0), 1.4, method="sor", rtol=1e-12)
    np.testing.assert_allclose(final["u"], u_ref, rtol=1e-9)
    with pytest.raises(ValueError, match="method"):
        tune_sequence([(A0, u0)], 1.0, method="jacobi")
    with pytest.raises(ValueError, match="contexts"):
        tune_sequence([(A0, u0), (A0, u0)], TsallisINF(), contexts=[0.5])
