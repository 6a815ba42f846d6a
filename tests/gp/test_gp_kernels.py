"""Kernel derivatives (closed forms vs finite differences and sympy) and Kronecker algebra vs dense."""

import math

import pytest
import torch

from neuralops.gp.kernels import (
    GaussianMixture1d,
    Matern1d,
    ProductKernel,
    SE1d,
    StudentTMixture1d,
    make_kernel,
)
from neuralops.gp.kron import (
    SPDFactor,
    contract_points,
    dense,
    kron_apply,
    kron_logdet,
    kron_quadform,
    mode_cholesky_solve,
    mode_product,
)

F64 = torch.float64


def _kernels():
    g = torch.Generator().manual_seed(0)
    rand = lambda q: torch.rand(q, dtype=F64, generator=g)  # noqa: E731
    return [
        GaussianMixture1d(3, rand(3).log(), rand(3) - 0.5, 2 * rand(3)),
        StudentTMixture1d(3, rand(3).log(), rand(3) - 0.5, 2 * rand(3), nu=2.5),
        StudentTMixture1d(2, rand(2).log(), rand(2) - 0.5, 2 * rand(2), nu=1.5),
        SE1d(0.4),
        Matern1d(0.6),
    ]


@pytest.mark.parametrize("k", _kernels(), ids=lambda k: type(k).__name__)
def test_derivatives_match_central_differences(k):
    g = torch.Generator().manual_seed(1)
    r = torch.cat(
        [
            torch.rand(12, dtype=F64, generator=g) * 3 - 1.5,
            torch.tensor([0.0, 1e-9, -1e-9], dtype=F64),
        ]
    )
    with torch.no_grad():
        for n in range(1, k.max_order + 1):
            h = 1e-6
            fd = (k.deriv(r + h, n - 1) - k.deriv(r - h, n - 1)) / (2 * h)
            exact = k.deriv(r, n)
            # the top derivative of the Matern envelope has a kink at 0 (|r| term): one-sided limit there
            tol = 1e-6 * (1 + exact.abs())
            if isinstance(k, StudentTMixture1d) and n == k.max_order:
                tol = tol + 1e-4 * k._alpha().max() ** (n + 1) * (r.abs() < 2 * h)
            assert ((fd - exact).abs() <= tol).all(), (n, (fd - exact).abs().max())
            # parity: even orders are even functions, odd orders odd
            assert torch.allclose(k.deriv(-r, n), (-1) ** n * exact, rtol=1e-13, atol=1e-13)


def test_closed_forms_at_zero():
    w, a, mu = 0.7, 1.3, 0.4
    b = 2 * math.pi * mu
    k = GaussianMixture1d(1, math.log(w), math.log(a), mu)
    z = torch.zeros(1, dtype=F64)
    with torch.no_grad():
        assert k.deriv(z, 2).item() == pytest.approx(-w * (2 * a + b * b), rel=1e-13)
        assert k.deriv(z, 4).item() == pytest.approx(
            w * (12 * a * a + 12 * a * b * b + b**4), rel=1e-13
        )
        r = torch.tensor([0.37], dtype=F64)
        E = math.exp(-a * 0.37**2)
        k2 = (
            w
            * E
            * (
                (4 * a * a * 0.37**2 - 2 * a - b * b) * math.cos(b * 0.37)
                + 4 * a * b * 0.37 * math.sin(b * 0.37)
            )
        )
        assert k.deriv(r, 2).item() == pytest.approx(k2, rel=1e-13)
    m = Matern1d(lengthscale=0.5)  # alpha = sqrt(5) / 0.5
    alpha = math.sqrt(5) / 0.5
    with torch.no_grad():
        assert m.deriv(z, 4).item() == pytest.approx(alpha**4, rel=1e-13)
        assert m.deriv(z, 2).item() == pytest.approx(-(alpha**2) / 3, rel=1e-13)


def test_sympy_gaussian_mixture_all_orders():
    sp = pytest.importorskip("sympy")
    r, a, b, w = sp.symbols("r a b w", real=True)
    expr = w * sp.exp(-a * r**2) * sp.cos(b * r)
    k = GaussianMixture1d(1, math.log(0.7), math.log(1.3), 0.4)
    sub = {w: 0.7, a: 1.3, b: 2 * math.pi * 0.4}
    for n in range(5):
        for x in (0.0, 0.37, -0.81):
            ref = float(sp.diff(expr, r, n).subs(sub).subs(r, x))
            with torch.no_grad():
                got = k.deriv(torch.tensor([x], dtype=F64), n).item()
            assert got == pytest.approx(ref, rel=1e-12, abs=1e-12)


