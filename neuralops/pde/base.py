"""The contract between a PDE family and the generation pipeline.

A family is built from a recipe (its grid table and its ``[params.*]`` tables), declares the
fields it writes, draws the parameters of one sample from a seeded generator, and turns them into
stored fields. Steady linear families only implement :meth:`AbstractPDEFamily.assemble` and
:meth:`AbstractPDEFamily.fields_from_solution`; time-dependent ones override
:meth:`AbstractPDEFamily.solve`.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from neuralops.data.schema import FieldSpec, ParamSpec, SolverRecord

__all__ = ["LinearProblem", "SampleResult", "GridConfig", "AbstractPDEFamily"]


@dataclass(frozen=True)
class LinearProblem:
    """``A x = b`` with ``A`` a scipy CSR matrix; ``meta`` carries structure tags (``spd``)."""

    A: sp.csr_matrix
    b: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleResult:
    """What one sample produces: stored fields, scalar/vector params, solver statistics."""

    fields: Mapping[str, np.ndarray]
    params: Mapping[str, np.ndarray | float]
    record: SolverRecord
    failed: bool = False
    error: str = ""


@dataclass(frozen=True)
class GridConfig:
    """``size``: solve-grid points per axis (vertex-centred on [0, 1]^d, boundary included);
    ``store_stride``: stride applied before storing (``size - 1`` divisible by it keeps nodes)."""

    size: tuple[int, ...]
    store_stride: int = 1

    @property
    def stored_size(self) -> tuple[int, ...]:
        return tuple((s - 1) // self.store_stride + 1 for s in self.size)


class AbstractPDEFamily(abc.ABC):
    """One PDE family. Subclasses set ``name`` and ``param_tables`` (the valid ``[params.X]``)."""

    name: ClassVar[str]
    #: names of the ``[params.<name>]`` recipe tables the family understands, with their defaults
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    @classmethod
    @abc.abstractmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> AbstractPDEFamily:
        """Build and validate from the recipe; raise ``RecipeError`` naming the bad key."""

    @property
    @abc.abstractmethod
    def spatial_dims(self) -> list[str]: ...

    @abc.abstractmethod
    def field_specs(self) -> list[FieldSpec]: ...

    def param_specs(self) -> list[ParamSpec]:
        return []

    @abc.abstractmethod
    def coords(self) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw everything random about one sample (coefficients, forcing, ...)."""

    def assemble(self, params: Mapping[str, np.ndarray]) -> LinearProblem:
        raise NotImplementedError(f"{self.name} is not a steady linear family")

    def fields_from_solution(
        self, params: Mapping[str, np.ndarray], x: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
        raise NotImplementedError(f"{self.name} is not a steady linear family")

    def sort_features(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Features used to sort a sequence of systems for Krylov recycling (SKR)."""
        raise NotImplementedError(f"{self.name} defines no sort features")

    def solve(self, params: Mapping[str, np.ndarray], solver) -> SampleResult:
        """Assemble, solve with ``solver`` (``solver.solve(A, b) -> Solution``) and store.

        The true relative residual ``||b - A x|| / ||b||`` is recomputed here, whatever the
        solver reports. Non-convergence or non-finite output marks the sample failed.
        """
        t0 = time.perf_counter()
        problem = self.assemble(params)
        sol = solver.solve(problem.A, problem.b)
        x = np.asarray(sol.x)
        seconds = time.perf_counter() - t0
        bnorm = float(np.linalg.norm(problem.b)) or 1.0
        residual = float(np.linalg.norm(problem.b - problem.A @ x) / bnorm)
        record = SolverRecord(
            iterations=int(sol.iterations),
            residual=residual,
            seconds=seconds,
            converged=bool(sol.converged),
        )
        if not np.all(np.isfinite(x)):
            return SampleResult({}, {}, record, failed=True, error="solution has NaN/Inf")
        if not sol.converged:
            return SampleResult(
                {}, {}, record, failed=True, error=f"solver did not converge: {sol.message}"
            )
        fields, extra = self.fields_from_solution(params, x)
        return SampleResult(fields, extra, record)
