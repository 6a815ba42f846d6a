r"""2-D incompressible Navier–Stokes in vorticity form on the periodic unit square.

.. math::

    \omega_t + u\cdot\nabla\omega = \nu\Delta\omega + f, \qquad -\Delta\psi = \omega,
    \qquad u = (\psi_y, -\psi_x).

Pseudo-spectral in space (FFT, 2/3 dealiasing of the advection term), Crank–Nicolson for the
diffusion and explicit Euler for advection and forcing, as in the FNO data generator (Li et al.,
arXiv 2010.08895): ``omega0 ~ N(0, 7^{3/2} (-Delta + 49 I)^{-2.5})`` (a periodic GRF with
``alpha = 2.5, tau = 7``), ``f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``, ``dt = 1e-4``,
``nu`` in {1e-3, 1e-4, 1e-5}, snapshots every time unit. The solve grid is ``grid.size`` points
per axis (endpoint excluded); stored snapshots are strided by ``grid.store_stride`` (256 -> 64 in
FNO's files). Recipe id ``"ns2d_vorticity"``.

For the Taylor–Green mode ``omega = sin(2 pi x) sin(2 pi y)`` the advection term vanishes and the
vorticity decays as ``exp(-8 pi^2 nu t)``: Crank–Nicolson reproduces it to second order in ``dt``
(:meth:`NS2DVorticityFamily.taylor_green_error`).
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

__all__ = ["NS2DVorticityFamily", "VorticitySolver"]

FORCINGS = ("fno", "none")


class VorticitySolver:
    """Advance vorticity on an ``s x s`` periodic grid with step ``dt`` and viscosity ``nu``.

    ``forcing`` is an ``(s, s)`` array (or None). :meth:`run` takes ``omega0`` and returns the
    snapshots every ``steps_per_record`` steps, the initial state included.
    """

    def __init__(self, s: int, nu: float, dt: float, forcing: np.ndarray | None = None) -> None:
        self.s, self.nu, self.dt = s, nu, dt
        k = np.fft.fftfreq(s, d=1.0 / s)  # integer wavenumbers
        kx, ky = np.meshgrid(k, k[: s // 2 + 1], indexing="ij")  # rfft2 layout: last axis halved
        self.ikx, self.iky = 2j * np.pi * kx, 2j * np.pi * ky
        lap = 4 * np.pi**2 * (kx**2 + ky**2)
        self.inv_lap = np.zeros_like(lap)
        self.inv_lap[lap > 0] = 1.0 / lap[lap > 0]
        kmax = 2.0 / 3.0 * (s // 2)
        self.dealias = (np.abs(kx) <= kmax) & (np.abs(ky) <= kmax)
        self.cn_plus = 1.0 + 0.5 * dt * nu * lap
        self.cn_minus = 1.0 - 0.5 * dt * nu * lap
        self.f_hat = None if forcing is None else sfft.rfft2(forcing, workers=1)

    def _rhs(self, w_hat: np.ndarray) -> np.ndarray:
        """Fourier transform of ``-u . grad omega`` (dealiased)."""
        psi = w_hat * self.inv_lap
        u = sfft.irfft2(self.iky * psi, s=(self.s, self.s), workers=1)
        v = sfft.irfft2(-self.ikx * psi, s=(self.s, self.s), workers=1)
        wx = sfft.irfft2(self.ikx * w_hat, s=(self.s, self.s), workers=1)
        wy = sfft.irfft2(self.iky * w_hat, s=(self.s, self.s), workers=1)
        return -sfft.rfft2(u * wx + v * wy, workers=1) * self.dealias

    def run(self, omega0: np.ndarray, n_records: int, steps_per_record: int) -> np.ndarray:
        w_hat = sfft.rfft2(omega0, workers=1)
        out = np.empty((n_records + 1, self.s, self.s))
        out[0] = omega0
        for r in range(1, n_records + 1):
            for _ in range(steps_per_record):
                explicit = self._rhs(w_hat)
                if self.f_hat is not None:
                    explicit = explicit + self.f_hat
                w_hat = (self.cn_minus * w_hat + self.dt * explicit) / self.cn_plus
            out[r] = sfft.irfft2(w_hat, s=(self.s, self.s), workers=1)
            if not np.all(np.isfinite(out[r])):
                raise FloatingPointError(
                    f"vorticity became non-finite before t = {r} snapshots; lower dt"
                )
        return out


def fno_forcing(s: int) -> np.ndarray:
    """``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` on the ``s x s`` periodic grid."""
    x = np.arange(s) / s
    X, Y = np.meshgrid(x, x, indexing="ij")
    return 0.1 * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))


@dataclass(frozen=True)
class NS2DVorticityFamily(AbstractPDEFamily):
    """Recipe id ``"ns2d_vorticity"``: ``[params.omega0]`` (a periodic GRF by default) and ``[pde]``
    options ``viscosity``, ``forcing`` ("fno" or "none"), ``dt``, ``t_end``, ``record_every``.

    Field ``vorticity``: ``(T, s', s')`` per sample with dims ``(sample, time, x, y)``, role
    ``input,target`` (a trajectory; ``PDEDataset(time=...)`` cuts it into samples).
    """

    name: ClassVar[str] = "ns2d_vorticity"
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {
            "omega0": MappingProxyType(
                {"sampler": "grf", "alpha": 2.5, "tau": 7.0, "boundary": "periodic"}
            )
        }
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"viscosity": 1e-3, "forcing": "fno", "dt": 1e-4, "t_end": 50.0, "record_every": 1.0}
    )

    grid: GridConfig
    omega0: Sampler
    viscosity: float
    forcing: str
    time: TimeOptions

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> NS2DVorticityFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        check_periodic_grid(tuple(grid.size), grid.store_stride, 2, "ns2d_vorticity")
        table = params.get("omega0", cls.param_tables["omega0"])
        omega0 = sampler_from_table(
            table, 2, where="params.omega0", defaults={"boundary": "periodic"}
        )
        if not omega0.is_field:
            raise RecipeError("'params.omega0' must be a field sampler (e.g. sampler = \"grf\")")
        if getattr(omega0, "boundary", "periodic") != "periodic":
            raise RecipeError(
                "'params.omega0.boundary' must be \"periodic\" on the periodic domain"
            )
        nu = options.get("viscosity", cls.options["viscosity"])
        if isinstance(nu, bool) or not isinstance(nu, int | float) or not nu > 0:
            raise RecipeError(f"'pde.viscosity' must be a number > 0, got {nu!r}")
        forcing = options.get("forcing", cls.options["forcing"])
        if forcing not in FORCINGS:
            raise RecipeError(f"'pde.forcing' must be one of {FORCINGS}, got {forcing!r}")
        t = TimeOptions.from_options(options, cls.options)
        family = cls(grid, omega0, float(nu), forcing, t)
        family.check_cfl()
        return family

    #: explicit Euler advection: reject dt with max|u| dt / dx above this before any work
    CFL_LIMIT: ClassVar[float] = 1.0

    def check_cfl(self) -> float:
        """Estimate the advective CFL number ``max|u| dt / dx`` from one initial draw (``u`` at least
        1, the order of the forced flow) and raise :class:`RecipeError` when it exceeds the limit."""
        s = self.grid.size[0]
        w0 = np.asarray(self.omega0.sample(np.random.default_rng(0), (s, s)))
        st = VorticitySolver(s, self.viscosity, self.time.dt)
        w_hat = sfft.rfft2(w0, workers=1)
        u = sfft.irfft2(st.iky * w_hat * st.inv_lap, s=(s, s), workers=1)
        v = sfft.irfft2(-st.ikx * w_hat * st.inv_lap, s=(s, s), workers=1)
        speed = max(1.0, float(np.abs(u).max()), float(np.abs(v).max()))
        cfl = speed * self.time.dt * s
        if cfl > self.CFL_LIMIT:
            raise RecipeError(
                f"'pde.dt' = {self.time.dt:g} is unstable on the {s}^2 grid: CFL max|u| dt / dx "
                f"~ {cfl:.2f} > {self.CFL_LIMIT} (max|u| ~ {speed:.2f}); use dt <= "
                f"{self.CFL_LIMIT / (speed * s):.2g}"
            )
        return cfl

    @property
    def spatial_dims(self) -> list[str]:
        return ["x", "y"]

    def field_specs(self) -> list[FieldSpec]:
        shape = (self.time.n_snapshots, *self.grid.stored_size)
        return [
            FieldSpec(
                "vorticity",
                "input,target",
                shape,
                ("sample", "time", "x", "y"),
                units="1/s",
                description=f"vorticity, nu = {self.viscosity:g}, forcing {self.forcing}",
            )
        ]

    def coords(self) -> dict[str, np.ndarray]:
        c = periodic_coords(tuple(self.grid.size), self.grid.store_stride, ("x", "y"))
        c["t"] = self.time.times
        return c

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"omega0": self.omega0.sample(rng, tuple(self.grid.size))}

    def solve(self, params: Mapping[str, np.ndarray], solver: Any = None) -> SampleResult:
        """Integrate to ``t_end``; ``solver`` is unused (the scheme is explicit/diagonal in Fourier)."""
        s, n, st = self.grid.size[0], self.time.n_snapshots - 1, self.grid.store_stride
        forcing = fno_forcing(s) if self.forcing == "fno" else None
        stepper = VorticitySolver(s, self.viscosity, self.time.dt, forcing)
        return integrate(
            lambda: stepper.run(np.asarray(params["omega0"]), n, self.time.steps_per_record),
            n * self.time.steps_per_record,
            lambda traj: {"vorticity": np.ascontiguousarray(traj[:, ::st, ::st], np.float32)},
        )

    @staticmethod
    def taylor_green_error(s: int, nu: float, dt: float, t_end: float) -> float:
        """Max error of the unforced Taylor–Green mode against ``exp(-8 pi^2 nu t)`` at ``t_end``."""
        x = np.arange(s) / s
        X, Y = np.meshgrid(x, x, indexing="ij")
        w0 = np.sin(2 * np.pi * X) * np.sin(2 * np.pi * Y)
        steps = round(t_end / dt)
        out = VorticitySolver(s, nu, dt).run(w0, 1, steps)[-1]
        return float(np.max(np.abs(out - w0 * math.exp(-8 * np.pi**2 * nu * t_end))))
