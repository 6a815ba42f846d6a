r"""Allen–Cahn :math:`u_t = \varepsilon^2 \Delta u + u - u^3` on the periodic unit interval or square.

Fourier spectral in space; ETDRK4 in time with the linear part :math:`\varepsilon^2\Delta + I`
integrated exactly and the cubic explicitly (fourth order; the coefficients of
:func:`neuralops.pde.burgers.etdrk4_coefficients`). The initial state is a GRF or uniform noise
(``[params.u0]``), as in Poseidon's ACE task (128^2, 20 snapshots). Recipe id ``"allen_cahn"``;
``grid.size`` with one entry is the 1-D problem, with two the 2-D one.

Check (:meth:`AllenCahnFamily.kink_drift`): the steady interface ``tanh(x / (sqrt(2) eps))`` (two
kinks on the periodic interval, far apart compared with ``eps``) does not move.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import scipy.fft as sfft

from neuralops.data.errors import RecipeError
from neuralops.data.schema import FieldSpec
from neuralops.pde._timeseries import (
    TimeOptions,
    check_periodic_grid,
    integrate,
    periodic_coords,
)
from neuralops.pde.base import AbstractPDEFamily, GridConfig, SampleResult
from neuralops.pde.burgers import etdrk4_coefficients, etdrk4_run
from neuralops.pde.grf import Sampler, sampler_from_table
from neuralops.pde.recipe import check_keys

__all__ = ["AllenCahnFamily", "AllenCahnSolver"]


class AllenCahnSolver:
    """ETDRK4 on a periodic grid of shape ``shape`` (1-D or 2-D)."""

    def __init__(self, shape: tuple[int, ...], eps: float, dt: float) -> None:
        self.shape = tuple(shape)
        ks = [np.fft.fftfreq(n, d=1.0 / n) for n in shape[:-1]]
        ks.append(np.fft.rfftfreq(shape[-1], d=1.0 / shape[-1]))
        grids = np.meshgrid(*ks, indexing="ij")
        k2 = sum((2 * np.pi * g) ** 2 for g in grids)
        self.coefficients = etdrk4_coefficients(1.0 - eps**2 * k2, dt)
        self.axes = tuple(range(-len(shape), 0))

    def _N(self, v: np.ndarray) -> np.ndarray:
        u = sfft.irfftn(v, s=self.shape, axes=self.axes, workers=1)
        return sfft.rfftn(-(u**3), axes=self.axes, workers=1)

    def run(self, u0: np.ndarray, n_records: int, steps_per_record: int) -> np.ndarray:
        def physical(v):
            return sfft.irfftn(v, s=self.shape, axes=self.axes, workers=1)

        v = sfft.rfftn(u0, axes=self.axes, workers=1)
        frames = etdrk4_run(v, self._N, self.coefficients, n_records, steps_per_record, physical)
        return np.stack([np.asarray(u0, dtype=np.float64), *frames])


@dataclass(frozen=True)
class AllenCahnFamily(AbstractPDEFamily):
    """Recipe id ``"allen_cahn"``: ``[params.u0]``, ``[pde]`` ``epsilon``, ``dt``, ``t_end``,
    ``record_every``. Field ``u``: ``(T, *s')``, dims ``(sample, time, x[, y])``."""

    name: ClassVar[str] = "allen_cahn"
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {"u0": MappingProxyType({"sampler": "uniform", "low": -1.0, "high": 1.0})}
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"epsilon": 0.01, "dt": 1e-3, "t_end": 0.2, "record_every": 0.01}
    )

    grid: GridConfig
    u0: Sampler
    epsilon: float
    time: TimeOptions

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> AllenCahnFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        d = len(tuple(grid.size))
        if d not in (1, 2):
            raise RecipeError(
                f"'dataset.grid.size' must have 1 (1-D) or 2 (2-D) entries for allen_cahn, "
                f"got {list(grid.size)}"
            )
        check_periodic_grid(tuple(grid.size), grid.store_stride, d, "allen_cahn")
        table = params.get("u0", cls.param_tables["u0"])
        u0 = sampler_from_table(table, d, where="params.u0", defaults={"boundary": "periodic"})
        eps = options.get("epsilon", cls.options["epsilon"])
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
            raise RecipeError(f"'pde.epsilon' must be a number > 0, got {eps!r}")
        return cls(grid, u0, float(eps), TimeOptions.from_options(options, cls.options))

    @property
    def spatial_dims(self) -> list[str]:
        return ["x", "y"][: len(self.grid.size)]

    def field_specs(self) -> list[FieldSpec]:
        return [
            FieldSpec(
                "u",
                "input,target",
                (self.time.n_snapshots, *self.grid.stored_size),
                ("sample", "time", *self.spatial_dims),
                units="1",
                description=f"Allen-Cahn phase field, epsilon = {self.epsilon:g}",
            )
        ]

    def coords(self) -> dict[str, np.ndarray]:
        c = periodic_coords(tuple(self.grid.size), self.grid.store_stride, tuple(self.spatial_dims))
        c["t"] = self.time.times
        return c

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shape = tuple(self.grid.size)
        if self.u0.is_field:
            return {"u0": self.u0.sample(rng, shape)}
        return {"u0": np.asarray(self.u0.sample(rng, shape), dtype=np.float64).reshape(shape)}

    def solve(self, params: Mapping[str, np.ndarray], solver: Any = None) -> SampleResult:
        n, st = self.time.n_snapshots - 1, self.grid.store_stride

        def store(traj: np.ndarray) -> dict:
            stored = traj[(slice(None), *[slice(None, None, st)] * (traj.ndim - 1))]
            return {"u": np.ascontiguousarray(stored, np.float32)}

        return integrate(
            lambda: AllenCahnSolver(tuple(self.grid.size), self.epsilon, self.time.dt).run(
                np.asarray(params["u0"]), n, self.time.steps_per_record
            ),
            n * self.time.steps_per_record,
            store,
        )

    @staticmethod
    def kink_drift(s: int, eps: float, dt: float, t_end: float) -> float:
        """Max change of the two-kink steady state ``tanh((x - 1/4)/(sqrt 2 eps)) tanh((3/4 - x)/
        (sqrt 2 eps))`` after integrating to ``t_end`` (exponentially small in 1/eps when exact)."""
        x = np.arange(s) / s
        w = math.sqrt(2) * eps
        u0 = np.tanh((x - 0.25) / w) * np.tanh((0.75 - x) / w)
        u = AllenCahnSolver((s,), eps, dt).run(u0, 1, round(t_end / dt))[-1]
        return float(np.max(np.abs(u - u0)))
