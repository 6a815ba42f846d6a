"""Declarative pointwise PDE specifications on boxes, shared by the GP solvers and the benchmarks.

A :class:`PDESpec` says *what* is solved, never *how*: the residual is ``P(u) - f`` where ``P``
reads a fixed set of derivatives of ``u`` (the *jet*) at one point at a time. Time is an ordinary
axis of the box (``names=("x", "t")``).

>>> import math, torch
>>> spec = poisson(BoxDomain((0.0,), (1.0,)), exact=lambda x: torch.sin(math.pi * x[:, 0]))
>>> x = torch.tensor([[0.25]], dtype=torch.float64)
>>> round(float(spec.source(x)[0]), 6)     # u_xx = -pi^2 sin(pi x)
-6.978864
>>> spec.jet, spec.is_linear
(((2,),), True)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

__all__ = [
    "BoxDomain",
    "PDESpec",
    "Principal",
    "jet_values",
    "manufactured",
    "poisson",
    "allen_cahn",
    "advection",
    "nonlinear_elliptic",
    "burgers",
]

Field = Callable[[torch.Tensor], torch.Tensor]
Operator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
F64 = torch.float64


@dataclass(frozen=True)
class BoxDomain:
    """The box ``[lower_0, upper_0] x ... x [lower_{d-1}, upper_{d-1}]``; axis names label plots."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    names: tuple[str, ...] = ()

    def __post_init__(self):
        lower = tuple(float(v) for v in self.lower)
        upper = tuple(float(v) for v in self.upper)
        if not lower or len(lower) != len(upper):
            raise ValueError(
                f"BoxDomain: lower and upper need the same non-zero length, got {lower} and {upper}"
            )
        if any(not (math.isfinite(a) and math.isfinite(b) and a < b) for a, b in zip(lower, upper)):
            raise ValueError(f"BoxDomain: need finite lower < upper per axis, got {lower}, {upper}")
        d = len(lower)
        default = tuple("xyzw"[:d]) if d <= 4 else tuple(f"x{i}" for i in range(d))
        names = tuple(self.names) or default
        if len(names) != len(lower):
            raise ValueError(f"BoxDomain: {len(names)} names for {len(lower)} axes: {names}")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "names", names)

    @property
    def dim(self) -> int:
        return len(self.lower)

    @property
    def lengths(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in zip(self.lower, self.upper))

    def axes(self, sizes: int | Sequence[int]) -> list[torch.Tensor]:
        """Uniform float64 nodes per axis, end points included; ``sizes`` is one int or one per axis."""
        sizes = _per_axis(sizes, self.dim, "sizes")
        return [
            torch.linspace(a, b, int(m), dtype=F64)
            for a, b, m in zip(self.lower, self.upper, sizes)
        ]

    def grid_points(self, sizes: int | Sequence[int]) -> torch.Tensor:
        """All tensor-grid nodes as ``(prod(sizes), dim)``, C order (last axis fastest)."""
        return tensor_points(self.axes(sizes))

    def face_mask(self, sizes: Sequence[int], faces="all") -> torch.Tensor:
        """Boolean grid of shape ``sizes`` marking nodes on the selected faces."""
        mask = torch.zeros(tuple(sizes), dtype=torch.bool)
        for axis, side in self.faces(faces):
            index = [slice(None)] * self.dim
            index[axis] = 0 if side == 0 else -1
            mask[tuple(index)] = True
        return mask

    def faces(self, faces="all") -> tuple[tuple[int, int], ...]:
        """Normalise ``"all"`` or ``(axis, side)`` pairs (side 0 = lower, 1 = upper)."""
        if isinstance(faces, str):
            if faces != "all":
                raise ValueError(
                    f"boundary_faces: expected 'all' or (axis, side) pairs, got {faces!r}"
                )
            return tuple(itertools.product(range(self.dim), (0, 1)))
        out = []
        for pair in faces:
            axis, side = (int(v) for v in pair)
            if not (0 <= axis < self.dim and side in (0, 1)):
                raise ValueError(
                    f"boundary_faces: ({axis}, {side}) is not a face of a {self.dim}-d box; "
                    "use axis in [0, dim) and side 0 (lower) or 1 (upper)"
                )
            out.append((axis, side))
        return tuple(out)

    def sample_interior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` uniform random points strictly inside the box, ``(n, dim)`` float64."""
        u = torch.rand(n, self.dim, dtype=F64, generator=generator)
        lo, hi = torch.tensor(self.lower, dtype=F64), torch.tensor(self.upper, dtype=F64)
        return lo + u * (hi - lo)

    def sample_boundary(
        self, n: int, faces="all", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` random points on the selected faces, spread in proportion to face measure."""
        faces = self.faces(faces)
        lengths = self.lengths
        measure = torch.tensor(
            [math.prod(lengths[:a] + lengths[a + 1 :]) for a, _ in faces], dtype=F64
        )
        which = torch.multinomial(measure / measure.sum(), n, replacement=True, generator=generator)
        pts = self.sample_interior(n, generator)
        for k, (axis, side) in enumerate(faces):
            sel = which == k
            pts[sel, axis] = self.upper[axis] if side else self.lower[axis]
        return pts


@dataclass(frozen=True)
class Principal:
    """Jet entries entering ``P`` linearly with constant coefficients: ``P = sum_a c_a u_a + R(rest)``.

    ``terms`` is ``((alpha, c_alpha), ...)``, e.g. ``(((2, 0), -1.0), ((0, 2), -1.0))`` for ``-Delta``.
    Gauss-Newton eliminates the combination: ``sum_a c_a u_a = f - R(other entries)``.
    """

    terms: tuple[tuple[tuple[int, ...], float], ...]

    def __post_init__(self):
        terms = tuple((tuple(int(v) for v in a), float(c)) for a, c in self.terms)
        if not terms or any(c == 0 for _, c in terms):
            raise ValueError(
                f"Principal: need at least one (multi-index, non-zero coefficient), got {terms}"
            )
        object.__setattr__(self, "terms", terms)

    @property
    def indices(self) -> tuple[tuple[int, ...], ...]:
        return tuple(a for a, _ in self.terms)


@dataclass(frozen=True)
class PDESpec:
    """``P(u)(x) = f(x)`` in the box, ``u = g`` on ``boundary_faces``.

    operator(jet, x): ``jet`` is ``(N, len(self.jet))`` with column ``k`` holding
    ``D^{jet[k]} u`` at the ``N`` points ``x`` (``(N, dim)``); returns ``(N,)``. It must act
    point by point (checked at construction).
    source(x), boundary(x), exact(x): ``(N, dim) -> (N,)``.
    """

    domain: BoxDomain
    jet: tuple[tuple[int, ...], ...]
    operator: Operator
    source: Field
    boundary: Field
    boundary_faces: object = "all"
    principal: Principal | None = None
    exact: Field | None = None
    name: str = "pde"
    is_linear: bool = field(default=False, init=False)

    def __post_init__(self):
        d = self.domain.dim
        jet = tuple(tuple(int(v) for v in a) for a in self.jet)
        if not jet:
            raise ValueError("PDESpec.jet: need at least one multi-index, e.g. ((2,),) for u_xx")
        for a in jet:
            if len(a) != d or min(a) < 0:
                raise ValueError(
                    f"PDESpec.jet: multi-index {a} does not fit a {d}-d domain "
                    f"(expected {d} non-negative orders)"
                )
        if len(set(jet)) != len(jet):
            raise ValueError(f"PDESpec.jet: repeated multi-index in {jet}")
        object.__setattr__(self, "jet", jet)
        object.__setattr__(self, "boundary_faces", self.domain.faces(self.boundary_faces))
        if self.principal is not None:
            for idx in self.principal.indices:
                if idx not in jet:
                    raise ValueError(f"PDESpec.principal: {idx} is not in the jet {jet}")
        object.__setattr__(self, "is_linear", self._check_operator())

    @property
    def order(self) -> tuple[int, ...]:
        """Highest derivative order per axis."""
        return tuple(max(a[j] for a in self.jet) for j in range(self.domain.dim))

    def residual(self, jet: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``P(u) - f`` at ``x`` given the jet values there."""
        return self.operator(jet, x) - self.source(x)

    def linear_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a linear ``P``: coefficients ``(N, len(jet))`` and offset ``(N,)``, ``P = c . jet + c0``."""
        if not self.is_linear:
            raise ValueError(
                f"{self.name}: the operator is nonlinear; linear_parts needs a linear P"
            )
        n = x.shape[0]
        zero = torch.zeros(n, len(self.jet), dtype=F64)
        c0 = self.operator(zero, x)
        cols = []
        for k in range(len(self.jet)):
            e = zero.clone()
            e[:, k] = 1.0
            cols.append(self.operator(e, x) - c0)
        return torch.stack(cols, dim=1), c0

    def _check_operator(self) -> bool:
        g = torch.Generator().manual_seed(1234)
        n, m = 5, len(self.jet)
        x = self.domain.sample_interior(n, g)
        j1 = torch.randn(n, m, dtype=F64, generator=g)
        j2 = torch.randn(n, m, dtype=F64, generator=g)
        out = self.operator(j1, x)
        if not isinstance(out, torch.Tensor) or out.shape != (n,):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"PDESpec.operator: expected a tensor of shape ({n},) for jet values ({n}, {m}), "
                f"got {got}"
            )
        jac = torch.func.jacrev(lambda j: self.operator(j, x))(j1)  # (n, n, m)
        off = jac.abs().sum(dim=2) * (1 - torch.eye(n, dtype=F64))
        if float(off.max()) > 0:
            raise ValueError(
                f"PDESpec.operator of {self.name!r} is not pointwise: output at one point depends on "
                "jet values at other points; write P(u)(x) from the jet at x only"
            )
        for idx, c in self.principal.terms if self.principal is not None else ():
            dk = jac[torch.arange(n), torch.arange(n), self.jet.index(idx)]
            if not torch.allclose(dk, torch.full_like(dk, c), rtol=1e-12):
                raise ValueError(
                    f"PDESpec.principal: d P / d u_{idx} is {dk.tolist()}, not the constant {c}"
                )
        z = torch.zeros_like(j1)
        p0, p1, p2 = self.operator(z, x), out, self.operator(j2, x)
        additive = torch.allclose(self.operator(j1 + j2, x) + p0, p1 + p2, rtol=1e-10, atol=1e-10)
        homogeneous = torch.allclose(
            self.operator(3 * j1, x) - p0, 3 * (p1 - p0), rtol=1e-10, atol=1e-10
        )
        return bool(additive and homogeneous)

    def __repr__(self) -> str:
        box = " x ".join(f"[{a:g}, {b:g}]" for a, b in zip(self.domain.lower, self.domain.upper))
        kind = "linear" if self.is_linear else "nonlinear"
        return f"PDESpec({self.name!r}, {kind}, jet={self.jet}, domain={box})"


def tensor_points(axes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Cartesian product of 1-D node vectors, ``(prod len, d)`` in C order."""
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


