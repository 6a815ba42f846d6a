r"""1-D viscous Burgers :math:`u_t + (u^2/2)_x = \nu u_{xx}` on the periodic interval [0, 1).

Fourier pseudo-spectral in space (2/3 dealiasing of :math:`u^2`) and ETDRK4 in time (Cox &
Matthews 2002, with the contour-integral coefficients of Kassam & Trefethen 2005): the stiff
diffusion is integrated exactly, the nonlinearity to fourth order. FNO's data (Li et al., arXiv
2010.08895): ``u0 ~ N(0, 625 (-Delta + 25 I)^-2)`` (a periodic GRF with ``alpha = 2, tau = 5,
sigma = 25``), ``nu = 0.1``, ``T = 1``, solved on 8192 points and stored subsampled (1024 or 256).
Recipe id ``"burgers1d"``.

Check (:meth:`Burgers1DFamily.cole_hopf_error`): with ``phi = 2 + exp(-4 pi^2 nu t) cos(2 pi x)``
solving the heat equation, ``u = -2 nu phi_x / phi`` is an exact solution (Cole–Hopf).
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
from neuralops.pde.grf import Sampler, sampler_from_table
from neuralops.pde.recipe import check_keys

__all__ = ["Burgers1DFamily", "BurgersSolver", "etdrk4_coefficients", "etdrk4_run"]


def etdrk4_coefficients(L: np.ndarray, dt: float, m: int = 32) -> tuple[np.ndarray, ...]:
    """``E, E2, Q, f1, f2, f3`` of ETDRK4 for the diagonal linear operator ``L`` (Kassam–Trefethen),
    the phi-functions evaluated by a mean over ``m`` points of a complex circle (no cancellation)."""
    E, E2 = np.exp(dt * L), np.exp(dt * L / 2)
    r = np.exp(1j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
    LR = dt * L[..., None] + r
    Q = dt * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=-1))
    f1 = dt * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=-1))
    f2 = dt * np.real(np.mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3, axis=-1))
    f3 = dt * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=-1))
    return E, E2, Q, f1, f2, f3


def etdrk4_run(
    v: np.ndarray,
    nonlinear,
    coefficients: tuple[np.ndarray, ...],
    n_records: int,
    steps_per_record: int,
    to_physical,
) -> list[np.ndarray]:
    """ETDRK4 steps from the spectral state ``v``; returns ``to_physical(v)`` every
    ``steps_per_record`` steps (``n_records`` of them). ``nonlinear(v)`` is the spectral ``N(u)``."""
    E, E2, Q, f1, f2, f3 = coefficients
    out = []
    for _ in range(n_records):
        for _ in range(steps_per_record):
            Nv = nonlinear(v)
            a = E2 * v + Q * Nv
            Na = nonlinear(a)
            b = E2 * v + Q * Na
            Nb = nonlinear(b)
            c = E2 * a + Q * (2 * Nb - Nv)
            Nc = nonlinear(c)
            v = E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc
        u = to_physical(v)
        if not np.all(np.isfinite(u)):
            raise FloatingPointError("the solution became non-finite; lower dt")
        out.append(u)
    return out


class BurgersSolver:
    """ETDRK4 for viscous Burgers on ``s`` periodic points; :meth:`run` returns snapshots."""

    def __init__(self, s: int, nu: float, dt: float) -> None:
        self.s = s
        k = np.fft.rfftfreq(s, d=1.0 / s)  # 0..s/2
        self.g = -0.5j * 2 * np.pi * k  # N(u)^ = -(1/2) i k (u^2)^
        self.g *= np.abs(k) <= 2.0 / 3.0 * (s // 2)  # dealias
        self.coefficients = etdrk4_coefficients(-nu * (2 * np.pi * k) ** 2, dt)

    def _N(self, v: np.ndarray) -> np.ndarray:
        u = sfft.irfft(v, n=self.s, workers=1)
        return self.g * sfft.rfft(u * u, workers=1)

    def run(self, u0: np.ndarray, n_records: int, steps_per_record: int) -> np.ndarray:
        def physical(v):
            return sfft.irfft(v, n=self.s, workers=1)

        v = sfft.rfft(u0, workers=1)
        frames = etdrk4_run(v, self._N, self.coefficients, n_records, steps_per_record, physical)
        return np.stack([np.asarray(u0, dtype=np.float64), *frames])


@dataclass(frozen=True)
class Burgers1DFamily(AbstractPDEFamily):
    """Recipe id ``"burgers1d"``: ``[params.u0]`` (periodic GRF), ``[pde]`` ``viscosity``, ``dt``,
    ``t_end``, ``record_every``. Field ``u``: ``(T, s')`` per sample, dims ``(sample, time, x)``."""

    name: ClassVar[str] = "burgers1d"
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {
            "u0": MappingProxyType(
                {"sampler": "grf", "alpha": 2.0, "tau": 5.0, "sigma": 25.0, "boundary": "periodic"}
            )
        }
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"viscosity": 0.1, "dt": 1e-4, "t_end": 1.0, "record_every": 0.1}
    )

    grid: GridConfig
    u0: Sampler
    viscosity: float
    time: TimeOptions

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> Burgers1DFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        check_periodic_grid(tuple(grid.size), grid.store_stride, 1, "burgers1d")
        table = params.get("u0", cls.param_tables["u0"])
        u0 = sampler_from_table(table, 1, where="params.u0", defaults={"boundary": "periodic"})
        if not u0.is_field or getattr(u0, "boundary", "periodic") != "periodic":
            raise RecipeError("'params.u0' must be a periodic field sampler (sampler = \"grf\")")
        nu = options.get("viscosity", cls.options["viscosity"])
        if isinstance(nu, bool) or not isinstance(nu, int | float) or not nu > 0:
            raise RecipeError(f"'pde.viscosity' must be a number > 0, got {nu!r}")
        family = cls(grid, u0, float(nu), TimeOptions.from_options(options, cls.options))
        family.check_cfl()
        return family

    #: ETDRK4 treats the nonlinearity explicitly; the diffusion (exact) helps, so the limit is loose
    CFL_LIMIT: ClassVar[float] = 4.0

    def check_cfl(self) -> float:
        """``max|u0| dt / dx`` from one initial draw; :class:`RecipeError` above the limit."""
        s = self.grid.size[0]
        speed = float(np.abs(self.u0.sample(np.random.default_rng(0), (s,))).max())
        cfl = speed * self.time.dt * s
        if cfl > self.CFL_LIMIT:
            raise RecipeError(
                f"'pde.dt' = {self.time.dt:g} is unstable on {s} points: CFL max|u0| dt / dx ~ "
                f"{cfl:.2f} > {self.CFL_LIMIT} (max|u0| ~ {speed:.2f}); use dt <= "
                f"{self.CFL_LIMIT / (max(speed, 1e-12) * s):.2g}"
            )
        return cfl

    @property
    def spatial_dims(self) -> list[str]:
        return ["x"]

    def field_specs(self) -> list[FieldSpec]:
        return [
            FieldSpec(
                "u",
                "input,target",
                (self.time.n_snapshots, *self.grid.stored_size),
                ("sample", "time", "x"),
                units="1",
                description=f"viscous Burgers velocity, nu = {self.viscosity:g}",
            )
        ]

    def coords(self) -> dict[str, np.ndarray]:
        c = periodic_coords(tuple(self.grid.size), self.grid.store_stride, ("x",))
        c["t"] = self.time.times
        return c

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"u0": self.u0.sample(rng, tuple(self.grid.size))}

    def solve(self, params: Mapping[str, np.ndarray], solver: Any = None) -> SampleResult:
        """ETDRK4 to ``t_end``; ``solver`` is unused (the linear part is diagonal in Fourier)."""
        s, n, st = self.grid.size[0], self.time.n_snapshots - 1, self.grid.store_stride
        return integrate(
            lambda: BurgersSolver(s, self.viscosity, self.time.dt).run(
                np.asarray(params["u0"]), n, self.time.steps_per_record
            ),
            n * self.time.steps_per_record,
            lambda traj: {"u": np.ascontiguousarray(traj[:, ::st], np.float32)},
        )

    @staticmethod
    def cole_hopf(x: np.ndarray, t: float, nu: float) -> np.ndarray:
        """``u = -2 nu phi_x / phi`` with ``phi = 2 + exp(-4 pi^2 nu t) cos(2 pi x)``."""
        e = math.exp(-4 * np.pi**2 * nu * t)
        return 4 * np.pi * nu * e * np.sin(2 * np.pi * x) / (2 + e * np.cos(2 * np.pi * x))

    @classmethod
    def cole_hopf_error(cls, s: int, nu: float, dt: float, t_end: float) -> float:
        """Max error against the Cole–Hopf solution at ``t_end``."""
        x = np.arange(s) / s
        steps = round(t_end / dt)
        u = BurgersSolver(s, nu, dt).run(cls.cole_hopf(x, 0.0, nu), 1, steps)[-1]
        return float(np.max(np.abs(u - cls.cole_hopf(x, t_end, nu))))
