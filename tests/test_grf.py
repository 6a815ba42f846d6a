"""Gaussian random fields and recipe samplers: covariance against the analytic spectrum,
transforms, determinism, and recipe errors that name the key and suggest the fix."""

import numpy as np
import pytest

from neuralops.data import RecipeError
from neuralops.pde.grf import (
    GRF,
    Chebyshev,
    Choice,
    LogUniform,
    Transform,
    Uniform,
    chebyshev,
    matern,
    sampler_from_table,
)

N_DRAWS = 4096
SHAPE = (16, 12)  # not square, so a swapped axis in the spectrum's layout shows


def _basis_1d(boundary: str, s: int) -> np.ndarray:
    """Orthonormal eigenvectors (columns) written out from the formulas, not from scipy.fft."""
    j = np.arange(s)
    if boundary == "periodic":
        k = np.fft.fftfreq(s, 1.0 / s)
        return np.exp(2j * np.pi * np.outer(j / s, k)) / np.sqrt(s)
    if boundary == "neumann":
        B = np.sqrt(2.0 / s) * np.cos(np.pi * np.outer((j + 0.5) / s, np.arange(s)))
        B[:, 0] /= np.sqrt(2.0)
        return B
    return np.sqrt(2.0 / (s - 1)) * np.sin(np.pi * np.outer(j / (s - 1), np.arange(1, s - 1)))


@pytest.mark.parametrize("boundary", ["periodic", "neumann", "dirichlet"])
def test_sample_covariance_matches_spectrum(boundary):
    g = GRF(alpha=2.0, tau=3.0, boundary=boundary)
    S = g.spectrum(SHAPE)
    u = g.sample(np.random.default_rng(0), SHAPE, batch=N_DRAWS)
    assert u.shape == (N_DRAWS, *SHAPE) and u.dtype == np.float64

    # per-mode variance of the orthonormal coefficients against the analytic spectrum
    v = np.mean(np.abs(g.coefficients(u, d=2)) ** 2, axis=0)
    assert v.shape == S.shape
    live = S > 0
    ratio = v[live] / S[live]
    assert abs(ratio.mean() - 1) < 0.01  # averaged over all modes: well inside 5 %
    # each mode alone: a variance estimate from 4096 draws has relative std sqrt(2/4096) = 2.2 %,
    # so the per-mode bound is 5 standard deviations, not 5 %
    assert np.all(np.abs(ratio - 1) < 5 * np.sqrt(2.0 / N_DRAWS))
    assert np.all(v[~live] < 1e-20)  # the dropped mean mode

    # full covariance against sum_k S_k phi_k phi_k^H built from an independent basis
    B = np.kron(_basis_1d(boundary, SHAPE[0]), _basis_1d(boundary, SHAPE[1]))
    C = ((B * S.ravel()) @ B.conj().T).real
    X = u.reshape(N_DRAWS, -1)
    C_hat = X.T @ X / N_DRAWS
    rel = np.linalg.norm(C_hat - C) / np.linalg.norm(C)
    noise = np.sqrt((1 + np.trace(C) ** 2 / np.linalg.norm(C) ** 2) / N_DRAWS)  # Wishart
    assert rel < 1.3 * noise and rel < 0.06, (rel, noise)
    # pointwise variance (Parseval: mean over the grid of sum_k S_k / N)
    assert abs(np.diag(C_hat).mean() / (S.sum() / np.prod(SHAPE)) - 1) < 0.05


@pytest.mark.parametrize("shape", [(64,), (8, 8, 8)])
@pytest.mark.parametrize("boundary", ["periodic", "neumann", "dirichlet"])
def test_spectrum_in_1d_and_3d(shape, boundary):
    g = GRF(alpha=2.0, tau=5.0, boundary=boundary)
    u = g.sample(np.random.default_rng(1), shape, batch=1024)
    v = np.mean(np.abs(g.coefficients(u, d=len(shape))) ** 2, axis=0)
    S = g.spectrum(shape)
    live = S > 0
    assert abs((v[live] / S[live]).mean() - 1) < 0.02


def test_spectrum_formula_and_defaults():
    g = GRF(alpha=2.0, tau=3.0, boundary="neumann", zero_mean=False)
    S = g.spectrum((5, 4))
    k1, k2 = 2, 3
    sigma = 3.0 ** (2.0 - 1.0)  # tau^(alpha - d/2)
    assert S[k1, k2] == pytest.approx(20 * sigma**2 * (np.pi**2 * (k1**2 + k2**2) + 9) ** -2)
    assert GRF(alpha=2.0, tau=3.0, boundary="periodic").spectrum((6,))[0] == 0.0
    per = GRF(alpha=1.5, tau=2.0, sigma=0.5, boundary="periodic").spectrum((8,))
    assert per[3] == pytest.approx(8 * 0.25 * (4 * np.pi**2 * 9 + 4) ** -1.5)
    assert per[3] == per[-3]
    dir_ = GRF(alpha=2.0, tau=3.0, boundary="dirichlet").spectrum((5, 4))  # modes k >= 1
    assert dir_.shape == (3, 2)
    assert dir_[0, 1] == pytest.approx(4 * 3 * sigma**2 * (np.pi**2 * (1 + 4) + 9) ** -2)