def jet_values(u: Field, x: torch.Tensor, jet: Sequence[Sequence[int]]) -> torch.Tensor:
    """Derivatives ``D^alpha u`` at ``x`` for each multi-index, by float64 autograd: ``(N, len(jet))``."""
    x = x.detach().to(F64).requires_grad_(True)
    cache: dict[tuple[int, ...], torch.Tensor] = {}

    def deriv(alpha: tuple[int, ...]) -> torch.Tensor:
        if alpha in cache:
            return cache[alpha]
        if sum(alpha) == 0:
            val = u(x)
        else:
            j = max(i for i, a in enumerate(alpha) if a > 0)
            lower = tuple(a - (i == j) for i, a in enumerate(alpha))
            prev = deriv(lower)
            (grad,) = torch.autograd.grad(prev.sum(), x, create_graph=True, allow_unused=True)
            val = torch.zeros_like(prev) if grad is None else grad[:, j]
        cache[alpha] = val
        return val

    with torch.enable_grad():
        cols = [deriv(tuple(int(v) for v in a)) for a in jet]
    return torch.stack([c.detach() for c in cols], dim=1)


def manufactured(spec: PDESpec, exact: Field) -> PDESpec:
    """The same PDE with ``f = P(exact)`` and ``g = exact``, so ``exact`` solves it."""

    def source(x: torch.Tensor) -> torch.Tensor:
        x = x.to(F64)
        return spec.operator(jet_values(exact, x, spec.jet), x)

    def boundary(x: torch.Tensor) -> torch.Tensor:
        return exact(x.to(F64)).detach()

    return PDESpec(
        domain=spec.domain,
        jet=spec.jet,
        operator=spec.operator,
        source=source,
        boundary=boundary,
        boundary_faces=spec.boundary_faces,
        principal=spec.principal,
        exact=exact,
        name=spec.name,
    )


