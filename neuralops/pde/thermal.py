r"""Steady heat conduction on an irregular domain (P1 FEM, ragged samples): SKR's thermal problem.

:math:`-\nabla\cdot(\kappa\nabla T) = q` on the unit square minus a slot (a different slot and a
freshly jittered Delaunay mesh per sample, so node counts vary), ``T = T_D`` on the left edge
(Dirichlet), a heat flux ``-kappa dT/dn = g`` on the bottom edge, insulated elsewhere (slot walls
included). Parameters as SKR (arXiv 2401.09516): ``T_D ~ U(0, 100)``, ``g ~ U(-100, 0)``; ``kappa``
a log-normal GRF interpolated to the nodes. Linear finite elements (:mod:`neuralops.pde.fem`): the
reduced stiffness matrix is SPD, so CG and the recycled solvers apply. Second order in L2 and first
in the H1 seminorm (:func:`manufactured_errors`). Recipe id ``"thermal"``.

Samples are stored in the ragged (mesh) schema: node positions in ``/mesh/pos`` and per-node fields
``kappa``, ``dirichlet`` (``T_D`` on Dirichlet nodes, 0 elsewhere), ``flux`` (``g`` on flux nodes, 0
elsewhere) as inputs and ``T`` as target; ``PDEDataset(..., view="graph")`` serves them as PyG graphs.
Triangles are not stored (the schema has no connectivity); the graph view builds neighbourhoods from
the positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from neuralops.data.errors import RecipeError
from neuralops.data.schema import FieldSpec, ParamSpec
from neuralops.pde import fem
from neuralops.pde.base import AbstractPDEFamily, GridConfig, LinearProblem
from neuralops.pde.grf import Sampler, sampler_from_table
from neuralops.pde.recipe import check_keys

__all__ = ["ThermalFamily", "manufactured_errors"]


def _interp(field: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a nodal field on the regular grid of [0, 1]^2 at ``pts``."""
    from scipy.interpolate import RegularGridInterpolator

    g = [np.linspace(0, 1, n) for n in field.shape]
    return RegularGridInterpolator(g, field)(np.clip(pts, 0, 1))