def test_dirichlet_vanishes_on_the_boundary():
    u = GRF(boundary="dirichlet").sample(np.random.default_rng(0), (9, 7))
    assert np.all(u[[0, -1], :] == 0) and np.all(u[:, [0, -1]] == 0)
    assert np.all(u[1:-1, 1:-1] != 0)


def test_transforms_and_mean():
    base = GRF(alpha=2.0, tau=3.0, boundary="neumann")
    u = base.sample(np.random.default_rng(5), (17, 17))
    ln = GRF(alpha=2.0, tau=3.0, boundary="neumann", mean=0.5, transform=Transform.exp())
    np.testing.assert_allclose(
        ln.sample(np.random.default_rng(5), (17, 17)), np.exp(u + 0.5), rtol=1e-14
    )
    th = GRF(alpha=2.0, tau=3.0, boundary="neumann", transform=Transform.threshold(12, 3))
    a = th.sample(np.random.default_rng(5), (17, 17))
    np.testing.assert_array_equal(a, np.where(u >= 0, 12.0, 3.0))
    assert set(np.unique(a)) == {3.0, 12.0}
    assert abs(u.mean()) < 1e-12  # zero_mean drops the constant DCT mode exactly
    assert Transform.exp().positive and not Transform.threshold(1, -1).positive
    with pytest.raises(ValueError, match="takes 2 finite numbers"):
        Transform("threshold", (1.0,))


def test_determinism():
    g = GRF(alpha=2.5, tau=7.0, boundary="periodic", transform=Transform.exp())
    a = g.sample(np.random.default_rng(42), (16, 16))
    b = g.sample(np.random.default_rng(42), (16, 16))
    c = g.sample(np.random.default_rng(43), (16, 16))
    assert np.array_equal(a, b) and not np.allclose(a, c)
    rng = np.random.default_rng(7)  # a batch equals successive single draws, bit for bit
    seq = np.stack([g.sample(rng, (16, 16)) for _ in range(3)])
    assert np.array_equal(g.sample(np.random.default_rng(7), (16, 16), batch=3), seq)
    for s in (Uniform(1, 2), LogUniform(1, 100), Choice((1.0, 2.0, 5.0)), Chebyshev(3)):
        shape = (5,) if s.is_field else (4,)
        x, y = (s.sample(np.random.default_rng(3), shape) for _ in range(2))
        assert np.array_equal(x, y) and x.dtype == np.float64


def test_matern_mapping_and_variance():
    g = matern(1.5, 0.05, d=2)
    assert g.alpha == pytest.approx(2.5) and g.tau == pytest.approx(np.sqrt(3) / 0.05)
    # periodic, length scale << 1: pointwise variance sum_k S_k / N is the requested one
    S = g.spectrum((128, 128))
    assert S.sum() / S.size == pytest.approx(1.0, rel=2e-3)
    S1 = matern(1.5, 0.02, d=1, variance=4.0).spectrum((1024,))
    assert S1.sum() / S1.size == pytest.approx(4.0, rel=5e-3)


def test_scalar_samplers():
    rng = np.random.default_rng(0)
    x = Uniform(2.0, 3.0).sample(rng, (10000,))
    assert x.min() >= 2 and x.max() < 3 and abs(x.mean() - 2.5) < 0.02
    y = np.log10(LogUniform(1e-3, 1e3).sample(rng, (10000,)))
    assert y.min() >= -3 and y.max() <= 3 and abs(y.mean()) < 0.1
    z = Choice((1.0, 2.0), (0.0, 1.0)).sample(rng, (50,))
    assert np.all(z == 2.0)
    assert Uniform(0, 1).sample(rng).shape == ()


def test_chebyshev_matches_numpy():
    p = chebyshev(4).sample(np.random.default_rng(9), (7, 5))
    c = np.random.default_rng(9).uniform(-1, 1, size=(5, 5))
    x, y = np.meshgrid(np.linspace(-1, 1, 7), np.linspace(-1, 1, 5), indexing="ij")
    np.testing.assert_allclose(p, np.polynomial.chebyshev.chebval2d(x, y, c), atol=1e-13)
    edge = chebyshev(5, 0.0, 1.0).sample(np.random.default_rng(0), (33,))
    assert edge.shape == (33,) and np.all(np.abs(edge) <= 6.0)


