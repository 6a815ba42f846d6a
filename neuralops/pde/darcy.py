r"""Steady Darcy flow :math:`-\nabla\cdot(a\nabla u) = f` on [0, 1]^2, ``u = 0`` on the boundary.

Discretisation: a vertex grid of ``sx x sy`` nodes (boundary included, ``h = 1/(s - 1)``), the
coefficient ``a`` given at the nodes, and the 5-point finite-volume stencil with harmonic face
averages :math:`a_{i+1/2,j} = 2 a_{i,j} a_{i+1,j} / (a_{i,j} + a_{i+1,j})`:

.. math::

    \frac{a_{i-1/2,j}(u_{ij} - u_{i-1,j}) - a_{i+1/2,j}(u_{i+1,j} - u_{ij})}{h_x^2}
    + \frac{a_{i,j-1/2}(u_{ij} - u_{i,j-1}) - a_{i,j+1/2}(u_{i,j+1} - u_{ij})}{h_y^2} = f_{ij}.

The unknowns are the ``(sx - 2) * (sy - 2)`` interior nodes in C order over ``(x, y)``; the matrix
is symmetric positive definite (weakly diagonally dominant, irreducible, strictly dominant next
to the boundary), so CG applies. Second order in the max norm for smooth ``a``
(:meth:`DarcyFamily.manufactured`); piecewise-constant ``a`` lowers the order.

The default coefficient is FNO's (arXiv 2010.08895): ``a = 12`` where a Neumann GRF with
``alpha = 2, tau = 3`` is >= 0, else ``3``; ``f = 1``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from neuralops.data.errors import RecipeError
from neuralops.data.schema import FieldSpec
from neuralops.pde.base import AbstractPDEFamily, GridConfig, LinearProblem
from neuralops.pde.grf import (
    GRF,
    Chebyshev,
    Choice,
    LogUniform,
    Multiscale,
    Sampler,
    Uniform,
    sampler_from_table,
)
from neuralops.pde.recipe import check_keys

__all__ = ["DarcyFamily", "darcy_operator", "SORT_MODES"]

log = logging.getLogger(__name__)

#: low-frequency DCT modes per axis used as sort features (SKR sorts systems by them)
SORT_MODES = 8


def darcy_operator(a: np.ndarray, spacing: tuple[float, float] | None = None) -> sp.csr_matrix:
    r"""Interior FV matrix of :math:`-\nabla\cdot(a\nabla\cdot)` with zero Dirichlet data.

    Args:
        a: ``(sx, sy)`` coefficient at every node (boundary included), > 0.
        spacing: ``(hx, hy)``; default ``(1/(sx - 1), 1/(sy - 1))`` (the unit square).

    Returns:
        ``((sx-2)(sy-2), (sx-2)(sy-2))`` symmetric positive definite CSR matrix, sorted indices;
        row ``i * (sy - 2) + j`` belongs to node ``(i + 1, j + 1)``.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 3:
        raise ValueError(f"a must be a 2-D nodal array with >= 3 points per axis, got {a.shape}")
    if not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise ValueError(f"a must be finite and > 0 everywhere, got min {np.nanmin(a):.3g}")
    sx, sy = a.shape
    hx, hy = spacing if spacing is not None else (1.0 / (sx - 1), 1.0 / (sy - 1))
    ax = 2.0 * a[:-1, :] * a[1:, :] / (a[:-1, :] + a[1:, :]) / hx**2  # (sx-1, sy) x-faces
    ay = 2.0 * a[:, :-1] * a[:, 1:] / (a[:, :-1] + a[:, 1:]) / hy**2  # (sx, sy-1) y-faces
    nx, ny = sx - 2, sy - 2
    idx = np.arange(nx * ny).reshape(nx, ny)
    diag = ax[:-1, 1:-1] + ax[1:, 1:-1] + ay[1:-1, :-1] + ay[1:-1, 1:]
    vx = -ax[1:-1, 1:-1].ravel()  # between (i, j) and (i + 1, j), both interior
    vy = -ay[1:-1, 1:-1].ravel()  # between (i, j) and (i, j + 1)
    rx, cx = idx[:-1, :].ravel(), idx[1:, :].ravel()
    ry, cy = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    rows = np.concatenate([idx.ravel(), rx, cx, ry, cy])
    cols = np.concatenate([idx.ravel(), cx, rx, cy, ry])
    vals = np.concatenate([diag.ravel(), vx, vx, vy, vy])
    A = sp.coo_matrix((vals, (rows, cols)), shape=(nx * ny, nx * ny)).tocsr()
    A.sort_indices()
    return A