def _per_axis(v, d: int, what: str) -> tuple[int, ...]:
    vals = (v,) * d if isinstance(v, int) else tuple(v)
    if len(vals) != d:
        raise ValueError(f"{what}: expected one value or {d} values, got {v!r}")
    return tuple(int(a) for a in vals)


def _zero(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros(x.shape[0], dtype=F64)


def _finish(spec_kwargs: dict, source, boundary, exact) -> PDESpec:
    if source is None:
        if exact is None:
            raise ValueError(f"{spec_kwargs['name']}: give source= (and boundary=) or exact=")
        spec = manufactured(PDESpec(source=_zero, boundary=_zero, **spec_kwargs), exact)
        return spec if boundary is None else dataclasses.replace(spec, boundary=boundary)
    return PDESpec(source=source, boundary=boundary or _zero, exact=exact, **spec_kwargs)


def _laplace_jet(d: int) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(2 * (i == j) for i in range(d)) for j in range(d))


def poisson(
    domain: BoxDomain, *, source=None, boundary=None, exact=None, name="poisson"
) -> PDESpec:
    """``Delta u = f`` (``u_xx = f`` in 1-D), Dirichlet data on all faces."""
    jet = _laplace_jet(domain.dim)
    return _finish(
        dict(domain=domain, jet=jet, operator=lambda j, x: j.sum(dim=1), name=name, principal=None),
        source,
        boundary,
        exact,
    )


