"""The benchmark cases of the GP-HM and Gauss-Newton papers (gp.md §7), as a named gallery.

Each case builds a manufactured :class:`~neuralops.pde.spec.PDESpec` (source and boundary data from
the exact solution) and carries the reference settings of its solver.

>>> spec = get_case("p1-sin").spec()
>>> spec.name, spec.domain.upper
('p1-sin', (6.283185307179586,))
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from neuralops.gp.kernels import ProductKernel, SE1d
from neuralops.pde.spec import (
    BoxDomain,
    PDESpec,
    advection,
    allen_cahn,
    burgers,
    nonlinear_elliptic,
    poisson,
)

__all__ = ["Case", "CASES", "get_case", "burgers_cole_hopf"]

TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class Case:
    """A named benchmark problem: ``spec()`` builds it; ``hm``/``gn`` are the reference settings."""

    name: str
    build: Callable[[], PDESpec]
    method: str = "hm"
    hm: dict = field(default_factory=dict)
    gn: dict = field(default_factory=dict)
    description: str = ""

    def spec(self) -> PDESpec:
        return self.build()


def _x(x):
    return x[:, 0]


def _y(x):
    return x[:, 1]


def _mix(z):
    return torch.sin(z) + 0.1 * torch.sin(20 * z) + 0.05 * torch.sin(100 * z)


def _ac2(z):
    return torch.sin(z) + 0.1 * torch.sin(20 * z) + torch.cos(100 * z)


def _box(lo, hi, d=1, names=()):
    return BoxDomain((lo,) * d, (hi,) * d, names)


def _p1(name, exact, lo=0.0, hi=TWO_PI, pde=poisson):
    return lambda: pde(_box(lo, hi), exact=exact, name=name)


def _hm(grid, F, steps, lam=200.0, **kw):
    return dict(grid=grid, freq_scale=F, steps=steps, boundary_weight=lam, **kw)


def _gn_ell():
    def exact(x):
        return torch.sin(math.pi * _x(x)) * torch.sin(math.pi * _y(x)) + 2 * torch.sin(
            4 * math.pi * _x(x)
        ) * torch.sin(4 * math.pi * _y(x))

    return nonlinear_elliptic(_box(0.0, 1.0, 2), exact=exact, name="gn-ell")


def burgers_cole_hopf(
    nu: float = 0.02, n_quad: int = 200
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Exact viscous Burgers solution for ``u(x, 0) = -sin(pi x)``, ``u(+-1, t) = 0``.

    Cole-Hopf: ``u(x, t) = -int sin(pi (x - y)) phi(x - y) e^{-y^2 / 4 nu t} dy / int phi(x - y) ...``
    with ``phi(z) = exp(-cos(pi z) / (2 pi nu))``, integrated by ``n_quad``-point Gauss-Hermite
    quadrature in ``y = sqrt(4 nu t) s`` (float64). At ``t = 0`` the initial condition is returned.
    """
    import numpy as np

    s, w = np.polynomial.hermite.hermgauss(int(n_quad))
    s_t, w_t = torch.tensor(s), torch.tensor(w)

    def exact(x: torch.Tensor) -> torch.Tensor:
        xs, t = x[:, 0:1].to(torch.float64), x[:, 1:2].to(torch.float64)
        tt = t.clamp_min(1e-300)
        z = xs - torch.sqrt(4 * nu * tt) * s_t  # (N, Q)
        log_phi = -torch.cos(math.pi * z) / (2 * math.pi * nu)
        log_phi = log_phi - log_phi.max(dim=1, keepdim=True).values  # stable ratio
        phi = torch.exp(log_phi) * w_t
        u = -(torch.sin(math.pi * z) * phi).sum(dim=1) / phi.sum(dim=1)
        return torch.where(t[:, 0] > 0, u, -torch.sin(math.pi * xs[:, 0]))

    return exact


