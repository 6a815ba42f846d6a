r"""Transient heat conduction :math:`u_t = \nabla\cdot(\kappa\nabla u) + q`, ``u = 0`` on the boundary.

Vertex grid on the unit square, the 5-point finite-volume operator ``A`` of
:func:`neuralops.pde.darcy.darcy_operator` (``-div(kappa grad .)``), and the theta scheme in time:
``(I/dt + theta A) u^{n+1} = (I/dt - (1 - theta) A) u^n + q`` with ``theta = 1`` (backward Euler,
first order) or ``1/2`` (Crank–Nicolson, second order). Every step is one linear system with the
same matrix, solved by the recipe's ``[solver]`` (direct: factorised once per sample; Krylov:
warm-started from the previous step), so a trajectory is a *sequence* of linear systems; the
iterations of all steps are summed into the sample's solver record. Recipe id ``"heat"``.

Check (:func:`decay_error`): with constant ``kappa`` and ``u0 = sin(pi x) sin(pi y)`` the exact
solution is ``exp(-2 pi^2 kappa t) u0``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from neuralops.data.errors import RecipeError
from neuralops.data.schema import FieldSpec, SolverRecord
from neuralops.pde._timeseries import TimeOptions
from neuralops.pde.base import AbstractPDEFamily, GridConfig, SampleResult
from neuralops.pde.darcy import DarcyFamily, darcy_operator
from neuralops.pde.grf import Sampler, sampler_from_table
from neuralops.pde.recipe import check_keys

__all__ = ["HeatFamily", "theta_steps", "decay_error"]

SCHEMES = {"backward_euler": 1.0, "crank_nicolson": 0.5}


def theta_steps(
    A: sp.csr_matrix,
    u0: np.ndarray,
    q: np.ndarray,
    dt: float,
    theta: float,
    n_records: int,
    steps_per_record: int,
    solver: Any = None,
) -> tuple[np.ndarray, SolverRecord]:
    """Interior states at every record (``(n_records + 1, n)``) and the summed solver statistics.

    ``solver``: None (sparse LU factorised once) or an object with ``solve(A, b, x0=...)``
    returning a :class:`~neuralops.solvers.Solution`; a failed step raises ``ArithmeticError``.
    """
    n = A.shape[0]
    eye = sp.identity(n, format="csr")
    lhs = (eye / dt + theta * A).tocsr()
    rhs_op = (eye / dt - (1.0 - theta) * A).tocsr()
    lu = None
    if solver is None or type(solver).__name__ == "Direct":
        from neuralops.solvers.direct import Direct

        lu = Direct().factorize(lhs)
    out = np.empty((n_records + 1, n))
    out[0] = u = np.asarray(u0, dtype=np.float64)
    iterations, worst, converged = 0, 0.0, True
    for r in range(1, n_records + 1):
        for _ in range(steps_per_record):
            b = rhs_op @ u + q
            sol = lu.solve(b) if lu is not None else solver.solve(lhs, b, x0=u)
            x = np.asarray(sol.x)
            res = float(np.linalg.norm(b - lhs @ x) / max(np.linalg.norm(b), 1e-300))
            iterations += int(sol.iterations)
            worst = max(worst, res)
            if not sol.converged or not np.all(np.isfinite(x)):
                raise ArithmeticError(
                    f"time step solve failed at record {r}: {sol.message or 'non-finite'}"
                )
            u = x
        out[r] = u
    return out, SolverRecord(iterations=iterations, residual=worst, converged=converged)


@dataclass(frozen=True)
class HeatFamily(AbstractPDEFamily):
    """Recipe id ``"heat"``: ``[params.kappa]`` (positive field or scalar), ``[params.u0]``
    (a field; Dirichlet GRF by default), ``[pde]`` ``source``, ``scheme``, ``dt``, ``t_end``,
    ``record_every``. Fields ``kappa`` (input) and ``u`` (``(T, sx', sy')``, role input,target)."""

    name: ClassVar[str] = "heat"
    param_tables: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
        {
            "kappa": MappingProxyType(
                {
                    "sampler": "grf",
                    "alpha": 2.5,
                    "tau": 7.0,
                    "boundary": "neumann",
                    "transform": "exp",
                }
            ),
            "u0": MappingProxyType(
                {"sampler": "grf", "alpha": 2.5, "tau": 5.0, "boundary": "dirichlet"}
            ),
        }
    )
    options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"source": 0.0, "scheme": "crank_nicolson", "dt": 1e-3, "t_end": 0.1, "record_every": 5e-3}
    )

    darcy: DarcyFamily
    u0: Sampler
    source: float
    scheme: str
    time: TimeOptions

    @classmethod
    def from_config(
        cls, grid: GridConfig, params: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]
    ) -> HeatFamily:
        check_keys(params, list(cls.param_tables), "params")
        check_keys(options, list(cls.options), "pde")
        darcy = DarcyFamily.from_config(
            grid, {"a": params.get("kappa", cls.param_tables["kappa"])}, {}
        )
        u0 = sampler_from_table(params.get("u0", cls.param_tables["u0"]), 2, where="params.u0")
        if not u0.is_field:
            raise RecipeError("'params.u0' must be a field sampler (e.g. a Dirichlet GRF)")
        scheme = options.get("scheme", cls.options["scheme"])
        if scheme not in SCHEMES:
            raise RecipeError(f"'pde.scheme' must be one of {sorted(SCHEMES)}, got {scheme!r}")
        source = options.get("source", cls.options["source"])
        if (
            isinstance(source, bool)
            or not isinstance(source, int | float)
            or not math.isfinite(source)
        ):
            raise RecipeError(f"'pde.source' must be a finite number, got {source!r}")
        t = TimeOptions.from_options(options, cls.options)
        return cls(darcy, u0, float(source), scheme, t)

    @property
    def grid(self) -> GridConfig:
        return self.darcy.grid

    @property
    def spatial_dims(self) -> list[str]:
        return ["x", "y"]

    def field_specs(self) -> list[FieldSpec]:
        kappa, _ = self.darcy.field_specs()
        shape = tuple(self.grid.stored_size)
        return [
            FieldSpec("kappa", "input", shape, kappa.dims, description="conductivity"),
            FieldSpec(
                "u",
                "input,target",
                (self.time.n_snapshots, *shape),
                ("sample", "time", "x", "y"),
                description=f"temperature ({self.scheme}, dt = {self.time.dt:g})",
            ),
        ]

    def coords(self) -> dict[str, np.ndarray]:
        return {**self.darcy.coords(), "t": self.time.times}

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = self.darcy.sample_params(rng)
        u0 = np.asarray(self.u0.sample(rng, tuple(self.grid.size)), dtype=np.float64)
        u0[0, :] = u0[-1, :] = u0[:, 0] = u0[:, -1] = 0.0
        return {"kappa": out["a"], "u0": u0}

    def solve(self, params: Mapping[str, np.ndarray], solver: Any = None) -> SampleResult:
        """Integrate with the theta scheme; each step's system goes to ``solver``."""
        t0 = time.perf_counter()
        kappa, u0 = np.asarray(params["kappa"]), np.asarray(params["u0"])
        sx, sy = kappa.shape
        A = darcy_operator(kappa)
        q = np.full(A.shape[0], self.source)
        try:
            traj, rec = theta_steps(
                A,
                u0[1:-1, 1:-1].ravel(),
                q,
                self.time.dt,
                SCHEMES[self.scheme],
                self.time.n_snapshots - 1,
                self.time.steps_per_record,
                solver,
            )
        except ArithmeticError as exc:
            return SampleResult(
                {}, {}, SolverRecord(seconds=time.perf_counter() - t0), failed=True, error=str(exc)
            )
        full = np.zeros((traj.shape[0], sx, sy))
        full[:, 1:-1, 1:-1] = traj.reshape(-1, sx - 2, sy - 2)
        st = self.grid.store_stride
        rec = SolverRecord(rec.iterations, rec.residual, time.perf_counter() - t0, True)
        fields = {
            "kappa": np.ascontiguousarray(kappa[::st, ::st], np.float32),
            "u": np.ascontiguousarray(full[:, ::st, ::st], np.float32),
        }
        return SampleResult(fields, {}, rec)


def decay_error(n: int, dt: float, scheme: str, t_end: float = 0.05, kappa: float = 1.0) -> tuple:
    """``(error vs the exact continuous decay, error vs the exact decay of the discrete mode)`` at
    ``t_end`` for ``u0 = sin(pi x) sin(pi y)`` on ``(n+1)^2`` nodes; the second isolates the time
    error (the sine mode is an eigenvector of the 5-point operator)."""
    x = np.linspace(0, 1, n + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    u0 = (np.sin(np.pi * X) * np.sin(np.pi * Y))[1:-1, 1:-1].ravel()
    A = darcy_operator(np.full((n + 1, n + 1), kappa))
    steps = round(t_end / dt)
    traj, _ = theta_steps(A, u0, np.zeros_like(u0), dt, SCHEMES[scheme], 1, steps)
    lam_h = kappa * 2 * (4 * n**2 * math.sin(math.pi / (2 * n)) ** 2)
    exact = math.exp(-2 * math.pi**2 * kappa * t_end) * u0
    mode = math.exp(-lam_h * t_end) * u0
    return float(np.abs(traj[-1] - exact).max()), float(np.abs(traj[-1] - mode).max())
