r"""Poisson with solid obstacles, 2-D and 3-D: :math:`-\nabla\cdot(\kappa\nabla u) = f`.

The pressure-Poisson systems of fluid simulation and SKR's Poisson family (arXiv 2401.09516):
``u = g`` on the boundary of the unit square/cube, ``u = 0`` in random solid obstacles (axis-aligned
boxes and disks/balls). Vertex-centred grid of ``s`` nodes per axis (boundary included), the
5-point (2-D) / 7-point (3-D) finite-volume stencil with harmonic face averages of ``kappa``;
solid and boundary nodes are removed from the unknowns and enter the right-hand side, so the matrix
is symmetric positive definite (CG applies). Second order for smooth data
(:func:`manufactured_error`). Recipe id ``"poisson"``.

Parameters: ``[params.f]`` (default: a GRF; SKR uses Chebyshev series), ``[params.kappa]``
(default: constant 1; a log-normal GRF with ``transform = "exp"``), ``[params.g]`` (a scalar sampler
of the Chebyshev coefficients of the boundary data, degree ``pde.g_degree``, per face), and
``[pde]`` ``obstacles`` (count range), ``obstacle_size`` (radius/half-width range), ``shapes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp

from neuralops.data.errors import RecipeError
from neuralops.data.schema import FieldSpec
from neuralops.pde.base import AbstractPDEFamily, GridConfig, LinearProblem
from neuralops.pde.grf import Choice, Sampler, Uniform, sampler_from_table
from neuralops.pde.recipe import check_keys

__all__ = ["PoissonFamily", "poisson_system", "random_obstacles", "manufactured_error"]

SHAPES = ("box", "ball")


def poisson_system(
    kappa: np.ndarray, solid: np.ndarray, f: np.ndarray, dirichlet: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``(A, b, unknown)`` for ``-div(kappa grad u) = f`` on a vertex grid of the unit box.

    ``kappa``, ``f``, ``dirichlet`` are nodal arrays of one shape ``(s_1, ..., s_d)``; ``solid`` is a
    boolean mask of obstacle nodes. Unknowns are the interior non-solid nodes (``unknown``, a boolean
    mask; C order); every other node is a Dirichlet node with value ``dirichlet``. ``A`` is SPD.
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    shape = kappa.shape
    if not np.all(np.isfinite(kappa)) or not np.all(kappa > 0):
        raise ValueError("kappa must be finite and > 0 everywhere")
    d = kappa.ndim
    h = [1.0 / (n - 1) for n in shape]
    unknown = ~np.asarray(solid, dtype=bool)
    for ax in range(d):
        edge = [slice(None)] * d
        edge[ax] = 0
        unknown[tuple(edge)] = False
        edge[ax] = -1
        unknown[tuple(edge)] = False
    index = np.full(shape, -1, dtype=np.int64)
    n = int(unknown.sum())
    index[unknown] = np.arange(n)
    diag = np.zeros(n)
    b = np.asarray(f, dtype=np.float64)[unknown].copy()
    g = np.asarray(dirichlet, dtype=np.float64)
    rows, cols, vals = [], [], []
    for ax in range(d):
        lo = [slice(None)] * d
        hi = [slice(None)] * d
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        k1, k2 = kappa[lo], kappa[hi]
        face = 2.0 * k1 * k2 / (k1 + k2) / h[ax] ** 2  # between node p (lo) and p + e_ax (hi)
        for a, c in ((lo, hi), (hi, lo)):  # the equation of node a, neighbour c
            ua, uc = unknown[a], unknown[c]
            ia, ic = index[a], index[c]
            np.add.at(diag, ia[ua], face[ua])
            both = ua & uc
            rows.append(ia[both])
            cols.append(ic[both])
            vals.append(-face[both])
            bnd = ua & ~uc  # neighbour is a Dirichlet node: move to the right-hand side
            np.add.at(b, ia[bnd], face[bnd] * g[c][bnd])
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(diag)
    A = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).tocsr()
    A.sort_indices()
    return A, b, unknown


def random_obstacles(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    count: tuple[int, int],
    size: tuple[float, float],
    shapes: tuple[str, ...],
) -> np.ndarray:
    """A boolean solid mask: ``count`` (uniform integer in the range) boxes/balls with centres in
    [0.2, 0.8]^d and half-widths/radii uniform in ``size``."""
    axes = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    solid = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        kind = shapes[int(rng.integers(len(shapes)))]
        c = rng.uniform(0.2, 0.8, size=len(shape))
        r = rng.uniform(*size)
        if kind == "box":
            half = r * rng.uniform(0.5, 1.0, size=len(shape))
            inside = np.all([np.abs(x - ci) <= hi for x, ci, hi in zip(axes, c, half)], axis=0)
        else:
            inside = sum((x - ci) ** 2 for x, ci in zip(axes, c)) <= r**2
        solid |= inside
    return solid


def _chebyshev_face(coeffs: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sum of ``coeffs[k] T_k(2 t - 1)`` (1-D face) or the tensor product series (2-D face)."""
    return np.polynomial.chebyshev.chebval(2 * t - 1, coeffs)