def _gn_burg():
    domain = BoxDomain((-1.0, 0.0), (1.0, 1.0), ("x", "t"))
    exact = burgers_cole_hopf(0.02)
    spec = burgers(
        0.02,
        domain,
        source=lambda x: torch.zeros(x.shape[0], dtype=torch.float64),
        boundary=lambda x: torch.where(
            x[:, 1] == 0.0,
            -torch.sin(math.pi * x[:, 0]),
            torch.zeros(x.shape[0], dtype=torch.float64),
        ),
        exact=exact,
        name="gn-burg",
    )
    return dataclasses.replace(spec, boundary_faces=((0, 0), (0, 1), (1, 0)))


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("p1-sin", _p1("p1-sin", lambda x: torch.sin(100 * _x(x))), hm=_hm(400, 20, 100_000)),
        Case(
            "p1-sincos",
            _p1("p1-sincos", lambda x: torch.sin(6 * _x(x)) * torch.cos(100 * _x(x))),
            hm=_hm(400, 20, 100_000),
        ),
        Case(
            "p1-xsin",
            _p1("p1-xsin", lambda x: _x(x) * torch.sin(200 * _x(x))),
            hm=_hm(900, 50, 100_000),
        ),
        Case(
            "p1-mix",
            _p1("p1-mix", lambda x: _mix(_x(x)), 0.0, 1.0),
            hm=_hm(900, 30, 1_000_000, extra_gp=True, change_point=0.5),
        ),
        Case(
            "p1-x2sin",
            _p1("p1-x2sin", lambda x: torch.sin(500 * _x(x)) - 2 * (_x(x) - 0.5) ** 2, 0.0, 1.0),
            hm=_hm(400, 100, 1_000_000, extra_gp=True, change_point=0.01),
        ),
        Case(
            "ac1-sin",
            _p1("ac1-sin", lambda x: torch.sin(100 * _x(x)), pde=allen_cahn),
            hm=_hm(400, 20, 100_000),
        ),
        Case(
            "ac1-sincos",
            _p1(
                "ac1-sincos",
                lambda x: torch.sin(6 * _x(x)) * torch.cos(100 * _x(x)),
                pde=allen_cahn,
            ),
            hm=_hm(400, 20, 100_000),
        ),
        Case(
            "p2-sinsin",
            lambda: poisson(
                _box(0.0, TWO_PI, 2),
                exact=lambda x: torch.sin(100 * _x(x)) * torch.sin(100 * _y(x)),
                name="p2-sinsin",
            ),
            hm=_hm(400, 20, 1_000_000),
        ),
        Case(
            "p2-sinadd",
            lambda: poisson(
                _box(0.0, TWO_PI, 2),
                exact=lambda x: (
                    torch.sin(6 * _x(x)) * torch.cos(20 * _x(x))
                    + torch.sin(6 * _y(x)) * torch.cos(20 * _y(x))
                ),
                name="p2-sinadd",
            ),
            hm=_hm(200, 20, 1_000_000),
        ),
        Case(
            "ac2-mix",
            lambda: allen_cahn(
                _box(0.0, 1.0, 2), exact=lambda x: _ac2(_x(x)) * _ac2(_y(x)), name="ac2-mix"
            ),
            hm=_hm(400, 30, 3_000_000),
        ),
        Case(
            "adv",
            lambda: advection(
                200.0,
                BoxDomain((0.0, 0.0), (1.0, 1.0), ("x", "t")),
                exact=lambda x: torch.sin(_x(x) - 200 * _y(x)),
                name="adv",
            ),
            hm=_hm(200, 40, 1_000_000, lam=500.0),
        ),
        Case(
            "gn-ell",
            _gn_ell,
            method="gn",
            gn=dict(kernel=SE1d(0.2), n_interior=30, nugget=1e-13, max_iter=4),
            description="900 interior + 124 boundary nodes, Gaussian sigma 0.2 (Chen et al.)",
        ),
        Case(
            "gn-burg",
            _gn_burg,
            method="gn",
            # the reference kernel is exp(-(dx/0.05)^2 - (dt/0.3)^2): SE length-scales sigma / sqrt(2)
            gn=dict(
                kernel=ProductKernel([SE1d(0.05 / math.sqrt(2)), SE1d(0.3 / math.sqrt(2))]),
                n_interior=32,
                nugget=1e-5,
                max_iter=12,
            ),
        ),
    ]
}


def get_case(name: str) -> Case:
    """The case called ``name``; unknown names list the choices."""
    if name not in CASES:
        close = difflib.get_close_matches(name, list(CASES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown GP case {name!r}{hint}; choose one of {', '.join(CASES)}")
    return CASES[name]
