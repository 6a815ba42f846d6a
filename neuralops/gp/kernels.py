"""Stationary 1-D kernels with closed-form derivatives, and their product over axes.

Every 1-D kernel is a sum of ``Q`` components ``w_q env_q(r) cos(2 pi mu_q r)`` in the signed lag
``r = x - x'``; the d-D kernel is the product over axes. Derivatives up to order 4 are closed forms
(never autograd through ``|r|``: torch's ``abs`` has derivative 0 at 0, which would zero the diagonal
of ``K''``). Autograd is used only for hyperparameters.

Sign rule: ``d^a/dx^a d^b/dx'^b k(x - x') = (-1)^b k^{(a+b)}(r)``, per axis factor.

>>> import torch
>>> k = SE1d(lengthscale=0.5)
>>> r = torch.tensor([0.0, 0.3], dtype=torch.float64)
>>> k.deriv(r, 2)[0].item()          # -1/l^2 at r = 0
-4.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "AbstractKernel1d",
    "GaussianMixture1d",
    "StudentTMixture1d",
    "SE1d",
    "Matern1d",
    "ProductKernel",
    "make_kernel",
    "KERNELS",
]

F64 = torch.float64


def _param(v, shape=None) -> torch.nn.Parameter:
    t = torch.as_tensor(v, dtype=F64)
    if shape is not None:
        t = t.expand(shape).clone()
    return torch.nn.Parameter(t.clone())


class AbstractKernel1d(torch.nn.Module):
    """A 1-D stationary mixture kernel. Parameters (float64, shape ``(Q,)``):

    ``log_weight`` (w = exp), ``log_inv_ls`` (the envelope rate, see the subclass), ``mu`` (frequency
    in cycles per unit length). ``max_order`` is the highest derivative available in closed form.
    """

    max_order: int = 0

    def __init__(self, n_components: int, log_weight, log_inv_ls, mu, *, learn_mu: bool = True):
        super().__init__()
        q = int(n_components)
        if q < 1:
            raise ValueError(f"n_components: expected Q >= 1, got {n_components}")
        self.log_weight = _param(log_weight, (q,))
        self.log_inv_ls = _param(log_inv_ls, (q,))
        self.mu = _param(mu, (q,))
        self.mu.requires_grad_(learn_mu)

    @property
    def n_components(self) -> int:
        return self.log_weight.numel()

    def _check_order(self, n: int) -> None:
        if not 0 <= n <= self.max_order:
            raise ValueError(
                f"{type(self).__name__}: derivative order {n} is not available "
                f"(max_order = {self.max_order}); use a smoother kernel, e.g. 'gm' or Matern nu=5/2"
            )

    def deriv(self, r: torch.Tensor, n: int = 0) -> torch.Tensor:
        """``k^{(n)}(r)`` at signed lags ``r`` (any shape), summed over components; same shape as r."""
        self._check_order(n)
        r = torch.as_tensor(r, dtype=F64)
        return self._components(r.unsqueeze(-1), n).sum(dim=-1)

    def _components(self, r: torch.Tensor, n: int) -> torch.Tensor:  # (..., 1) -> (..., Q)
        raise NotImplementedError

    def matrix(self, xa: torch.Tensor, xb: torch.Tensor, n: int = 0) -> torch.Tensor:
        """``K[a, b] = k^{(n)}(xa[a] - xb[b])``, shape ``(len(xa), len(xb))``."""
        return self.deriv(xa[:, None] - xb[None, :], n)

    def toeplitz(self, h: float, m: int, n: int = 0) -> torch.Tensor:
        """The same matrix on ``m`` uniform nodes of spacing ``h`` from ``m`` lag evaluations.

        Under autograd the lag values and the gather take closed-form backward passes
        (:meth:`_partials`, a diagonal sum by ``bincount``) instead of one graph node per
        elementwise operation: this is the inner loop of every GP-HM step."""
        self._check_order(n)
        device = self.log_weight.device
        lags = torch.arange(m, dtype=F64, device=device) * h
        params = (self.log_weight, self.log_inv_ls, self.mu)
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            vals = _LagTable.apply(self, n, lags, *params)
        else:
            vals = self.deriv(lags, n)
        index, sign = _toeplitz_index(m, device)
        return _ToeplitzGather.apply(vals, index, sign if n % 2 else None)

    def _partials(self, r: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
        """Components of ``k^{(n)}`` at lags ``r`` ``(m, 1)`` and their derivatives with respect to
        ``(log_weight, log_inv_ls, mu)``: four ``(m, Q)`` tensors."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Component weights, frequencies and length-scales, sorted by decreasing weight."""
        with torch.no_grad():
            w = self.log_weight.exp()
            order = torch.argsort(w, descending=True)
            return {
                "kernel": type(self).__name__,
                "weight": w[order].tolist(),
                "mu": self.mu[order].tolist(),
                "lengthscale": self.lengthscale()[order].tolist(),
            }

    def lengthscale(self) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"Q={self.n_components}, max_order={self.max_order}"