@dataclass(frozen=True)
class ThermalFamily(AbstractPDEFamily):
    """Recipe id ``"thermal"``. ``grid.size = [n + 1, n + 1]`` sets ``n`` mesh cells a side (and
    the GRF grid of ``kappa``); ``store_stride`` must be 1. ``[pde]``: ``source``, ``jitter``,
    ``slot_width``, ``slot_depth`` (a range: the slot runs from ``y = 1 - depth`` to the top)."""

    name: ClassVar[str] = "thermal"
    ragged: ClassVar[bool] = True
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {
            "kappa": MappingProxyType(
                {
                    "sampler": "grf",
                    "alpha": 2.0,
                    "tau": 4.0,
                    "boundary": "neumann",
                    "transform": "exp",
                }
            ),
            "T_D": MappingProxyType({"sampler": "uniform", "low": 0.0, "high": 100.0}),
            "g": MappingProxyType({"sampler": "uniform", "low": -100.0, "high": 0.0}),
        }
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"source": 0.0, "jitter": 0.25, "slot_width": 0.2, "slot_depth": [0.4, 0.7]}
    )

    grid: GridConfig
    kappa: Sampler
    t_d: Sampler
    g: Sampler
    source: float
    jitter: float
    slot_width: float
    slot_depth: tuple[float, float]

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> ThermalFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        size = tuple(grid.size)
        if len(size) != 2 or size[0] != size[1] or size[0] < 9:
            raise RecipeError(
                f"'dataset.grid.size' must be [n + 1, n + 1] with n >= 8 mesh cells a side, "
                f"got {list(size)}"
            )
        if grid.store_stride != 1:
            raise RecipeError("'dataset.grid.store_stride' must be 1 for mesh data (thermal)")
        s = {
            k: sampler_from_table(params.get(k, v), 2, where=f"params.{k}")
            for k, v in cls.param_tables.items()
        }
        for k in ("T_D", "g"):
            if s[k].is_field:
                raise RecipeError(f"'params.{k}' is a scalar: use a scalar sampler (e.g. uniform)")
        o = {**cls.options, **options}
        for k in ("source", "jitter", "slot_width"):
            if (
                isinstance(o[k], bool)
                or not isinstance(o[k], int | float)
                or not math.isfinite(o[k])
            ):
                raise RecipeError(f"'pde.{k}' must be a number, got {o[k]!r}")
        if not 0 <= o["jitter"] < 0.5:
            raise RecipeError(f"'pde.jitter' must be in [0, 0.5) cell widths, got {o['jitter']}")
        if not 0 < o["slot_width"] < 0.5:
            raise RecipeError(f"'pde.slot_width' must be in (0, 0.5), got {o['slot_width']}")
        depth = o["slot_depth"]
        if not (isinstance(depth, list) and len(depth) == 2 and 0 < depth[0] <= depth[1] < 0.9):
            raise RecipeError(f"'pde.slot_depth' must be [min, max] in (0, 0.9), got {depth!r}")
        return cls(
            grid,
            s["kappa"],
            s["T_D"],
            s["g"],
            float(o["source"]),
            float(o["jitter"]),
            float(o["slot_width"]),
            (float(depth[0]), float(depth[1])),
        )

    @property
    def spatial_dims(self) -> list[str]:
        return ["x", "y"]

    def field_specs(self) -> list[FieldSpec]:
        dims = ("node", "component")
        return [
            FieldSpec("kappa", "input", (1,), dims, description="conductivity at the nodes"),
            FieldSpec(
                "dirichlet", "input", (1,), dims, units="K", description="T_D on the left edge"
            ),
            FieldSpec(
                "flux", "input", (1,), dims, units="W/m^2", description="g on the bottom edge"
            ),
            FieldSpec("T", "target", (1,), dims, units="K", description="temperature"),
        ]

    def param_specs(self) -> list[ParamSpec]:
        return [ParamSpec("T_D", (), "K"), ParamSpec("g", (), "W/m^2")]

    def coords(self) -> dict[str, np.ndarray]:
        return {}

    @property
    def cells(self) -> int:
        return self.grid.size[0] - 1

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = self.cells
        width = max(1, round(self.slot_width * n))
        x0 = int(rng.integers(1, n - width))  # in cells, away from the side walls
        depth = max(1, round(rng.uniform(*self.slot_depth) * n))
        slot = (x0 / n, (x0 + width) / n, 1.0 - depth / n, 1.0 + 1.0 / n)
        nodes, tris = fem.slotted_mesh(n, slot, self.jitter, rng)
        kappa_grid = np.asarray(self.kappa.sample(rng, tuple(self.grid.size)), dtype=np.float64)
        kappa = _interp(kappa_grid, nodes)
        if not np.all(kappa > 0):
            raise ValueError('sampled kappa is not positive: use transform = "exp"')
        return {
            "nodes": nodes,
            "tris": tris,
            "kappa": kappa,
            "T_D": np.asarray(float(self.t_d.sample(rng, ()))),
            "g": np.asarray(float(self.g.sample(rng, ()))),
        }

    def _parts(self, params: Mapping[str, np.ndarray]):
        nodes, tris = np.asarray(params["nodes"]), np.asarray(params["tris"])
        kappa = np.asarray(params["kappa"])
        K = fem.stiffness(nodes, tris, kappa[tris].mean(axis=1))
        b = fem.load(nodes, tris, np.full(len(nodes), self.source))
        edges = fem.boundary_edges(tris)
        on = lambda v: np.abs(v) < 1e-12  # noqa: E731
        left = on(nodes[:, 0])
        bottom = on(nodes[edges, 1]).all(axis=1)
        g = float(params["g"])
        b += fem.edge_load(nodes, edges[bottom], lambda x, y, nx, ny: -g * np.ones_like(x))
        return nodes, K, b, left, edges[bottom]

    def assemble(self, params: Mapping[str, np.ndarray]) -> LinearProblem:
        _, K, b, left, _ = self._parts(params)
        free = ~left
        Kf = K[free][:, free].tocsr()
        rhs = b[free] - K[free][:, left] @ np.full(int(left.sum()), float(params["T_D"]))
        return LinearProblem(Kf, rhs, {"spd": True, "symmetric": True})

    def fields_from_solution(
        self, params: Mapping[str, np.ndarray], x: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
        nodes, _, _, left, flux_edges = self._parts(params)
        T = np.full(len(nodes), float(params["T_D"]))
        T[~left] = np.asarray(x)
        dirichlet = np.where(left, float(params["T_D"]), 0.0)
        flux = np.zeros(len(nodes))
        flux[np.unique(flux_edges)] = float(params["g"])
        col = lambda v: np.ascontiguousarray(np.asarray(v, np.float32).reshape(-1, 1))  # noqa: E731
        fields = {
            "kappa": col(params["kappa"]),
            "dirichlet": col(dirichlet),
            "flux": col(flux),
            "T": col(T),
            "pos": np.ascontiguousarray(nodes, np.float32),
        }
        return fields, {"T_D": float(params["T_D"]), "g": float(params["g"])}

    def sort_features(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        k = np.asarray(params["kappa"])
        return np.array([float(params["T_D"]) / 100, float(params["g"]) / 100, k.mean(), k.std()])


def manufactured_errors(n: int, jitter: float = 0.2, seed: int = 0) -> tuple[float, float]:
    """``(L2, H1-seminorm)`` errors of P1 FEM on the slotted domain for ``u = sin(pi x) cos(pi y) +
    x^2``, ``kappa = 1 + x y``: Dirichlet data on the left edge, the exact flux on every other
    boundary edge (slot walls included)."""
    import scipy.sparse.linalg as spla

    pi = np.pi

    def u(x, y):
        return np.sin(pi * x) * np.cos(pi * y) + x**2

    def grad(x, y):
        return pi * np.cos(pi * x) * np.cos(pi * y) + 2 * x, -pi * np.sin(pi * x) * np.sin(pi * y)

    def kap(x, y):
        return 1 + x * y

    def q(x, y):
        ux, uy = grad(x, y)
        lap = -2 * pi**2 * np.sin(pi * x) * np.cos(pi * y) + 2
        return -(y * ux + x * uy + kap(x, y) * lap)

    nodes, tris = fem.slotted_mesh(n, (0.4, 0.6, 0.3, 1.0), jitter, np.random.default_rng(seed))
    c = nodes[tris].mean(axis=1)
    K = fem.stiffness(nodes, tris, kap(c[:, 0], c[:, 1]))
    b = fem.load(nodes, tris, q)
    edges = fem.boundary_edges(tris)
    left = np.abs(nodes[:, 0]) < 1e-12
    neumann = edges[~(left[edges[:, 0]] & left[edges[:, 1]])]

    def flux(x, y, nx, ny):
        ux, uy = grad(x, y)
        return kap(x, y) * (ux * nx + uy * ny)

    b += fem.edge_load(nodes, neumann, flux)
    uh = np.zeros(len(nodes))
    uh[left] = u(nodes[left, 0], nodes[left, 1])
    free = ~left
    A = sp.csr_matrix(K[free][:, free])
    uh[free] = spla.spsolve(A.tocsc(), b[free] - K[free][:, left] @ uh[left])
    return fem.errors(nodes, tris, uh, u, grad)