def test_diagonal_of_second_derivative_is_not_zero():
    """Regression: autograd through |r| would put 0 on the whole diagonal of K''."""
    k = make_kernel("stm", n_components=4, freq_scale=3.0)
    x = torch.linspace(0, 1, 9, dtype=F64)
    with torch.no_grad():
        K2 = k.matrix(x, x, 2)
        d0 = k.deriv(torch.zeros(1, dtype=F64), 2)
    assert torch.allclose(K2.diagonal(), d0.expand(9), rtol=1e-14)
    assert d0.abs().item() > 1e-3


def test_hyperparameter_gradients_match_finite_differences():
    k = make_kernel("gm", n_components=3, freq_scale=2.0)
    r = torch.linspace(-1, 1, 7, dtype=F64)

    def f():
        return (k.deriv(r, 2) ** 2).sum() + k.deriv(r, 1).sum()

    f().backward()
    for p in (k.log_weight, k.log_inv_ls, k.mu):
        for i in range(p.numel()):
            with torch.no_grad():
                h = 1e-6
                p[i] += h
                up = f()
                p[i] -= 2 * h
                down = f()
                p[i] += h
            assert p.grad[i].item() == pytest.approx(
                ((up - down) / (2 * h)).item(), rel=1e-5, abs=1e-8
            )


def test_sign_rule_in_product_kernel():
    k = ProductKernel([SE1d(0.3), make_kernel("stm", n_components=2, freq_scale=1.0)])
    g = torch.Generator().manual_seed(3)
    xa, xb = torch.rand(4, 2, dtype=F64, generator=g), torch.rand(5, 2, dtype=F64, generator=g)
    h = 1e-5
    with torch.no_grad():
        # d/dx'_0 by central differences equals block(beta=(1, 0))
        e = torch.tensor([h, 0.0], dtype=F64)
        fd = (k.block(xa, xb + e) - k.block(xa, xb - e)) / (2 * h)
        assert torch.allclose(fd, k.block(xa, xb, beta=(1, 0)), rtol=1e-6, atol=1e-9)
        # d2/dx_1 dx'_1 = -k_1''
        assert torch.allclose(
            k.block(xa, xb, (0, 1), (0, 1)), -k.block(xa, xb, (0, 2), (0, 0)), rtol=1e-14
        )


def test_cauchy_spectrum_refuses_derivatives():
    k = StudentTMixture1d(2, 0.0, 0.0, [0.0, 1.0], nu=0.5)
    with pytest.raises(ValueError, match="max_order"):
        k.deriv(torch.zeros(3, dtype=F64), 2)


