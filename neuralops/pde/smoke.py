"""Incompressible smoke with solid obstacles on a MAC grid (2-D and 3-D); the pressure projection
calls any neuralops solver.

The box holds ``shape`` cells of unit size; the last axis points up. Velocity lives on the cell
faces (component ``d`` has shape ``shape + e_d``), density on the cell centres. Sides and bottom are
walls, the top is open (fluid may leave; ``p = 0`` above it); ``fluid`` marks the cells that are not
solid. One step (:meth:`Smoke.step`):

1. **source**: density 1 and an upward velocity ``inflow`` in a small box at the bottom centre;
2. **buoyancy**: ``w += dt * buoyancy * density`` on the vertical faces (density averaged to faces);
3. **advection**: semi-Lagrangian, second order in space (multilinear interpolation), of the velocity
   and the density: every sample point is traced back along the velocity by ``dt``;
4. **boundary**: the normal velocity on faces touching a solid cell or a wall is set to zero;
5. **projection**: with ``D`` the net outflow of every fluid cell (its discrete divergence times the
   cell volume), solve ``A p = -D``, where ``A`` is :func:`neuralops.pde.pressure.pressure_poisson`
   on the fluid cells (SPD), and subtract the pressure differences from the face velocities. The
   outflow after the update is exactly ``D + A p``: the velocity is divergence-free up to the linear
   solver's residual, ``||div u|| = ||A p + D|| <= rtol ||D||``.

Pressure and velocity are in cell units (``h = 1``; the time step ``dt`` folds into the pressure).
Any solver with ``solve(A, b, x0=...) -> Solution`` works (:func:`neuralops.solvers.make_solver`,
:class:`neuralops.solvers.DCDM` with the fluid mask); the previous step's pressure is the initial
guess (``warm_start``). Every step records the :class:`~neuralops.solvers.Solution`; a failed solve
is kept in the record and the step raises :class:`PressureSolveError` unless
``allow_unconverged``.

>>> sim = Smoke((16, 24), rtol=1e-8)
>>> rec = sim.step()
>>> rec.solution.converged, sim.max_divergence() < 1e-7 * max(rec.rhs_norm, 1e-30) + 1e-12
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import map_coordinates

from neuralops.pde.pressure import pressure_poisson, reachable_fluid

__all__ = ["Smoke", "StepRecord", "PressureSolveError"]


class PressureSolveError(RuntimeError):
    """The pressure solve of a step did not converge (its Solution is attached as ``.solution``)."""

    def __init__(self, message: str, solution: Any) -> None:
        super().__init__(message)
        self.solution = solution


@dataclass
class StepRecord:
    """What one step did: the pressure Solution, the right-hand side norm ``||D||`` and seconds."""

    step: int
    solution: Any
    rhs_norm: float
    divergence_after: float
    seconds_solve: float
    seconds_step: float
    extra: dict[str, Any] = field(default_factory=dict)


class Smoke:
    """A smoke plume rising around obstacles; ``solver`` solves the pressure systems.

    Args:
        shape: cells per axis, 2 or 3 axes (last = up), each >= 4.
        fluid: boolean mask of non-solid cells (default: all fluid); pockets cut off from the open
            top are made solid (the pressure matrix would be singular).
        solver: an object with ``solve(A, b, x0=...)``; default CG at ``rtol``.
        rtol: tolerance of the default solver.
        dt, buoyancy, inflow: time step, buoyancy per unit density, source speed (cells / time).
        source: fraction of the box width/height of the source box (centred, at the bottom).
        warm_start: start each pressure solve from the previous pressure.
        allow_unconverged: record a failed pressure solve and go on instead of raising.
    """

    def __init__(
        self,
        shape: Sequence[int],
        fluid: np.ndarray | None = None,
        *,
        solver: Any = None,
        rtol: float = 1e-6,
        dt: float = 1.0,
        buoyancy: float = 0.1,
        inflow: float = 1.0,
        source: tuple[float, float] = (0.2, 0.08),
        warm_start: bool = True,
        allow_unconverged: bool = False,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) not in (2, 3) or min(self.shape) < 4:
            raise ValueError(f"shape must have 2 or 3 axes of >= 4 cells, got {tuple(shape)}")
        for name, value in (("dt", dt), ("buoyancy", buoyancy), ("inflow", inflow)):
            if not np.isfinite(value) or value < 0 or (name == "dt" and value == 0):
                raise ValueError(f"{name} must be finite and {'> 0' if name == 'dt' else '>= 0'}")
        if fluid is None:
            fluid = np.ones(self.shape, dtype=bool)
        fluid = np.asarray(fluid)
        if fluid.shape != self.shape or fluid.dtype != bool:
            raise ValueError(
                f"fluid must be a boolean mask of shape {self.shape}, got {fluid.dtype} {fluid.shape}"
            )
        self.fluid = reachable_fluid(fluid, "top")
        if not self.fluid.any():
            raise ValueError("no fluid cell is connected to the open top; remove some obstacles")
        self.dim = len(self.shape)
        self.dt, self.buoyancy, self.inflow = float(dt), float(buoyancy), float(inflow)
        if solver is None:
            from neuralops.solvers import CG

            solver = CG(rtol=rtol)
        self.solver = solver
        self.warm_start = warm_start
        self.allow_unconverged = allow_unconverged
        self.A: sp.csr_matrix = pressure_poisson(self.fluid, open_sides="top")
        self.index = np.flatnonzero(self.fluid.reshape(-1))
        self.velocity = [np.zeros(self._face_shape(d)) for d in range(self.dim)]
        self.density = np.zeros(self.shape)
        self.pressure = np.zeros(len(self.index))
        self.open_face = [self._open_faces(d) for d in range(self.dim)]
        self.source = self._source_box(source)
        self.steps = 0
        self.history: list[StepRecord] = []
        self.last_rhs = np.zeros(len(self.index))  # the latest pressure system's right-hand side

    # ------------------------------------------------------------------ geometry
    def _face_shape(self, d: int) -> tuple[int, ...]:
        return tuple(s + (k == d) for k, s in enumerate(self.shape))

    def _open_faces(self, d: int) -> np.ndarray:
        """Faces normal to axis ``d`` whose velocity is free: between two fluid cells, or between a
        fluid cell and the open top."""
        pad = [(0, 0)] * self.dim
        pad[d] = (1, 1)
        fl = np.pad(self.fluid, pad, constant_values=False)
        if d == self.dim - 1:  # the open top: the ghost layer above counts as fluid
            top = [slice(None)] * self.dim
            top[d] = slice(-1, None)
            fl[tuple(top)] = True
        lo = [slice(None)] * self.dim
        hi = [slice(None)] * self.dim
        lo[d], hi[d] = slice(None, -1), slice(1, None)
        return fl[tuple(lo)] & fl[tuple(hi)]

    def _source_box(self, frac: tuple[float, float]) -> tuple[slice, ...]:
        w, h = frac
        sl = []
        for s in self.shape[:-1]:
            half = max(1, int(round(w * s / 2)))
            sl.append(slice(s // 2 - half, s // 2 + half))
        sl.append(slice(0, max(1, int(round(h * self.shape[-1])))))
        return tuple(sl)

    # ------------------------------------------------------------------ fields
    def _sample(self, field_: np.ndarray, points: np.ndarray, d: int | None) -> np.ndarray:
        """Multilinear interpolation of a face (``d``) or centre (``None``) field at ``points``
        (dim, ...) in cell units (cell k spans [k, k+1])."""
        coords = [points[k] - (0.0 if k == d else 0.5) for k in range(self.dim)]
        return map_coordinates(field_, coords, order=1, mode="nearest")

    def _positions(self, d: int | None) -> np.ndarray:
        shape = self.shape if d is None else self._face_shape(d)
        axes = [np.arange(s) + (0.0 if k == d else 0.5) for k, s in enumerate(shape)]
        return np.stack(np.meshgrid(*axes, indexing="ij"))

    def _velocity_at(self, points: np.ndarray) -> np.ndarray:
        return np.stack([self._sample(self.velocity[k], points, k) for k in range(self.dim)])

    def _advect(self, field_: np.ndarray, d: int | None) -> np.ndarray:
        x = self._positions(d)
        mid = x - 0.5 * self.dt * self._velocity_at(x)  # second-order (midpoint) back-trace
        back = x - self.dt * self._velocity_at(mid)
        return self._sample(field_, back, d)

    def outflow(self) -> np.ndarray:
        """Net outflow of every cell (grid shape): the discrete divergence times the cell volume."""
        return sum(np.diff(u, axis=d) for d, u in enumerate(self.velocity))

    def max_divergence(self) -> float:
        """``||div u||_2`` over the fluid cells (cell units)."""
        return float(np.linalg.norm(self.outflow()[self.fluid]))

    # ------------------------------------------------------------------ one step
    def step(self) -> StepRecord:
        """Advance one time step; returns (and appends to ``history``) its :class:`StepRecord`."""
        t0 = time.perf_counter()
        up = self.dim - 1
        self.density[self.source] = 1.0
        # buoyancy on the vertical faces (the face between cells k-1 and k averages their density)
        rho = np.pad(self.density, [(0, 0)] * up + [(1, 1)], mode="edge")
        self.velocity[up] += self.dt * self.buoyancy * 0.5 * (rho[..., :-1] + rho[..., 1:])
        src = list(self.source)
        src[up] = slice(self.source[up].start, self.source[up].stop + 1)
        self.velocity[up][tuple(src)] = self.inflow
        # advection (all from the same old velocity)
        new = [self._advect(self.velocity[d], d) for d in range(self.dim)]
        self.density = self._advect(self.density, None) * self.fluid
        self.velocity = [u * self.open_face[d] for d, u in enumerate(new)]
        # projection
        b = -self.outflow()[self.fluid]
        self.last_rhs = b
        rhs_norm = float(np.linalg.norm(b))
        x0 = self.pressure if self.warm_start else None
        ts = time.perf_counter()
        sol = self.solver.solve(self.A, b, x0=x0)
        seconds_solve = time.perf_counter() - ts
        p = np.asarray(sol.x, dtype=np.float64).reshape(-1)
        if not np.isfinite(p).all():
            raise PressureSolveError(
                f"step {self.steps}: the pressure solve returned non-finite values ({sol!r})", sol
            )
        if not sol.converged and not self.allow_unconverged:
            raise PressureSolveError(
                f"step {self.steps}: the pressure solve did not converge ({sol!r}): "
                f"{sol.info.get('message', '')} (pass allow_unconverged=True to go on anyway)",
                sol,
            )
        self.pressure = p
        P = np.zeros(self.shape)
        P[self.fluid] = p
        for d in range(self.dim):
            pad = [(0, 0)] * self.dim
            pad[d] = (1, 1)
            Pp = np.pad(P, pad)  # ghost cells: 0 above the open top; solid faces are closed anyway
            self.velocity[d] -= np.diff(Pp, axis=d)  # p[k] - p[k-1] on the faces normal to d
            self.velocity[d] *= self.open_face[d]
        rec = StepRecord(
            step=self.steps,
            solution=sol,
            rhs_norm=rhs_norm,
            divergence_after=self.max_divergence(),
            seconds_solve=seconds_solve,
            seconds_step=time.perf_counter() - t0,
        )
        self.steps += 1
        self.history.append(rec)
        return rec

    def run(self, steps: int, callback: Any = None) -> list[StepRecord]:
        """``steps`` steps; ``callback(sim, record)`` after each (e.g. to save a frame)."""
        out = []
        for _ in range(int(steps)):
            rec = self.step()
            out.append(rec)
            if callback is not None:
                callback(self, rec)
        return out
