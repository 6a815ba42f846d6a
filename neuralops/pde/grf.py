r"""Gaussian random fields and the scalar samplers that recipes draw parameters from.

A :class:`GRF` has covariance :math:`\sigma^2(-\Delta + \tau^2 I)^{-\alpha}` on [0, 1]^d and is
sampled spectrally (Karhunen-Loeve) in the eigenbasis of the Laplacian for its boundary condition,
on a grid of ``shape = (s_1, ..., s_d)`` points:

- periodic: points ``x_j = j / s`` (the torus, endpoint excluded), eigenfunctions
  ``exp(2 pi i k.x)`` with eigenvalues ``4 pi^2 |k|^2``, FFT;
- neumann: points ``(j + 1/2) / s`` (used as nodes, as FNO does), ``cos(pi k x)`` with
  ``pi^2 |k|^2`` for ``k >= 0``, DCT-II;
- dirichlet: the vertex grid ``j / (s - 1)``, ``sin(pi k x)`` with ``pi^2 |k|^2`` for
  ``1 <= k <= s - 2`` on the interior nodes, DST-I (the field is zero on the boundary nodes).

With the orthonormal transform ``T`` of that list and
:math:`\lambda_k = (\mu_k + \tau^2)^{-\alpha}` (``mu_k`` the eigenvalue), a draw is
``u = mean + sqrt(M) * sigma * T^{-1}(sqrt(lambda) * xi)`` with ``xi`` white noise and ``M`` the
number of grid cells of the transform (``prod(s)``, or ``prod(s - 1)`` for DST-I), so that
``u(x_j) = sum_k sqrt(lambda_k) xi_k phi_k(x_j)`` with :math:`L^2`-normalised ``phi_k``: the
pointwise variance does not depend on the resolution. The Neumann case is the FNO Darcy generator
(``GRF.m``: ``idct2(s * tau^(alpha-1) * (pi^2|k|^2 + tau^2)^(-alpha/2) * xi)`` with the constant
mode removed). The default ``sigma = tau^(alpha - d/2)`` follows FNO; ``alpha > d/2`` is needed
for a finite pointwise variance.

A pointwise :class:`Transform` maps the Gaussian field to the stored one: ``identity``, ``exp``
(log-normal) or ``threshold(a_pos, a_neg)`` (``a_pos`` where the field is >= 0, else ``a_neg``).

Every sampler is a frozen dataclass with ``sample(rng, shape)`` that uses only draws from ``rng``
in a fixed order, so a seeded generator reproduces it bit for bit. :func:`sampler_from_table`
builds one from a recipe table such as ``{sampler = "grf", alpha = 2.0, tau = 3.0,
boundary = "neumann", transform = {threshold = [12.0, 3.0]}}``.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import scipy.fft as sfft
from numpy.polynomial import chebyshev as npcheb

from neuralops.data.errors import RecipeError

__all__ = [
    "BOUNDARIES",
    "SAMPLERS",
    "TRANSFORMS",
    "Sampler",
    "Transform",
    "GRF",
    "Uniform",
    "LogUniform",
    "Choice",
    "Chebyshev",
    "Multiscale",
    "matern",
    "uniform",
    "loguniform",
    "choice",
    "chebyshev",
    "sampler_from_table",
]

BOUNDARIES = ("periodic", "neumann", "dirichlet")
TRANSFORMS = ("identity", "exp", "threshold")


class _BadValue(ValueError):
    """An out-of-range argument; ``key`` lets recipe parsing prefix the table path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key} {message}")
        self.key, self.message = key, message


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise _BadValue(key, message)


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _suggest(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class Sampler(Protocol):
    """Anything a recipe can draw from.

    ``is_field`` samplers return a correlated field of the grid ``shape``; the others return
    independent draws of ``shape`` (``()`` for one scalar).
    """

    is_field: ClassVar[bool]

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray: ...


# ------------------------------------------------------------------------------ transforms
@dataclass(frozen=True)
class Transform:
    """Pointwise map applied to a Gaussian field: ``identity``, ``exp`` or ``threshold``.

    >>> Transform.threshold(12.0, 3.0)(np.array([-0.5, 0.0, 2.0]))
    array([ 3., 12., 12.])
    """

    name: str = "identity"
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _check(
            self.name in TRANSFORMS,
            "transform",
            f"must be one of {', '.join(TRANSFORMS)}, got {self.name!r}"
            f"{_suggest(self.name, TRANSFORMS)}",
        )
        n = 2 if self.name == "threshold" else 0
        _check(
            len(self.values) == n and all(_finite(v) for v in self.values),
            "transform",
            f"{self.name!r} takes {n} finite numbers, got {list(self.values)}"
            + (" (write transform = {threshold = [a_pos, a_neg]})" if n else ""),
        )

    @classmethod
    def identity(cls) -> Transform:
        return cls("identity")

    @classmethod
    def exp(cls) -> Transform:
        return cls("exp")

    @classmethod
    def threshold(cls, a_pos: float, a_neg: float) -> Transform:
        """``a_pos`` where the field is >= 0, ``a_neg`` elsewhere (piecewise constant)."""
        return cls("threshold", (float(a_pos), float(a_neg)))

    def __call__(self, u: np.ndarray) -> np.ndarray:
        if self.name == "exp":
            return np.exp(u)
        if self.name == "threshold":
            return np.where(u >= 0, self.values[0], self.values[1])
        return u

    @property
    def positive(self) -> bool:
        """True when every output is > 0 (a valid diffusion coefficient)."""
        return self.name == "exp" or (self.name == "threshold" and min(self.values) > 0)


# ------------------------------------------------------------------------------ GRF
@functools.lru_cache(maxsize=4)
def _sqrt_spectrum(
    boundary: str,
    alpha: float,
    tau: float,
    sigma: float,
    zero_mean: bool,
    shape: tuple[int, ...],
    half: bool,
) -> np.ndarray:
    """``sqrt`` of the per-mode variance, in the transform's layout (rfft layout if ``half``)."""
    if boundary == "periodic":
        axes = [np.fft.fftfreq(n, 1.0 / n) for n in shape]
        if half:
            axes[-1] = np.fft.rfftfreq(shape[-1], 1.0 / shape[-1])
        mu_scale, cells = 4.0 * np.pi**2, math.prod(shape)
    elif boundary == "neumann":
        axes = [np.arange(n, dtype=float) for n in shape]
        mu_scale, cells = np.pi**2, math.prod(shape)
    else:
        axes = [np.arange(1, n - 1, dtype=float) for n in shape]
        mu_scale, cells = np.pi**2, math.prod(n - 1 for n in shape)
    k2 = functools.reduce(np.add.outer, [k**2 for k in axes])
    var = cells * sigma**2 * (mu_scale * np.asarray(k2, dtype=float) + tau**2) ** (-alpha)
    if zero_mean and boundary != "dirichlet":
        var.flat[0] = 0.0
    out = np.sqrt(var)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class GRF:
    r"""Gaussian random field with covariance :math:`\sigma^2(-\Delta+\tau^2 I)^{-\alpha}`.

    Args:
        alpha: smoothness exponent; needs ``alpha > d/2``.
        tau: inverse length scale, > 0.
        sigma: amplitude; ``None`` means ``tau ** (alpha - d/2)`` (FNO's choice).
        mean: constant added before the transform.
        zero_mean: drop the constant mode (periodic and Neumann), as FNO does.
        boundary: ``"periodic"``, ``"neumann"`` or ``"dirichlet"`` (see the module docstring).
        transform: pointwise map applied last.

    >>> g = GRF(alpha=2.0, tau=3.0, boundary="neumann", transform=Transform.threshold(12, 3))
    >>> a = g.sample(np.random.default_rng(0), (33, 33))
    >>> a.shape, sorted(set(a.ravel().tolist()))
    ((33, 33), [3.0, 12.0])
    """

    is_field: ClassVar[bool] = True

    alpha: float = 2.0
    tau: float = 3.0
    sigma: float | None = None
    mean: float = 0.0
    zero_mean: bool = True
    boundary: str = "periodic"
    transform: Transform = Transform()

    def __post_init__(self) -> None:
        _check(
            _finite(self.alpha) and self.alpha > 0,
            "alpha",
            f"must be a number > d/2 (0.5, 1 or 1.5 in 1, 2, 3-D), got {self.alpha!r}",
        )
        _check(_finite(self.tau) and self.tau > 0, "tau", f"must be a number > 0, got {self.tau!r}")
        _check(
            self.sigma is None or (_finite(self.sigma) and self.sigma > 0),
            "sigma",
            f"must be a number > 0 (or omitted for tau^(alpha - d/2)), got {self.sigma!r}",
        )
        _check(_finite(self.mean), "mean", f"must be a finite number, got {self.mean!r}")
        _check(
            isinstance(self.zero_mean, bool),
            "zero_mean",
            f"must be true or false, got {self.zero_mean!r}",
        )
        _check(
            isinstance(self.boundary, str) and self.boundary in BOUNDARIES,
            "boundary",
            f"must be one of {', '.join(BOUNDARIES)}, got {self.boundary!r}"
            f"{_suggest(str(self.boundary), BOUNDARIES)}",
        )

    def check_dim(self, d: int) -> None:
        """Raise ``ValueError`` unless the field is well defined in ``d`` dimensions."""
        _check(d in (1, 2, 3), "shape", f"must have 1, 2 or 3 axes, got {d}")
        _check(
            self.alpha > d / 2,
            "alpha",
            f"must be > d/2 = {d / 2:g} for a {d}-D field, got {self.alpha!r}",
        )

    def sigma_for(self, d: int) -> float:
        """The amplitude used in ``d`` dimensions (``sigma`` or ``tau^(alpha - d/2)``)."""
        return float(self.sigma) if self.sigma is not None else self.tau ** (self.alpha - d / 2)

    def _shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(int(n) for n in shape)
        self.check_dim(len(shape))
        low = 3 if self.boundary == "dirichlet" else 1
        _check(
            all(n >= low for n in shape),
            "shape",
            f"needs >= {low} points per axis for a {self.boundary} field, got {shape}",
        )
        return shape

    def spectrum(self, shape: Sequence[int]) -> np.ndarray:
        """Analytic variance ``E|c_k|^2`` of each coefficient of :meth:`coefficients`.

        Shape ``shape`` (FFT layout) for periodic and Neumann, ``shape - 2`` for Dirichlet
        (interior nodes). Equals ``M * sigma^2 * lambda_k``, zero for the dropped mean mode.
        """
        shape = self._shape(shape)
        s = _sqrt_spectrum(
            self.boundary,
            float(self.alpha),
            float(self.tau),
            self.sigma_for(len(shape)),
            bool(self.zero_mean),
            shape,
            False,
        )
        return s**2

    def coefficients(self, u: np.ndarray, *, d: int | None = None) -> np.ndarray:
        """Orthonormal transform over the last ``d`` axes (default: all) of a Gaussian field
        (identity transform, mean subtracted): ``fftn``, ``dctn`` type 2 or ``dstn`` type 1 of
        the interior. ``u``: ``(..., *shape)``; returns ``(..., *spectrum(shape).shape)``."""
        d = u.ndim if d is None else d
        axes = tuple(range(-d, 0))
        if self.boundary == "periodic":
            return sfft.fftn(u, axes=axes, norm="ortho")
        if self.boundary == "neumann":
            return sfft.dctn(u, type=2, axes=axes, norm="ortho")
        inner = u[(Ellipsis, *[slice(1, -1)] * d)]
        return sfft.dstn(inner, type=1, axes=axes, norm="ortho")

    def sample(
        self, rng: np.random.Generator, shape: tuple[int, ...] = (), *, batch: int | None = None
    ) -> np.ndarray:
        """One field of grid ``shape = (s_1, ..., s_d)``, float64 of that shape, or
        ``(batch, *shape)`` independent fields (bit-identical to ``batch`` successive calls).

        Draws ``rng.standard_normal`` once, of ``(batch, *shape)`` (interior shape for
        Dirichlet), then applies the inverse transform, the mean and the pointwise transform.
        """
        shape = self._shape(shape)
        lead = () if batch is None else (int(batch),)
        d = len(shape)
        axes = tuple(range(-d, 0))
        args = (
            self.boundary,
            float(self.alpha),
            float(self.tau),
            self.sigma_for(d),
            bool(self.zero_mean),
            shape,
        )
        if self.boundary == "periodic":
            xi = rng.standard_normal(lead + shape)
            spec = _sqrt_spectrum(*args, True)
            u = sfft.irfftn(
                spec * sfft.rfftn(xi, axes=axes, norm="ortho"), s=shape, axes=axes, norm="ortho"
            )
        elif self.boundary == "neumann":
            spec = _sqrt_spectrum(*args, False)
            u = sfft.idctn(
                spec * rng.standard_normal(lead + shape), type=2, axes=axes, norm="ortho"
            )
        else:
            spec = _sqrt_spectrum(*args, False)
            inner = sfft.idstn(
                spec * rng.standard_normal(lead + spec.shape), type=1, axes=axes, norm="ortho"
            )
            u = np.zeros(lead + shape)
            u[(Ellipsis, *[slice(1, -1)] * d)] = inner
        if self.mean:
            u = u + self.mean
        return np.asarray(self.transform(u), dtype=np.float64)


def matern(
    nu: float,
    length_scale: float,
    *,
    d: int,
    variance: float = 1.0,
    boundary: str = "periodic",
    mean: float = 0.0,
    zero_mean: bool = False,
    transform: Transform = Transform(),
) -> GRF:
    r"""The Matern field of smoothness ``nu`` and length ``length_scale`` as a :class:`GRF`.

    Its spectral density :math:`\propto (2\nu/\ell^2 + 4\pi^2|\xi|^2)^{-(\nu + d/2)}` gives
    ``alpha = nu + d/2`` and ``tau = sqrt(2 nu) / length_scale``; ``sigma`` is chosen so the
    marginal variance is ``variance`` on R^d (on [0, 1]^d it is close when ``length_scale``
    is well below 1).

    >>> g = matern(1.5, 0.1, d=2)
    >>> round(g.alpha, 3), round(g.tau, 3)
    (2.5, 17.321)
    """
    _check(_finite(nu) and nu > 0, "nu", f"must be a number > 0, got {nu!r}")
    _check(
        _finite(length_scale) and length_scale > 0,
        "length_scale",
        f"must be a number > 0, got {length_scale!r}",
    )
    _check(_finite(variance) and variance > 0, "variance", f"must be > 0, got {variance!r}")
    alpha, tau = nu + d / 2, math.sqrt(2 * nu) / length_scale
    log_s2 = (
        math.log(variance)
        + math.lgamma(alpha)
        - math.lgamma(nu)
        + d / 2 * math.log(4 * math.pi)
        + 2 * nu * math.log(tau)
    )
    return GRF(
        alpha=alpha,
        tau=tau,
        sigma=math.exp(log_s2 / 2),
        mean=mean,
        zero_mean=zero_mean,
        boundary=boundary,
        transform=transform,
    )


# ------------------------------------------------------------------------------ scalars
@dataclass(frozen=True)
class Uniform:
    """Independent draws from U(low, high)."""

    is_field: ClassVar[bool] = False
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        _check(
            _finite(self.low) and _finite(self.high) and self.low < self.high,
            "high",
            f"must be a number > low, got low={self.low!r}, high={self.high!r}",
        )

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.asarray(rng.uniform(self.low, self.high, size=shape), dtype=np.float64)


@dataclass(frozen=True)
class LogUniform:
    """Independent draws whose logarithm is U(log low, log high); ``0 < low < high``."""

    is_field: ClassVar[bool] = False
    low: float = 1.0
    high: float = 10.0

    def __post_init__(self) -> None:
        _check(_finite(self.low) and self.low > 0, "low", f"must be > 0, got {self.low!r}")
        _check(
            _finite(self.high) and self.high > self.low,
            "high",
            f"must be a number > low = {self.low!r}, got {self.high!r}",
        )

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.exp(rng.uniform(math.log(self.low), math.log(self.high), size=shape))


@dataclass(frozen=True)
class Choice:
    """Independent draws from ``values`` with probabilities ``weights`` (uniform if None)."""

    is_field: ClassVar[bool] = False
    values: tuple[float, ...] = (0.0,)
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check(
            len(self.values) > 0 and all(_finite(v) for v in self.values),
            "values",
            f"must be a non-empty list of numbers, got {list(self.values)}",
        )
        if self.weights is not None:
            w = self.weights
            _check(
                len(w) == len(self.values) and all(_finite(x) and x >= 0 for x in w) and sum(w) > 0,
                "weights",
                f"must be {len(self.values)} numbers >= 0 with a positive sum, got {list(w)}",
            )

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        p = None if self.weights is None else np.asarray(self.weights) / sum(self.weights)
        return np.asarray(
            rng.choice(np.asarray(self.values, dtype=np.float64), size=shape, p=p), dtype=np.float64
        )


@dataclass(frozen=True)
class Chebyshev:
    r"""Random tensor-product Chebyshev polynomial on the vertex grid of [0, 1]^d.

    ``p(x) = sum_{k_1..k_d <= degree} c_k prod_i T_{k_i}(2 x_i - 1)`` with ``c_k ~ U(low, high)``
    drawn in C order; used for boundary data (d = 1, one call per edge) and smooth forcing.

    >>> Chebyshev(0).sample(np.random.default_rng(0), (3,)).shape
    (3,)
    """

    is_field: ClassVar[bool] = True
    degree: int = 5
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        _check(
            isinstance(self.degree, int)
            and not isinstance(self.degree, bool)
            and 0 <= self.degree <= 64,
            "degree",
            f"must be an integer in [0, 64], got {self.degree!r}",
        )
        _check(
            _finite(self.low) and _finite(self.high) and self.low < self.high,
            "high",
            f"must be a number > low, got low={self.low!r}, high={self.high!r}",
        )

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Polynomial values on the grid ``shape`` (``x_j = j / (s - 1)``), float64."""
        shape = tuple(int(n) for n in shape)
        _check(
            len(shape) >= 1 and all(n >= 2 for n in shape),
            "shape",
            f"needs >= 1 axis of >= 2 points, got {shape}",
        )
        out = rng.uniform(self.low, self.high, size=(self.degree + 1,) * len(shape))
        for axis, n in enumerate(shape):
            V = npcheb.chebvander(np.linspace(-1.0, 1.0, n), self.degree)  # (n, degree + 1)
            out = np.moveaxis(np.tensordot(out, V, axes=([axis], [1])), -1, axis)
        return out


def uniform(low: float, high: float) -> Uniform:
    """U(low, high) draws."""
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    """Log-uniform draws on [low, high], ``0 < low``."""
    return LogUniform(float(low), float(high))


def choice(values: Sequence[float], weights: Sequence[float] | None = None) -> Choice:
    """Draws from ``values`` (with optional ``weights``)."""
    return Choice(tuple(values), None if weights is None else tuple(weights))


def chebyshev(degree: int, low: float = -1.0, high: float = 1.0) -> Chebyshev:
    """Random Chebyshev polynomial of ``degree`` with coefficients U(low, high)."""
    return Chebyshev(degree, float(low), float(high))


@dataclass(frozen=True)
class Multiscale:
    r"""The multiscale trigonometric coefficient of the HANO/MgNO Darcy benchmarks on [0, 1]^2:

    .. math:: a(x, y) = \prod_{k=1}^{K} \big(1 + \tfrac12\cos(a_k \pi (x + y))\big)
              \big(1 + \tfrac12\sin(a_k \pi (y - 3x))\big), \qquad a_k \sim U[2^{k-1}, 2^k],

    with ``K = levels`` (6 in the papers, arXiv 2210.10890 / 2310.19809); values lie in
    ``[4^{-K}, (9/4)^K]``. The frequencies double per level, so resolving the finest scale needs
    about ``2^K`` points per unit length at least (1023^2 in the papers, then subsampled).
    The constants follow our reading of the HANO paper; confirm them before quoting its numbers.
    """

    is_field: ClassVar[bool] = True
    levels: int = 6

    def __post_init__(self) -> None:
        _check(
            isinstance(self.levels, int) and 1 <= self.levels <= 10,
            "levels",
            f"must be an integer in 1..10, got {self.levels!r}",
        )

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"the multiscale coefficient is 2-D, got grid shape {shape}")
        x, y = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
        a = np.ones(shape)
        for k in range(1, self.levels + 1):
            ak = rng.uniform(2 ** (k - 1), 2**k)
            a *= (1 + 0.5 * np.cos(ak * np.pi * (x + y))) * (
                1 + 0.5 * np.sin(ak * np.pi * (y - 3 * x))
            )
        return a

    def check_dim(self, d: int) -> None:
        if d != 2:
            raise _BadValue("sampler", f"'multiscale' is a 2-D coefficient, the grid is {d}-D")


# ------------------------------------------------------------------------------ recipes
#: sampler name -> keys its recipe table accepts besides ``sampler``
SAMPLERS: dict[str, tuple[str, ...]] = {
    "grf": ("alpha", "tau", "sigma", "mean", "zero_mean", "boundary", "transform"),
    "matern": ("nu", "length_scale", "variance", "mean", "zero_mean", "boundary", "transform"),
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "choice": ("values", "weights"),
    "chebyshev": ("degree", "low", "high"),
    "multiscale": ("levels",),
}
_REQUIRED = {
    "matern": ("nu", "length_scale"),
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "choice": ("values",),
}


def _number(t: Mapping[str, Any], key: str, where: str) -> float:
    v = t[key]
    if not _finite(v):
        raise RecipeError(f"'{where}.{key}' must be a finite number, got {v!r}")
    return float(v)


def _numbers(t: Mapping[str, Any], key: str, where: str) -> tuple[float, ...]:
    v = t[key]
    if not isinstance(v, list | tuple) or not all(_finite(x) for x in v):
        raise RecipeError(f"'{where}.{key}' must be a list of numbers, got {v!r}")
    return tuple(float(x) for x in v)


def _transform(v: Any, where: str) -> Transform:
    path = f"{where}.transform"
    hint = "'identity', 'exp' or {threshold = [a_pos, a_neg]}"
    if isinstance(v, str):
        name, values = v, ()
    elif isinstance(v, Mapping) and len(v) == 1:
        name, raw = next(iter(v.items()))
        if not isinstance(raw, list | tuple) or not all(_finite(x) for x in raw):
            raise RecipeError(
                f"'{path}.{name}' must be a list of numbers, got {raw!r} (valid: {hint})"
            )
        values = tuple(float(x) for x in raw)
    else:
        raise RecipeError(f"'{path}' must be {hint}, got {v!r}")
    if name not in TRANSFORMS:
        raise RecipeError(
            f"'{path}' = {name!r} is unknown{_suggest(name, TRANSFORMS)} (valid: {hint})"
        )
    if name == "threshold" and len(values) != 2:
        raise RecipeError(
            f"'{path}.threshold' needs two numbers [a_pos, a_neg], got "
            f"{list(values)} (write transform = {{threshold = [12.0, 3.0]}})"
        )
    try:
        return Transform(name, values)
    except _BadValue as exc:
        raise RecipeError(f"'{path}' {exc.message} (valid: {hint})") from None


def sampler_from_table(
    table: Mapping[str, Any],
    d: int,
    *,
    where: str = "params",
    defaults: Mapping[str, Any] | None = None,
) -> Sampler:
    """Build a sampler from a recipe table for a ``d``-dimensional grid.

    ``where`` is the table's key path, used in errors (``'params.a.alpah'``); ``defaults``
    fills keys the table leaves out, where the chosen sampler accepts them (a family's
    default ``boundary``, for instance). Unknown keys, sampler names and transforms raise
    :class:`~neuralops.data.RecipeError` with the valid names and the closest match;
    out-of-range values raise it with the valid range.

    >>> sampler_from_table({"sampler": "grf", "alpha": 2.5, "tau": 7, "transform": "exp"}, 2)
    GRF(alpha=2.5, tau=7.0, sigma=None, mean=0.0, zero_mean=True, boundary='periodic', \
transform=Transform(name='exp', values=()))
    """
    if not isinstance(table, Mapping):
        raise RecipeError(
            f"'{where}' must be a table like {{sampler = \"grf\", ...}}, got {table!r}"
        )
    name = table.get("sampler")
    if not isinstance(name, str):
        raise RecipeError(
            f"'{where}.sampler' is missing or not a string (choose one of {', '.join(SAMPLERS)})"
        )
    if name not in SAMPLERS:
        raise RecipeError(
            f"'{where}.sampler' = {name!r} is unknown{_suggest(name, SAMPLERS)} "
            f"(choose one of {', '.join(SAMPLERS)})"
        )
    valid = SAMPLERS[name]
    for key in table:
        if key != "sampler" and key not in valid:
            raise RecipeError(
                f"unknown key '{where}.{key}'{_suggest(key, valid)} (valid keys for sampler "
                f"{name!r}: sampler, {', '.join(valid)})"
            )
    t = {k: v for k, v in (defaults or {}).items() if k in valid}
    t.update({k: v for k, v in table.items() if k != "sampler"})
    for key in _REQUIRED.get(name, ()):
        if key not in t:
            raise RecipeError(
                f"missing key '{where}.{key}' (sampler {name!r} needs {', '.join(_REQUIRED[name])})"
            )
    try:
        return _build(name, t, d, where)
    except _BadValue as exc:
        raise RecipeError(f"'{where}.{exc.key}' {exc.message}") from None


def _build(name: str, t: dict[str, Any], d: int, where: str) -> Sampler:
    num = lambda *keys: {k: _number(t, k, where) for k in keys if k in t}
    if name in ("grf", "matern"):
        common = {
            "transform": _transform(t.get("transform", "identity"), where),
            **{k: t[k] for k in ("boundary", "zero_mean") if k in t},
            **num("mean"),
        }
        if name == "grf":
            g = GRF(**num("alpha", "tau", "sigma"), **common)
        else:
            g = matern(
                _number(t, "nu", where),
                _number(t, "length_scale", where),
                d=d,
                **num("variance"),
                **common,
            )
        g.check_dim(d)
        return g
    if name == "choice":
        w = _numbers(t, "weights", where) if "weights" in t else None
        return choice(_numbers(t, "values", where), w)
    if name == "chebyshev":
        return Chebyshev(t.get("degree", 5), **num("low", "high"))
    if name == "multiscale":
        m = Multiscale(t.get("levels", 6))
        m.check_dim(d)
        return m
    return (Uniform if name == "uniform" else LogUniform)(**num("low", "high"))