class _LagTable(torch.autograd.Function):
    """``sum_q k_q^{(n)}(r)`` with parameter gradients from the kernel's closed-form partials."""

    @staticmethod
    def forward(ctx, kernel, n, r, log_weight, log_inv_ls, mu):
        value, *partials = kernel._partials(r[:, None], n)
        ctx.save_for_backward(*partials)
        return value.sum(dim=-1)

    @staticmethod
    def backward(ctx, g):
        grads = [
            g @ p if need else None for p, need in zip(ctx.saved_tensors, ctx.needs_input_grad[3:])
        ]
        return (None, None, None, *grads)


class _ToeplitzGather(torch.autograd.Function):
    """``T[a, b] = vals[|a - b|]`` (times ``sign(a - b)`` for odd orders); the backward pass sums
    the diagonals with one ``bincount`` instead of an accumulating scatter."""

    @staticmethod
    def forward(ctx, vals, index, sign):
        ctx.save_for_backward(index, sign)
        ctx.m = vals.numel()
        out = vals[index]
        return out * sign if sign is not None else out

    @staticmethod
    def backward(ctx, g):
        index, sign = ctx.saved_tensors
        w = g * sign if sign is not None else g
        return torch.bincount(index.reshape(-1), weights=w.reshape(-1), minlength=ctx.m), None, None


_TOEPLITZ_CACHE: dict = {}