@pytest.mark.parametrize("name", ["gm", "stm", "se", "matern"])
def test_toeplitz_equals_dense(name):
    k = make_kernel(name, n_components=5, freq_scale=3.0)
    x = torch.linspace(-0.5, 1.5, 23, dtype=F64)
    h = float(x[1] - x[0])
    with torch.no_grad():
        for n in range(k.max_order + 1):
            assert torch.allclose(k.toeplitz(h, 23, n), k.matrix(x, x, n), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sizes", [(5, 7), (4, 5, 6)])
def test_kronecker_algebra_equals_dense(sizes):
    g = torch.Generator().manual_seed(0)
    kernels = [make_kernel("gm", n_components=3, freq_scale=2.0) for _ in sizes]
    axes = [torch.linspace(0, 1, m, dtype=F64) for m in sizes]
    with torch.no_grad():
        C = [
            k.matrix(a, a, 0) + 1e-3 * torch.eye(a.numel(), dtype=F64)
            for k, a in zip(kernels, axes)
        ]
        L = [torch.linalg.cholesky(c) for c in C]
        U = torch.randn(*sizes, dtype=F64, generator=g)
        Cd = dense(C)
        u = U.reshape(-1)
        assert torch.allclose(kron_quadform(L, U), u @ torch.linalg.solve(Cd, u), rtol=1e-10)
        assert torch.allclose(kron_logdet(L), torch.logdet(Cd), rtol=1e-10)
        # solve: mode solves on every axis equal the dense solve
        V = U
        for j, Lj in enumerate(L):
            V = mode_cholesky_solve(V, Lj, j)
        assert torch.allclose(V.reshape(-1), torch.linalg.solve(Cd, u), rtol=1e-9, atol=1e-10)
        # mode-product derivative along axis 0 (order 2) equals the Kronecker-matrix derivative
        D0 = torch.linalg.solve(C[0], kernels[0].matrix(axes[0], axes[0], 2).T).T
        eye = [torch.eye(m, dtype=F64) for m in sizes]
        got = kron_apply([D0] + [None] * (len(sizes) - 1), U).reshape(-1)
        assert torch.allclose(got, dense([D0] + eye[1:]) @ u, rtol=1e-10, atol=1e-10)
        # off-grid prediction k(x*, grid) C^{-1} vec U at scattered points
        pts = torch.rand(6, len(sizes), dtype=F64, generator=g)
        F = [
            torch.linalg.solve(c, k.matrix(pts[:, j], a, 0).T).T
            for j, (k, a, c) in enumerate(zip(kernels, axes, C))
        ]
        row = F[0]
        for f in F[1:]:
            row = torch.einsum("ni,nk->nik", row, f).reshape(6, -1)
        assert torch.allclose(contract_points(F, U), row @ u, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sizes", [(9,), (5, 7)])
def test_spd_factor_gradients_equal_autograd_through_cholesky(sizes):
    """The closed-form gradients of SPDFactor (solve, log-determinant, Kronecker quadratic form,
    mode solves followed by a derivative matrix) equal autograd through torch's Cholesky."""
    torch.manual_seed(0)
    kernels = [make_kernel("stm", n_components=3, freq_scale=2.0) for _ in sizes]
    axes = [torch.linspace(0, 1, m, dtype=F64) for m in sizes]
    U = torch.randn(*sizes, dtype=F64, requires_grad=True)

    def loss(closed_form):
        chols = []
        for k, a in zip(kernels, axes):
            C = k.matrix(a, a, 0) + 1e-2 * torch.eye(a.numel(), dtype=F64)
            L = torch.linalg.cholesky(C.detach() if closed_form else C)
            chols.append(SPDFactor(C, L) if closed_form else L)
        K2 = kernels[0].matrix(axes[0], axes[0], 2)
        V = mode_product(mode_cholesky_solve(U, chols[0], 0), K2, 0)
        return kron_quadform(chols, U) + kron_logdet(chols) + (V * V).sum()

    params = [U] + [p for k in kernels for p in k.parameters()]
    ref, got = loss(False), loss(True)
    assert torch.allclose(got, ref, rtol=1e-12)
    for a, b in zip(torch.autograd.grad(ref, params), torch.autograd.grad(got, params)):
        assert torch.allclose(b, a, rtol=1e-9, atol=1e-12 * float(a.abs().max()))


@pytest.mark.parametrize(
    "kernel",
    [
        make_kernel("gm", n_components=4, freq_scale=3.0),
        make_kernel("stm", n_components=4, freq_scale=3.0),
        make_kernel("stm", n_components=3, freq_scale=2.0, nu=1.5),
        make_kernel("stm", n_components=3, freq_scale=2.0, nu=0.5),
        SE1d(0.3),
        Matern1d(0.4),
    ],
    ids=["gm", "stm", "stm-3/2", "stm-1/2", "se", "matern"],
)
def test_toeplitz_closed_form_backward_equals_autograd(kernel):
    """The Toeplitz tables' closed-form parameter gradients (lag partials and the diagonal-sum
    gather) equal autograd through the dense ``matrix`` path, for every available order."""
    torch.manual_seed(1)
    with torch.no_grad():  # move off the initialisation so every partial is generic
        for p in kernel.parameters():
            p.add_(0.3 * torch.randn_like(p))
    m, h = 23, 0.07
    x = torch.arange(m, dtype=F64) * h
    params = [p for p in kernel.parameters() if p.requires_grad]
    for n in range(kernel.max_order + 1):
        W = torch.randn(m, m, dtype=F64)
        T = kernel.toeplitz(h, m, n)
        K = kernel.matrix(x, x, n)
        assert torch.allclose(T, K, rtol=1e-12, atol=1e-12)
        got = torch.autograd.grad((W * T).sum(), params)
        ref = torch.autograd.grad((W * K).sum(), params)
        for a, b in zip(ref, got):
            assert torch.allclose(b, a, rtol=1e-9, atol=1e-9 * float(a.abs().max())), (n, a, b)
