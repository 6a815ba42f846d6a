r"""Helmholtz with a variable coefficient: :math:`-\nabla\cdot(a\nabla u) - k^2 u = f`, ``u = 0``.

SKR's Helmholtz family (arXiv 2401.09516): ``a = exp(GRF alpha = 2.5, tau = 7)``, ``k ~ U(0, 1)``,
``f = 1``, on the unit square; the 5-point finite-volume stencil of :mod:`neuralops.pde.darcy` with
a diagonal shift. The matrix is symmetric; it is positive definite while ``k^2`` stays below its
smallest eigenvalue, which is at least ``min(a) lambda_min(-Delta_h)`` (about ``2 pi^2 min(a)``).
Every sample records whether that bound holds (``LinearProblem.meta["spd"]``); choose
``solver.method = "gmres"`` or ``"direct"`` when the wavenumber range can make it indefinite.
Recipe id ``"helmholtz"``. Second order for smooth data (:func:`manufactured_error`).

The high-frequency variant of the literature (``c = 20 + tanh(GRF)``, large ``omega``, Neumann data
on one side) is not built here.
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
from neuralops.pde.base import AbstractPDEFamily, GridConfig, LinearProblem
from neuralops.pde.darcy import DarcyFamily, darcy_operator
from neuralops.pde.grf import Sampler, sampler_from_table
from neuralops.pde.recipe import check_keys

__all__ = ["HelmholtzFamily", "helmholtz_operator", "manufactured_error"]


def helmholtz_operator(a: np.ndarray, k: float) -> sp.csr_matrix:
    """``darcy_operator(a) - k^2 I`` on the interior nodes (zero Dirichlet data)."""
    A = darcy_operator(a)
    return (A - (k * k) * sp.identity(A.shape[0], format="csr")).tocsr()


def _lambda_min_laplacian(shape: tuple[int, int]) -> float:
    """Smallest eigenvalue of the 5-point Dirichlet Laplacian on the unit square."""
    return sum(4 * (n - 1) ** 2 * math.sin(math.pi / (2 * (n - 1))) ** 2 for n in shape)


@dataclass(frozen=True)
class HelmholtzFamily(AbstractPDEFamily):
    """Recipe id ``"helmholtz"``: ``[params.a]`` (coefficient), ``[params.k]`` (a scalar sampler of
    the wavenumber) and ``[pde] forcing``. Fields ``a`` (input) and ``u`` (target); parameter ``k``."""

    name: ClassVar[str] = "helmholtz"
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {
            "a": MappingProxyType(
                {
                    "sampler": "grf",
                    "alpha": 2.5,
                    "tau": 7.0,
                    "boundary": "neumann",
                    "transform": "exp",
                }
            ),
            "k": MappingProxyType({"sampler": "uniform", "low": 0.0, "high": 1.0}),
        }
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType({"forcing": 1.0})

    darcy: DarcyFamily
    wavenumber: Sampler

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> HelmholtzFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        darcy = DarcyFamily.from_config(
            grid, {"a": params.get("a", cls.param_tables["a"])}, options
        )
        k = sampler_from_table(params.get("k", cls.param_tables["k"]), 2, where="params.k")
        if k.is_field:
            raise RecipeError("'params.k' is the wavenumber, a scalar sampler (e.g. uniform)")
        return cls(darcy, k)

    @property
    def grid(self) -> GridConfig:
        return self.darcy.grid

    @property
    def spatial_dims(self) -> list[str]:
        return ["x", "y"]

    def field_specs(self) -> list[FieldSpec]:
        a, u = self.darcy.field_specs()
        u = FieldSpec(
            "u", "target", u.shape, u.dims, description="solution of -div(a grad u) - k^2 u = f"
        )
        return [a, u]

    def param_specs(self) -> list[ParamSpec]:
        return [ParamSpec("k", (), "1", repr(self.wavenumber))]

    def coords(self) -> dict[str, np.ndarray]:
        return self.darcy.coords()

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = self.darcy.sample_params(rng)
        out["k"] = np.asarray(float(self.wavenumber.sample(rng, ())))
        return out

    def assemble(self, params: Mapping[str, np.ndarray]) -> LinearProblem:
        a, k = np.asarray(params["a"]), float(params["k"])
        A = helmholtz_operator(a, k)
        b = np.full(A.shape[0], float(self.darcy.forcing))
        spd = k * k < 0.99 * float(a.min()) * _lambda_min_laplacian(a.shape)
        return LinearProblem(A, b, {"spd": spd, "symmetric": True})

    def fields_from_solution(
        self, params: Mapping[str, np.ndarray], x: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
        fields, _ = self.darcy.fields_from_solution(params, x)
        return fields, {"k": float(params["k"])}

    def sort_features(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([self.darcy.sort_features(params), [float(params["k"])]])


def manufactured_error(n: int, k: float = 2.0) -> float:
    """Max nodal error for ``u = sin(pi x) sin(pi y) e^{x y}``, ``a = 1 + x y^2``, on ``(n+1)^2``
    nodes (``k^2`` below the first eigenvalue, so the system is SPD). Second order."""
    import scipy.sparse.linalg as spla
    import sympy

    x, y = sympy.symbols("x y")
    u = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) * sympy.exp(x * y)
    a = 1 + x * y**2
    f = -(sympy.diff(a * sympy.diff(u, x), x) + sympy.diff(a * sympy.diff(u, y), y)) - k**2 * u
    fu, fa, ff = (sympy.lambdify((x, y), e, "numpy") for e in (u, a, f))
    X, Y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1), indexing="ij")
    A = helmholtz_operator(fa(X, Y), k)
    uh = spla.spsolve(A.tocsc(), ff(X, Y)[1:-1, 1:-1].ravel())
    return float(np.max(np.abs(uh - fu(X, Y)[1:-1, 1:-1].ravel())))