def test_sampler_from_table_builds_the_recipes():
    fno = sampler_from_table(
        {
            "sampler": "grf",
            "alpha": 2.0,
            "tau": 3.0,
            "boundary": "neumann",
            "transform": {"threshold": [12.0, 3.0]},
        },
        2,
        where="params.a",
    )
    assert fno == GRF(2.0, 3.0, boundary="neumann", transform=Transform.threshold(12, 3))
    skr = sampler_from_table(
        {"sampler": "grf", "alpha": 2.5, "tau": 7, "transform": "exp"},
        2,
        defaults={"boundary": "neumann", "nu": 1.0},
    )
    assert skr == GRF(2.5, 7.0, boundary="neumann", transform=Transform.exp())
    assert sampler_from_table({"sampler": "uniform", "low": 0, "high": 1}, 2) == Uniform(0, 1)
    m = sampler_from_table({"sampler": "matern", "nu": 1.5, "length_scale": 0.1}, 2)
    assert m == matern(1.5, 0.1, d=2)
    assert sampler_from_table({"sampler": "chebyshev", "high": 2.0}, 1) == Chebyshev(5, -1, 2)
    assert sampler_from_table({"sampler": "choice", "values": [1, 2]}, 2) == Choice((1.0, 2.0))


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        (
            {"sampler": "grf", "alpah": 2.0},
            "unknown key 'params.a.alpah'; did you mean 'alpha'? (valid keys for sampler 'grf'",
        ),
        ({"sampler": "gfr"}, "'params.a.sampler' = 'gfr' is unknown; did you mean 'grf'?"),
        ({"alpha": 2.0}, "'params.a.sampler' is missing"),
        ({"sampler": "grf", "alpha": 1.0}, "'params.a.alpha' must be > d/2 = 1 for a 2-D field"),
        ({"sampler": "grf", "tau": 0}, "'params.a.tau' must be a number > 0, got 0"),
        ({"sampler": "grf", "tau": "3"}, "'params.a.tau' must be a finite number, got '3'"),
        ({"sampler": "grf", "sigma": -1.0}, "'params.a.sigma' must be a number > 0"),
        ({"sampler": "grf", "boundary": "nuemann"}, "did you mean 'neumann'?"),
        ({"sampler": "grf", "zero_mean": 1}, "'params.a.zero_mean' must be true or false"),
        (
            {"sampler": "grf", "transform": "expp"},
            "'params.a.transform' = 'expp' is unknown; did you mean 'exp'?",
        ),
        (
            {"sampler": "grf", "transform": {"threshold": [12.0]}},
            "'params.a.transform.threshold' needs two numbers [a_pos, a_neg], got [12.0]",
        ),
        ({"sampler": "grf", "transform": "threshold"}, "needs two numbers"),
        ({"sampler": "grf", "transform": {"exp": [1.0]}}, "'exp' takes 0 finite numbers"),
        ({"sampler": "uniform", "low": 2.0, "high": 1.0}, "'params.a.high' must be a number > low"),
        ({"sampler": "uniform", "low": 2.0}, "missing key 'params.a.high'"),
        ({"sampler": "loguniform", "low": 0.0, "high": 1.0}, "'params.a.low' must be > 0"),
        ({"sampler": "matern", "nu": 1.0}, "missing key 'params.a.length_scale'"),
        ({"sampler": "chebyshev", "degree": 2.5}, "'params.a.degree' must be an integer"),
        ({"sampler": "choice", "values": []}, "'params.a.values' must be a non-empty list"),
        ({"sampler": "choice", "values": [1, 2], "weights": [1]}, "'params.a.weights' must be 2"),
    ],
)
def test_recipe_errors_name_the_key(table, needle):
    with pytest.raises(RecipeError) as err:
        sampler_from_table(table, 2, where="params.a")
    assert needle in str(err.value)


def test_dimension_limits():
    with pytest.raises(RecipeError, match=r"'params.u0.alpha' must be > d/2 = 1.5"):
        sampler_from_table({"sampler": "grf", "alpha": 1.5}, 3, where="params.u0")
    with pytest.raises(ValueError, match="alpha must be > d/2 = 0.5"):
        GRF(alpha=0.5).sample(np.random.default_rng(0), (8,))
    with pytest.raises(ValueError, match="needs >= 3 points per axis"):
        GRF(boundary="dirichlet").sample(np.random.default_rng(0), (2, 8))
    with pytest.raises(ValueError, match="tau must be a number > 0"):
        GRF(tau=-1.0)