def _positive(sampler: Sampler) -> bool | None:
    """Whether every draw is > 0 (None: unknown sampler type, checked per sample)."""
    if isinstance(sampler, GRF):
        return sampler.transform.positive
    if isinstance(sampler, Uniform):
        return sampler.low > 0
    if isinstance(sampler, LogUniform):
        return True
    if isinstance(sampler, Choice):
        return min(sampler.values) > 0
    if isinstance(sampler, Chebyshev):
        return False
    if isinstance(sampler, Multiscale):
        return True
    return None


@dataclass(frozen=True)
class DarcyFamily(AbstractPDEFamily):
    """Darcy flow with a random coefficient; recipe id ``"darcy"``.

    Args:
        grid: ``size = (sx, sy)`` nodes on [0, 1]^2 (>= 3 each), ``store_stride`` dividing
            ``s - 1`` so stored points are nodes.
        coefficient: sampler of ``a``: a field sampler (GRF with ``exp`` or positive
            ``threshold`` transform) or a positive scalar sampler (constant ``a``).
        forcing: the constant right-hand side ``f``.

    Fields (per sample, at ``grid.stored_size``, boundary included): ``a`` (input) and ``u``
    (target, zero on the boundary), both ``(sx', sy')`` with dims ``(sample, x, y)``.
    """

    name: ClassVar[str] = "darcy"
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {
            "a": MappingProxyType(
                {
                    "sampler": "grf",
                    "alpha": 2.0,
                    "tau": 3.0,
                    "boundary": "neumann",
                    "transform": {"threshold": [12.0, 3.0]},
                }
            ),
        }
    )
    #: options of the ``[pde]`` table and their defaults
    options: ClassVar[Mapping[str, Any]] = MappingProxyType({"forcing": 1.0})

    grid: GridConfig
    coefficient: Sampler
    forcing: float = 1.0

    def __post_init__(self) -> None:
        size, stride = tuple(self.grid.size), self.grid.store_stride
        if len(size) != 2:
            raise RecipeError(
                f"'dataset.grid.size' must have 2 entries for darcy (a 2-D "
                f"problem), got {list(size)}"
            )
        if any(not isinstance(s, int) or s < 3 for s in size):
            raise RecipeError(
                f"'dataset.grid.size' must be integers >= 3 (boundary nodes "
                f"included), got {list(size)}"
            )
        if not isinstance(stride, int) or stride < 1:
            raise RecipeError(
                f"'dataset.grid.store_stride' must be an integer >= 1, got {stride!r}"
            )
        for s in size:
            if (s - 1) % stride:
                valid = [k for k in range(1, s) if math.gcd(*(t - 1 for t in size)) % k == 0]
                raise RecipeError(
                    f"'dataset.grid.store_stride' = {stride} must divide size - 1 = {s - 1} so "
                    f"stored points are nodes (valid strides for {list(size)}: {valid}; sizes "
                    f"2^k + 1 such as 65, 129, 513 allow every power of 2)"
                )
        if not (isinstance(self.forcing, int | float) and math.isfinite(self.forcing)):
            raise RecipeError(f"'pde.forcing' must be a finite number, got {self.forcing!r}")
        if _positive(self.coefficient) is False:
            raise RecipeError(
                f"'params.a' must give a positive coefficient, but {self.coefficient!r} can be "
                f"<= 0: use transform = 'exp' or {{threshold = [a_pos, a_neg]}} with positive "
                f"values for a GRF, or a positive scalar sampler"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> DarcyFamily:
        """Build from the recipe's grid, ``[params.a]`` and ``[pde]`` tables (all optional)."""
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        table = params.get("a", cls.param_tables["a"])
        coefficient = sampler_from_table(
            table, 2, where="params.a", defaults={"boundary": "neumann"}
        )
        forcing = options.get("forcing", cls.options["forcing"])
        if isinstance(forcing, bool) or not isinstance(forcing, int | float):
            raise RecipeError(f"'pde.forcing' must be a number, got {forcing!r}")
        family = cls(grid, coefficient, float(forcing))
        log.debug("built %r", family)
        return family

    # ------------------------------------------------------------------ schema
    @property
    def spatial_dims(self) -> list[str]:
        return ["x", "y"]

    def field_specs(self) -> list[FieldSpec]:
        shape = tuple(self.grid.stored_size)
        dims = ("sample", "x", "y")
        return [
            FieldSpec(
                "a",
                "input",
                shape,
                dims,
                units="1",
                description="diffusion coefficient a(x, y) at the grid nodes",
            ),
            FieldSpec(
                "u",
                "target",
                shape,
                dims,
                units="1",
                description=f"solution of -div(a grad u) = {self.forcing:g}, u = 0 on the boundary",
            ),
        ]

    def coords(self) -> dict[str, np.ndarray]:
        sx, sy = self.grid.stored_size
        return {"x": np.linspace(0.0, 1.0, sx), "y": np.linspace(0.0, 1.0, sy)}

    # ------------------------------------------------------------------ per sample
    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``{"a": (sx, sy) float64}`` drawn from the coefficient sampler."""
        size = tuple(self.grid.size)
        if self.coefficient.is_field:
            a = self.coefficient.sample(rng, size)
        else:
            a = np.full(size, float(self.coefficient.sample(rng, ())))
        if not np.all(np.isfinite(a)) or not np.all(a > 0):
            raise ValueError(
                f"sampled coefficient is not finite and positive "
                f"(min {np.nanmin(a):.3g}); check [params.a]"
            )
        return {"a": a}

    def assemble(self, params: Mapping[str, np.ndarray]) -> LinearProblem:
        """``A`` from :func:`darcy_operator`, ``b = forcing`` at the interior nodes."""
        A = darcy_operator(params["a"])
        b = np.full(A.shape[0], float(self.forcing))
        return LinearProblem(A, b, {"spd": True, "symmetric": True})

    def fields_from_solution(
        self, params: Mapping[str, np.ndarray], x: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
        """Embed the interior solution ``x`` in the full grid (zero boundary), then stride."""
        a = np.asarray(params["a"])
        sx, sy = a.shape
        x = np.asarray(x)
        if x.size != (sx - 2) * (sy - 2):
            raise ValueError(
                f"x has {x.size} entries, expected (sx-2)(sy-2) = "
                f"{(sx - 2) * (sy - 2)} for a {sx}x{sy} grid"
            )
        u = np.zeros((sx, sy))
        u[1:-1, 1:-1] = x.reshape(sx - 2, sy - 2)
        st = self.grid.store_stride
        fields = {
            name: np.ascontiguousarray(v[::st, ::st], dtype=np.float32)
            for name, v in (("a", a), ("u", u))
        }
        return fields, {}

    def sort_features(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """The ``SORT_MODES x SORT_MODES`` lowest DCT-II modes of ``a``, flattened, divided by
        ``sqrt(sx * sy)`` (approximately resolution independent): shape ``(64,)``."""
        a = np.asarray(params["a"], dtype=np.float64)
        c = sfft.dctn(a, type=2, norm="ortho")[:SORT_MODES, :SORT_MODES]
        return (c / math.sqrt(a.size)).ravel()

    # ------------------------------------------------------------------ verification
    @classmethod
    def manufactured(cls, n: int) -> float:
        r"""Max-norm nodal error for a manufactured solution on an ``(n+1) x (n+1)`` grid.

        ``a = 1 + x y^2 + sin(2 pi x) sin(pi y) / 4`` and
        ``u = e^x sin(pi x) * e^{-y} sin(pi y)``; ``f = -a_x u_x - a_y u_y - a (u_xx + u_yy)``
        is evaluated analytically at the nodes. The error is ``O(h^2)``.
        """
        if not isinstance(n, int) or n < 2:
            raise ValueError(f"n must be an integer >= 2, got {n!r}")
        x, y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1), indexing="ij")
        pi = np.pi
        sx, cx, sy, cy = np.sin(pi * x), np.cos(pi * x), np.sin(pi * y), np.cos(pi * y)
        a = 1 + x * y**2 + 0.25 * np.sin(2 * pi * x) * sy
        a_x = y**2 + 0.5 * pi * np.cos(2 * pi * x) * sy
        a_y = 2 * x * y + 0.25 * pi * np.sin(2 * pi * x) * cy
        X, X1, X2 = (np.exp(x) * v for v in (sx, sx + pi * cx, (1 - pi**2) * sx + 2 * pi * cx))
        Y, Y1, Y2 = (np.exp(-y) * v for v in (sy, pi * cy - sy, (1 - pi**2) * sy - 2 * pi * cy))
        u = X * Y
        f = -(a_x * X1 * Y + a_y * X * Y1) - a * (X2 * Y + X * Y2)
        A = darcy_operator(a)
        u_h = spla.spsolve(A.tocsc(), f[1:-1, 1:-1].ravel())
        return float(np.max(np.abs(u_h - u[1:-1, 1:-1].ravel())))