def allen_cahn(
    domain: BoxDomain, *, source=None, boundary=None, exact=None, name="allen_cahn"
) -> PDESpec:
    """Steady Allen-Cahn ``Delta u + u (u^2 - 1) = f``."""
    d = domain.dim
    jet = ((0,) * d,) + _laplace_jet(d)

    def op(j, x):
        u = j[:, 0]
        return j[:, 1:].sum(dim=1) + u * (u * u - 1.0)

    return _finish(
        dict(domain=domain, jet=jet, operator=op, name=name, principal=None),
        source,
        boundary,
        exact,
    )


def advection(
    beta: float, domain: BoxDomain, *, source=None, boundary=None, exact=None, name="advection"
) -> PDESpec:
    """``beta u_x + u_t = f`` on ``(x, t)``; Dirichlet data on all four edges by default."""
    if domain.dim != 2:
        raise ValueError(f"advection: expected a 2-d (x, t) domain, got dim {domain.dim}")
    beta = float(beta)
    jet = ((1, 0), (0, 1))
    return _finish(
        dict(
            domain=domain,
            jet=jet,
            operator=lambda j, x: beta * j[:, 0] + j[:, 1],
            name=name,
            principal=Principal((((0, 1), 1.0),)),
        ),
        source,
        boundary,
        exact,
    )


def nonlinear_elliptic(
    domain: BoxDomain,
    tau: Callable[[torch.Tensor], torch.Tensor] = lambda u: u**3,
    *,
    source=None,
    boundary=None,
    exact=None,
    name="nonlinear_elliptic",
) -> PDESpec:
    """``-Delta u + tau(u) = f`` (Chen et al. use ``tau(u) = u^3``); ``-Delta`` is the principal part."""
    d = domain.dim
    jet = ((0,) * d,) + _laplace_jet(d)

    def op(j, x):
        return -j[:, 1:].sum(dim=1) + tau(j[:, 0])

    principal = Principal(tuple((a, -1.0) for a in jet[1:]))
    return _finish(
        dict(domain=domain, jet=jet, operator=op, name=name, principal=principal),
        source,
        boundary,
        exact,
    )


def burgers(
    nu: float, domain: BoxDomain, *, source=None, boundary=None, exact=None, name="burgers"
) -> PDESpec:
    """Viscous Burgers ``u_t + u u_x - nu u_xx = f`` on ``(x, t)``; ``u_t`` is the principal part."""
    if domain.dim != 2:
        raise ValueError(f"burgers: expected a 2-d (x, t) domain, got dim {domain.dim}")
    nu = float(nu)
    jet = ((0, 0), (1, 0), (2, 0), (0, 1))

    def op(j, x):
        return j[:, 3] + j[:, 0] * j[:, 1] - nu * j[:, 2]

    return _finish(
        dict(domain=domain, jet=jet, operator=op, name=name, principal=Principal((((0, 1), 1.0),))),
        source,
        boundary,
        exact,
    )
