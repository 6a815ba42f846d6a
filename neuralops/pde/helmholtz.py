r"""Helmholtz with a variable coefficient: :math:`-\nabla\cdot(a\nabla u) - k^2 u = f`, ``u = 0``.

SKR's Helmholtz family (arXiv 2401.09516): ``a = exp(GRF alpha = 2.5, tau = 7)``, ``k ~ U(0, 1)``,
``f = 1``, on the unit square; the 5-point finite-volume stencil of :mod:`neuralops.pde.darcy` with
a diagonal shift. The matrix is symmetric; it is positive definite while ``k^2`` stays below its
smallest eigenvalue, which is at least ``min(a) lambda_min(-Delta_h)`` (about ``2 pi^2 min(a)``).
Every sample records whether that bound holds (``LinearProblem.meta["spd"]``). Recipe id
``"helmholtz"``. Second order for smooth data (:func:`manufactured_error`).

**Variable wavenumber** (the high-frequency setting of the GP/operator-learning literature, with
zero Dirichlet data instead of a Neumann side): give ``[params.c]`` (a field sampler) and
``[pde] omega``; the wave speed is ``c(x) = c0 + tanh(field)`` (``c0 = 20`` by default) and
``k(x) = omega / c(x)``, so ``k^2`` varies in space and, for ``omega`` beyond about
``pi sqrt(2) c0``, the system is **indefinite**. Helmholtz systems are therefore never given to CG:
a recipe choosing ``cg``/``pcg`` is refused before any work (use ``gmres`` or ``direct``).
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


def helmholtz_operator(a: np.ndarray, k: float | np.ndarray) -> sp.csr_matrix:
    """``darcy_operator(a) - diag(k^2)`` on the interior nodes (zero Dirichlet data); ``k`` a
    number or a nodal array of ``a``'s shape."""
    A = darcy_operator(a)
    k = np.asarray(k, dtype=np.float64)
    k2 = np.full(A.shape[0], float(k) ** 2) if k.ndim == 0 else (k[1:-1, 1:-1] ** 2).ravel()
    return (A - sp.diags(k2, format="csr")).tocsr()


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
            "c": MappingProxyType({}),  # optional: a field sampler of the wave-speed perturbation
        }
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"forcing": 1.0, "omega": 0.0, "c0": 20.0}
    )
    #: Helmholtz systems can be indefinite: the pipeline refuses CG for this family
    spd_guaranteed: ClassVar[bool] = False

    darcy: DarcyFamily
    wavenumber: Sampler
    speed: Sampler | None = None
    omega: float = 0.0
    c0: float = 20.0

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> HelmholtzFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        darcy = DarcyFamily.from_config(
            grid,
            {"a": params.get("a", cls.param_tables["a"])},
            {"forcing": options.get("forcing", cls.options["forcing"])},
        )
        k = sampler_from_table(params.get("k", cls.param_tables["k"]), 2, where="params.k")
        if k.is_field:
            raise RecipeError("'params.k' is the wavenumber, a scalar sampler (e.g. uniform)")
        speed = None
        omega = options.get("omega", cls.options["omega"])
        c0 = options.get("c0", cls.options["c0"])
        for name, v in (("omega", omega), ("c0", c0)):
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
            ):
                raise RecipeError(f"'pde.{name}' must be a number >= 0, got {v!r}")
        if "c" in params:
            speed = sampler_from_table(params["c"], 2, where="params.c")
            if not speed.is_field:
                raise RecipeError("'params.c' must be a field sampler (e.g. a GRF)")
            if not omega > 0 or not c0 > 1:
                raise RecipeError(
                    "a variable wave speed needs 'pde.omega' > 0 and 'pde.c0' > 1 "
                    "(c = c0 + tanh(field) must stay positive)"
                )
        return cls(darcy, k, speed, float(omega), float(c0))

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
        if self.speed is None:
            return [a, u]
        k = FieldSpec("k", "input", u.shape, u.dims, description="wavenumber omega / c(x)")
        return [a, k, u]

    def param_specs(self) -> list[ParamSpec]:
        return [] if self.speed is not None else [ParamSpec("k", (), "1", repr(self.wavenumber))]

    def coords(self) -> dict[str, np.ndarray]:
        return self.darcy.coords()

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = self.darcy.sample_params(rng)
        if self.speed is None:
            out["k"] = np.asarray(float(self.wavenumber.sample(rng, ())))
        else:
            c = self.c0 + np.tanh(np.asarray(self.speed.sample(rng, tuple(self.grid.size))))
            out["k"] = self.omega / c  # a field
        return out

    def assemble(self, params: Mapping[str, np.ndarray]) -> LinearProblem:
        a, k = np.asarray(params["a"]), np.asarray(params["k"], dtype=np.float64)
        A = helmholtz_operator(a, k)
        b = np.full(A.shape[0], float(self.darcy.forcing))
        spd = float(np.max(k)) ** 2 < 0.99 * float(a.min()) * _lambda_min_laplacian(a.shape)
        return LinearProblem(A, b, {"spd": spd, "symmetric": True})

    def fields_from_solution(
        self, params: Mapping[str, np.ndarray], x: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
        fields, _ = self.darcy.fields_from_solution(params, x)
        if self.speed is None:
            return fields, {"k": float(params["k"])}
        st = self.grid.store_stride
        fields["k"] = np.ascontiguousarray(np.asarray(params["k"])[::st, ::st], np.float32)
        return fields, {}

    def sort_features(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        k = np.asarray(params["k"])
        return np.concatenate([self.darcy.sort_features(params), [float(k.mean()), float(k.std())]])


def manufactured_error(n: int, k: float = 2.0, variable: bool = False) -> float:
    """Max nodal error for ``u = sin(pi x) sin(pi y) e^{x y}``, ``a = 1 + x y^2``, on ``(n+1)^2``
    nodes; ``k`` constant (``k = 2``: SPD) or, with ``variable``, ``k(x, y) = k (1 + x y / 2)``
    (``k = 12``: indefinite). Second order either way (solved directly)."""
    import scipy.sparse.linalg as spla
    import sympy

    x, y = sympy.symbols("x y")
    u = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) * sympy.exp(x * y)
    a = 1 + x * y**2
    kk = k * (1 + x * y / 2) if variable else sympy.Float(k)
    f = -(sympy.diff(a * sympy.diff(u, x), x) + sympy.diff(a * sympy.diff(u, y), y)) - kk**2 * u
    fu, fa, ff, fk = (sympy.lambdify((x, y), e, "numpy") for e in (u, a, f, kk))
    X, Y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1), indexing="ij")
    A = helmholtz_operator(fa(X, Y), np.broadcast_to(fk(X, Y), X.shape) if variable else k)
    uh = spla.spsolve(A.tocsc(), ff(X, Y)[1:-1, 1:-1].ravel())
    return float(np.max(np.abs(uh - fu(X, Y)[1:-1, 1:-1].ravel())))