def _toeplitz_index(m: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``|a - b|`` and ``sign(a - b)`` for an ``m x m`` Toeplitz gather (cached per size)."""
    key = (m, str(device))
    if key not in _TOEPLITZ_CACHE:
        idx = torch.arange(m, device=device)
        diff = idx[:, None] - idx[None, :]
        if len(_TOEPLITZ_CACHE) > 16:
            _TOEPLITZ_CACHE.clear()
        _TOEPLITZ_CACHE[key] = (diff.abs(), torch.sign(diff).to(F64))
    return _TOEPLITZ_CACHE[key]


class GaussianMixture1d(AbstractKernel1d):
    """Spectral mixture with Gaussian spectra (GP-HM-GM): ``w exp(-a r^2) cos(b r)``, ``a = exp(log_inv_ls)``,
    ``b = 2 pi mu``. Closed-form derivatives ``k^{(n)} = w Re E_n``, ``E_n = d^n/dr^n e^{-ar^2 + ibr}``
    (``= P_n(r) e^{-ar^2+ibr}`` of gp.md), by the Hermite recurrence ``E_{n+1} = (ib - 2ar) E_n
    - 2an E_{n-1}``."""

    max_order = 4

    def _derivs(self, r, n):
        """``E_k = d^k/dr^k exp(phi)``, ``phi = -a r^2 + i b r``, k = 0..n, by the Hermite recurrence
        ``E_{k+1} = phi' E_k - 2 a k E_{k-1}``; and ``(w, a)``."""
        w, a, b = self.log_weight.exp(), self.log_inv_ls.exp(), 2 * math.pi * self.mu
        E = [torch.exp(torch.complex(-a * r * r, b * r))]
        dphi = torch.complex(-2 * a * r, b + torch.zeros_like(r * a))
        for k in range(n):
            E.append(dphi * E[k] - (2 * a * k) * E[k - 1] if k else dphi * E[0])
        return E, w, a

    def _components(self, r, n):
        E, w, _ = self._derivs(r, n)
        return w * E[n].real

    def _partials(self, r, n):
        # d/da k^{(n)} = -w Re d^n(r^2 e^phi), d/db k^{(n)} = -w Im d^n(r e^phi) (Leibniz)
        E, w, a = self._derivs(r, n)
        En = E[n]
        e1 = E[n - 1] if n >= 1 else 0.0
        e2 = E[n - 2] if n >= 2 else 0.0
        value = w * En.real
        d_a = -w * (r * r * En + 2 * n * r * e1 + n * (n - 1) * e2).real
        d_b = -w * (r * En + n * e1).imag
        return value, value, a * d_a, 2 * math.pi * d_b

    def lengthscale(self):
        return 1.0 / torch.sqrt(2.0 * self.log_inv_ls.exp())


def _matern_envelope(nu: float, alpha: torch.Tensor, r: torch.Tensor, k: int) -> torch.Tensor:
    """``gamma^{(k)}(r)`` of the Matern envelope with rate ``alpha``, in closed form."""
    s = r.abs()
    e = torch.exp(-alpha * s)
    a2 = alpha * alpha
    if nu == 2.5:
        forms = (
            lambda: (1 + alpha * s + a2 * s * s / 3) * e,
            lambda: -(a2 / 3) * r * (1 + alpha * s) * e,
            lambda: -(a2 / 3) * (1 + alpha * s - a2 * s * s) * e,
            lambda: (a2 * a2 / 3) * r * (3 - alpha * s) * e,
            lambda: (a2 * a2 / 3) * (3 - 5 * alpha * s + a2 * s * s) * e,
            # one order past max_order, only ever multiplied by r (it jumps at 0)
            lambda: (
                (a2 * a2 / 3) * torch.sign(r) * (-8 * alpha + 7 * a2 * s - alpha * a2 * s * s) * e
            ),
        )
    elif nu == 1.5:
        forms = (
            lambda: (1 + alpha * s) * e,
            lambda: -a2 * r * e,
            lambda: -a2 * (1 - alpha * s) * e,
            lambda: alpha * a2 * torch.sign(r) * (2 - alpha * s) * e,
        )
    else:  # nu = 1/2: exponential kernel, Cauchy spectrum
        forms = (lambda: e, lambda: -alpha * torch.sign(r) * e)
    return forms[k]()


class StudentTMixture1d(AbstractKernel1d):
    """Spectral mixture with Student-t spectra (GP-HM-StM): ``w gamma_nu(r; alpha) cos(b r)`` with the
    Matern envelope ``gamma_nu``, ``alpha = sqrt(2 nu) exp(log_inv_ls)``. ``nu`` in {1/2, 3/2, 5/2}:
    ``max_order`` 0, 2, 4 (nu = 1/2, the Cauchy spectrum, is not differentiable)."""

    def __init__(self, n_components, log_weight, log_inv_ls, mu, *, nu: float = 2.5, learn_mu=True):
        super().__init__(n_components, log_weight, log_inv_ls, mu, learn_mu=learn_mu)
        if nu not in (0.5, 1.5, 2.5):
            raise ValueError(
                f"nu: expected 0.5, 1.5 or 2.5 (closed-form Matern envelopes), got {nu}"
            )
        self.nu = float(nu)
        self.max_order = {0.5: 0, 1.5: 2, 2.5: 4}[self.nu]

    def _alpha(self):
        return math.sqrt(2 * self.nu) * self.log_inv_ls.exp()

    def _components(self, r, n):
        return self._series(r, n, partials=False)[0]

    def _partials(self, r, n):
        return self._series(r, n, partials=True)

    def _series(self, r, n, partials):
        # k^{(n)} = w sum_k C(n,k) gamma^{(k)} b^m cos(br + m pi/2), m = n - k (Leibniz). Partials:
        # gamma^{(k)}(r; alpha) = alpha^k g^{(k)}(alpha r), so alpha d/dalpha gamma^{(k)} =
        # k gamma^{(k)} + r gamma^{(k+1)}; d/db [b^m cos(br + m pi/2)] = m b^{m-1} c_m + r b^m c_{m+1}
        w, alpha, b = self.log_weight.exp(), self._alpha(), 2 * math.pi * self.mu
        top = n + 2 if partials else n + 1
        env = [_matern_envelope(self.nu, alpha, r, k) for k in range(top)]
        cos = [torch.cos(b * r + m * math.pi / 2) for m in range(top)]
        value = d_l = d_b = 0.0
        for k in range(n + 1):
            m, c = n - k, math.comb(n, k)
            bm = b**m
            value = value + c * env[k] * bm * cos[m]
            if partials:
                d_l = d_l + c * (k * env[k] + r * env[k + 1]) * bm * cos[m]
                d_b = d_b + c * env[k] * (
                    r * bm * cos[m + 1] + (m * b ** (m - 1) * cos[m] if m else 0.0)
                )
        value = w * value
        return (value, value, w * d_l, 2 * math.pi * w * d_b) if partials else (value,)

    def lengthscale(self):
        return torch.exp(-self.log_inv_ls)

    def describe(self) -> dict:
        return {**super().describe(), "nu": self.nu}

    def extra_repr(self) -> str:
        return f"Q={self.n_components}, nu={self.nu}, max_order={self.max_order}"


class SE1d(GaussianMixture1d):
    """Squared exponential ``w exp(-r^2 / (2 l^2))`` (Q = 1, mu fixed at 0)."""

    def __init__(self, lengthscale: float = 1.0, weight: float = 1.0):
        if lengthscale <= 0 or weight <= 0:
            raise ValueError(
                f"SE1d: lengthscale and weight must be > 0, got {lengthscale}, {weight}"
            )
        super().__init__(1, math.log(weight), -math.log(2 * lengthscale**2), 0.0, learn_mu=False)


class Matern1d(StudentTMixture1d):
    """Matern-nu ``w gamma_nu(r; sqrt(2 nu) / l)`` (Q = 1, mu fixed at 0)."""

    def __init__(self, lengthscale: float = 1.0, weight: float = 1.0, nu: float = 2.5):
        if lengthscale <= 0 or weight <= 0:
            raise ValueError(
                f"Matern1d: lengthscale and weight must be > 0, got {lengthscale}, {weight}"
            )
        super().__init__(1, math.log(weight), -math.log(lengthscale), 0.0, nu=nu, learn_mu=False)


#: kernel names accepted by :func:`make_kernel`
KERNELS = ("gm", "stm", "se", "matern")


def make_kernel(
    name: str, *, n_components: int = 30, freq_scale: float = 20.0, nu: float = 2.5
) -> AbstractKernel1d:
    """A 1-D kernel at the GP-HM reference initialisation: ``log w = -log Q``, ``log_inv_ls = 0``,
    ``mu = linspace(0, freq_scale, Q)``; ``se``/``matern`` are one component with ``mu = 0``."""
    if name not in KERNELS:
        raise ValueError(f"kernel: unknown name {name!r}; choose one of {', '.join(KERNELS)}")
    if name in ("se", "matern"):
        k = SE1d() if name == "se" else Matern1d(nu=nu)
        with torch.no_grad():
            k.log_inv_ls.zero_()
        return k
    q = int(n_components)
    if q < 1:
        raise ValueError(f"n_components: expected Q >= 1, got {n_components}")
    if not freq_scale > 0:
        raise ValueError(f"freq_scale: expected F > 0 (cycles per unit length), got {freq_scale}")
    mu = torch.linspace(0.0, float(freq_scale), q, dtype=F64)
    cls = GaussianMixture1d if name == "gm" else StudentTMixture1d
    kw = {"nu": nu} if name == "stm" else {}
    return cls(q, -math.log(q), 0.0, mu, **kw)


class ProductKernel(torch.nn.Module):
    """``k(x, x') = prod_j k_j(x_j - x'_j)`` over ``d`` axes, one 1-D kernel per axis."""

    def __init__(self, factors: Sequence[AbstractKernel1d]):
        super().__init__()
        if not factors:
            raise ValueError("ProductKernel: need one 1-D kernel per axis")
        self.factors = torch.nn.ModuleList(factors)

    @property
    def dim(self) -> int:
        return len(self.factors)

    @property
    def max_order(self) -> tuple[int, ...]:
        return tuple(k.max_order for k in self.factors)

    def block(
        self,
        xa: torch.Tensor,
        xb: torch.Tensor,
        alpha: Sequence[int] | None = None,
        beta: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """``D^alpha_x D^beta_x' k(xa_i, xb_j)``, shape ``(len(xa), len(xb))``; xa, xb are ``(N, d)``."""
        d = self.dim
        alpha = tuple(alpha or (0,) * d)
        beta = tuple(beta or (0,) * d)
        if xa.shape[-1] != d or xb.shape[-1] != d or len(alpha) != d or len(beta) != d:
            raise ValueError(
                f"ProductKernel.block: expected points (N, {d}) and {d}-long multi-indices, got "
                f"{tuple(xa.shape)}, {tuple(xb.shape)}, {alpha}, {beta}"
            )
        out = None
        for j, k in enumerate(self.factors):
            n = alpha[j] + beta[j]
            f = k.deriv(xa[:, j, None] - xb[None, :, j], n)
            if beta[j] % 2:
                f = -f
            out = f if out is None else out * f
        return out

    def describe(self) -> list[dict]:
        return [k.describe() for k in self.factors]