@dataclass(frozen=True)
class PoissonFamily(AbstractPDEFamily):
    """Recipe id ``"poisson"`` (2-D or 3-D from ``grid.size``).

    Fields: ``f`` and ``kappa`` (input), ``mask`` (input: 1 fluid, 0 solid), ``bc`` (input: the
    Dirichlet data on the outer boundary, 0 elsewhere), ``u`` (target; ``g`` on the boundary, 0 in
    obstacles).
    """

    name: ClassVar[str] = "poisson"
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {
            "f": MappingProxyType(
                {"sampler": "grf", "alpha": 2.0, "tau": 3.0, "boundary": "neumann"}
            ),
            "kappa": MappingProxyType({"sampler": "choice", "values": [1.0]}),
            "g": MappingProxyType({"sampler": "uniform", "low": -1.0, "high": 1.0}),
        }
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "obstacles": [1, 3],
            "obstacle_size": [0.05, 0.15],
            "shapes": ["box", "ball"],
            "g_degree": 5,
        }
    )

    grid: GridConfig
    f: Sampler
    kappa: Sampler
    g: Sampler
    obstacles: tuple[int, int]
    obstacle_size: tuple[float, float]
    shapes: tuple[str, ...]
    g_degree: int

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> PoissonFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        size = tuple(grid.size)
        if len(size) not in (2, 3) or any(not isinstance(s, int) or s < 5 for s in size):
            raise RecipeError(
                f"'dataset.grid.size' must be 2 or 3 integers >= 5 (nodes per axis, boundary "
                f"included), got {list(size)}"
            )
        for s in size:
            if (s - 1) % grid.store_stride:
                raise RecipeError(
                    f"'dataset.grid.store_stride' = {grid.store_stride} must divide size - 1 = {s - 1}"
                )
        d = len(size)
        samplers = {
            k: sampler_from_table(params.get(k, cls.param_tables[k]), d, where=f"params.{k}")
            for k in cls.param_tables
        }
        if samplers["g"].is_field:
            raise RecipeError("'params.g' samples Chebyshev coefficients: use a scalar sampler")
        kap = samplers["kappa"]
        positive = {Uniform: lambda k: k.low > 0, Choice: lambda k: min(k.values) > 0}
        if type(kap) in positive and not positive[type(kap)](kap):
            raise RecipeError("'params.kappa' must be positive (low > 0, or a GRF with exp)")
        count = options.get("obstacles", cls.options["obstacles"])
        osize = options.get("obstacle_size", cls.options["obstacle_size"])
        shapes = options.get("shapes", cls.options["shapes"])
        degree = options.get("g_degree", cls.options["g_degree"])
        if not (isinstance(count, list) and len(count) == 2 and 0 <= count[0] <= count[1] <= 20):
            raise RecipeError(f"'pde.obstacles' must be [min, max] counts in 0..20, got {count!r}")
        if not (isinstance(osize, list) and len(osize) == 2 and 0 < osize[0] <= osize[1] <= 0.3):
            raise RecipeError(
                f"'pde.obstacle_size' must be [min, max] radii in (0, 0.3], got {osize!r}"
            )
        if not shapes or any(sh not in SHAPES for sh in shapes):
            raise RecipeError(f"'pde.shapes' must be a non-empty list of {SHAPES}, got {shapes!r}")
        if not isinstance(degree, int) or not 0 <= degree <= 10:
            raise RecipeError(f"'pde.g_degree' must be an integer in 0..10, got {degree!r}")
        return cls(
            grid,
            samplers["f"],
            samplers["kappa"],
            samplers["g"],
            (int(count[0]), int(count[1])),
            (float(osize[0]), float(osize[1])),
            tuple(shapes),
            degree,
        )

    @property
    def spatial_dims(self) -> list[str]:
        return ["x", "y", "z"][: len(self.grid.size)]

    def field_specs(self) -> list[FieldSpec]:
        shape = tuple(self.grid.stored_size)
        dims = ("sample", *self.spatial_dims)
        return [
            FieldSpec("f", "input", shape, dims, description="source term"),
            FieldSpec("kappa", "input", shape, dims, description="conductivity"),
            FieldSpec("mask", "input", shape, dims, description="1 in the fluid, 0 in obstacles"),
            FieldSpec("bc", "input", shape, dims, description="Dirichlet data g on the boundary"),
            FieldSpec("u", "target", shape, dims, description="solution (0 in obstacles)"),
        ]

    def coords(self) -> dict[str, np.ndarray]:
        return {n: np.linspace(0, 1, s) for n, s in zip(self.spatial_dims, self.grid.stored_size)}

    def _field(self, sampler: Sampler, rng: np.random.Generator) -> np.ndarray:
        shape = tuple(self.grid.size)
        if sampler.is_field:
            return np.asarray(sampler.sample(rng, shape), dtype=np.float64)
        return np.full(shape, float(sampler.sample(rng, ())))

    def _boundary(self, rng: np.random.Generator) -> np.ndarray:
        """Dirichlet data: on each face a Chebyshev series (tensor product on 3-D faces)."""
        shape = tuple(self.grid.size)
        d = len(shape)
        g = np.zeros(shape)
        axes = [np.linspace(0, 1, n) for n in shape]
        for ax in range(d):
            for side in (0, -1):
                others = [a for a in range(d) if a != ax]
                vals = np.ones([shape[a] for a in others])
                for j, a in enumerate(others):
                    c = np.array([self.g.sample(rng, ()) for _ in range(self.g_degree + 1)])
                    line = _chebyshev_face(c, axes[a])
                    vals = vals * line.reshape([-1 if k == j else 1 for k in range(d - 1)])
                idx = [slice(None)] * d
                idx[ax] = side
                g[tuple(idx)] = vals
        return g

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shape = tuple(self.grid.size)
        solid = random_obstacles(rng, shape, self.obstacles, self.obstacle_size, self.shapes)
        kappa = self._field(self.kappa, rng)
        if not np.all(kappa > 0):
            raise ValueError("sampled kappa is not positive; check [params.kappa]")
        g = self._boundary(rng)
        return {"f": self._field(self.f, rng), "kappa": kappa, "solid": solid, "g": g}

    def _dirichlet(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        g = np.array(params["g"], dtype=np.float64)
        g[np.asarray(params["solid"], dtype=bool)] = 0.0
        return g

    def assemble(self, params: Mapping[str, np.ndarray]) -> LinearProblem:
        A, b, _ = poisson_system(
            params["kappa"], params["solid"], params["f"], self._dirichlet(params)
        )
        return LinearProblem(A, b, {"spd": True, "symmetric": True})

    def fields_from_solution(
        self, params: Mapping[str, np.ndarray], x: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
        solid = np.asarray(params["solid"], dtype=bool)
        shape = solid.shape
        unknown = ~solid
        for ax in range(len(shape)):
            idx = [slice(None)] * len(shape)
            for side in (0, -1):
                idx[ax] = side
                unknown[tuple(idx)] = False
        u = self._dirichlet(params)
        u[unknown] = np.asarray(x)
        bc = np.zeros(shape)
        edge = ~unknown & ~solid
        bc[edge] = np.asarray(params["g"])[edge]
        st = (slice(None, None, self.grid.store_stride),) * len(shape)
        arrays = {
            "f": params["f"],
            "kappa": params["kappa"],
            "mask": (~solid).astype(np.float64),
            "bc": bc,
            "u": u,
        }
        return {
            k: np.ascontiguousarray(np.asarray(v)[st], np.float32) for k, v in arrays.items()
        }, {}

    def sort_features(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Low DCT modes of ``f`` and ``kappa`` plus the fluid fraction (SKR sorting)."""
        out = []
        for key in ("f", "kappa"):
            a = np.asarray(params[key], dtype=np.float64)
            c = sfft.dctn(a, type=2, norm="ortho")[(slice(0, 4),) * a.ndim]
            out.append((c / math.sqrt(a.size)).ravel())
        out.append(np.array([1.0 - np.asarray(params["solid"]).mean()]))
        return np.concatenate(out)


def manufactured_error(n: int, d: int = 2, obstacle: bool = True) -> float:
    """Max nodal error on ``(n+1)^d`` nodes for ``u = prod sin(pi x_i + 0.3 i) e^{x_1}``, smooth
    ``kappa = 1 + 0.5 sin(2 pi x_1) x_2^2``, with a ball obstacle of radius 0.2 at the centre whose
    nodes carry the exact values (Dirichlet, like the outer boundary). Second order."""
    import scipy.sparse.linalg as spla
    import sympy

    xs = sympy.symbols(f"x0:{d}")
    u = sympy.exp(xs[0]) * sympy.prod([sympy.sin(sympy.pi * x + 0.3 * i) for i, x in enumerate(xs)])
    kappa = 1 + sympy.Rational(1, 2) * sympy.sin(2 * sympy.pi * xs[0]) * xs[1] ** 2
    f = -sum(sympy.diff(kappa * sympy.diff(u, x), x) for x in xs)
    fu, fk, ff = (sympy.lambdify(xs, e, "numpy") for e in (u, kappa, f))
    grids = np.meshgrid(*[np.linspace(0, 1, n + 1)] * d, indexing="ij")
    U, K, F = (np.broadcast_to(fn(*grids), grids[0].shape).astype(float) for fn in (fu, fk, ff))
    solid = np.zeros(U.shape, dtype=bool)
    if obstacle:
        solid = sum((g - 0.5) ** 2 for g in grids) <= 0.2**2
    A, b, unknown = poisson_system(K, solid, F, U)
    x = spla.spsolve(A.tocsc(), b)
    return float(np.max(np.abs(x - U[unknown])))
