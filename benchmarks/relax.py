"""Learning the SOR relaxation parameter ω with a bandit ("Learning to Relax", ICLR 2024).

    python benchmarks/relax.py            # T = 5000 shifted Laplacians, heat equation 500 steps
    python benchmarks/relax.py --quick    # T = 500, heat equation 100 steps

Part 1, the reference setting (code of the paper, ``scripts/learning.m``/``contextual.m``):
``A_t = A + c_t I`` with A the 5-point Laplacian on a 10×10 grid (n = 100, stencil 4/−1, MATLAB
``delsq(numgrid('S', 12))``), ``c_t = −0.15 + 0.6·Beta(0.5, 1.5)`` (high variance) or
``Beta(2, 6)`` (low variance), ``b_t`` a radially truncated standard Gaussian (‖b‖ ≤ √n),
``x0 = 0``, stop at ‖b − A x‖ ≤ 1e-8 ‖b‖, at most 10 000 SOR iterations. Rows: each fixed ω of
the 20-arm grid on [1, 1.95], the best fixed ω in hindsight, the instance-optimal grid ω,
Young's ω*(A_t) per instance, Tsallis-INF (running-max and running-mean cost scale, the latter
as the reference code), and the binned contextual variant (6 bins of the shift c on [−0.15,
0.45]). Bandit rows are means over ``--seeds`` runs on the same instance sequence.

Part 2, a time-stepping sequence: heat equation ``u_t = κ(t) Δu + f`` on the unit square, zero
Dirichlet data, (nx − 1)² unknowns, backward Euler over one period t ∈ (0, 1] with
``κ(t) = max(0.1 sin 2πt, −10 sin 2πt)``, a forcing bump circling the centre and an initial
bump (as ``utils/Heat2D.m`` of the reference, which uses Crank–Nicolson). The trajectory is fixed
by a first CG run; every method then solves the same systems from the previous state (warm
start) to rtol 1e-8: plain CG, SSOR-PCG at every grid ω (best fixed, instance-optimal),
Tsallis-INF and binned Tsallis-INF (context κ) choosing ω, and pyamg smoothed-aggregation PCG
(set-up each step, included in its seconds). Seconds include per-system set-up.
Results: benchmarks/results/relax.json
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save, table  # noqa: E402

from neuralops.solvers import AMG, CG, gallery  # noqa: E402
from neuralops.solvers.relax import (  # noqa: E402
    BinnedTsallisINF,
    TsallisINF,
    default_arms,
    optimal_omega,
    sor,
    ssor_pcg,
    tune_sequence,
)

log = logging.getLogger("benchmarks.relax")
RTOL, MAXITER = 1e-8, 10_000
SHIFTS = {"high-variance": (0.5, 1.5), "low-variance": (2.0, 6.0)}


def truncated_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Standard Gaussian in R^n conditioned on ‖b‖ ≤ √n (rejection, as the reference)."""
    while True:
        b = rng.standard_normal(n)
        if b @ b <= n:
            return b


def _row(
    setting: str, method: str, its: np.ndarray, secs: float | None, omega=None, **extra
) -> dict:
    its = np.asarray(its, dtype=float)
    q = max(1, len(its) // 4)
    return {
        "setting": setting,
        "method": method,
        "omega": "" if omega is None else round(float(omega), 4),
        "total_iterations": int(its.sum()),
        "mean_iterations": float(its.mean()),
        "last_quarter_mean": float(its[-q:].mean()),
        **({} if secs is None else {"seconds": float(secs)}),
        **extra,
    }


def _bandit_rows(setting, name, runs: list[tuple[np.ndarray, float]], best_total) -> dict:
    its = np.mean([r[0] for r in runs], axis=0)
    row = _row(setting, name, its, float(np.mean([r[1] for r in runs])))
    row["seeds"] = len(runs)
    row["total_std"] = float(np.std([r[0].sum() for r in runs]))
    row["vs_best_fixed"] = row["total_iterations"] / best_total
    return row


def learning_to_relax(setting: str, T: int, seeds: int) -> list[dict]:
    a, b_ = SHIFTS[setting]
    arms = default_arms()
    rng = np.random.default_rng(2024)
    A0 = gallery.poisson((10, 10))
    n = A0.shape[0]
    shifts = -0.15 + 0.6 * rng.beta(a, b_, size=T)
    rhs = [truncated_normal(rng, n) for _ in range(T)]
    systems = [(sp.csr_matrix(A0 + c * sp.eye(n)), b) for c, b in zip(shifts, rhs)]
    grid = np.zeros((T, arms.size), dtype=np.int64)
    grid_s = np.zeros(arms.size)
    young = np.zeros(T, dtype=np.int64)
    t0 = time.perf_counter()
    for t, (A, b) in enumerate(systems):
        for j, w in enumerate(arms):
            s = time.perf_counter()
            grid[t, j] = sor(A, b, w, rtol=RTOL, maxiter=MAXITER).iterations
            grid_s[j] += time.perf_counter() - s
        young[t] = sor(A, b, optimal_omega(A), rtol=RTOL, maxiter=MAXITER).iterations
        if (t + 1) % max(1, T // 5) == 0:
            log.info("%s: %d / %d instances (%.0f s)", setting, t + 1, T, time.perf_counter() - t0)
    best = int(np.argmin(grid.sum(axis=0)))
    best_total = int(grid[:, best].sum())
    rows = [
        _row(
            setting,
            "fixed ω",
            grid[:, j],
            grid_s[j],
            w,
            vs_best_fixed=grid[:, j].sum() / best_total,
        )
        for j, w in enumerate(arms)
    ]
    rows.append(
        _row(
            setting,
            "best fixed ω (hindsight)",
            grid[:, best],
            grid_s[best],
            arms[best],
            vs_best_fixed=1.0,
        )
    )
    inst = grid.min(axis=1)
    rows.append(
        _row(setting, "instance-optimal (grid)", inst, None, vs_best_fixed=inst.sum() / best_total)
    )
    rows.append(_row(setting, "Young ω*(A_t)", young, None, vs_best_fixed=young.sum() / best_total))
    rows.append(
        _row(
            setting,
            "Gauss–Seidel (ω = 1)",
            grid[:, 0],
            grid_s[0],
            1.0,
            vs_best_fixed=grid[:, 0].sum() / best_total,
        )
    )
    tuners: dict[str, Callable[[int], object]] = {
        "Tsallis-INF (scale: running max)": lambda s: TsallisINF(arms, rng=s),
        "Tsallis-INF (scale: running mean)": lambda s: TsallisINF(arms, rng=s, scale="mean"),
        "binned Tsallis-INF (6 bins of c)": lambda s: BinnedTsallisINF(arms, 6, -0.15, 0.45, rng=s),
    }
    for name, make in tuners.items():
        runs = []
        for seed in range(seeds):
            res = tune_sequence(systems, make(seed), rtol=RTOL, maxiter=MAXITER, contexts=shifts)
            runs.append((res.iterations, res.total_seconds))
        rows.append(_bandit_rows(setting, name, runs, best_total))
    return rows


def _bump(x: np.ndarray, y: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    d2 = ((x - cx) ** 2 + (y - cy) ** 2) / r**2
    out = np.zeros_like(x)
    inside = d2 < 1
    out[inside] = np.exp(1.0 - 1.0 / (1.0 - d2[inside]))
    return out


class Heat:
    """Backward Euler for u_t = κ(t) Δu + f on (nx − 1)² interior points, h = 1/nx."""

    def __init__(self, nx: int, steps: int) -> None:
        self.nx, self.steps, self.dt = nx, steps, 1.0 / steps
        h = 1.0 / nx
        self.L = (gallery.poisson((nx - 1, nx - 1)) / h**2).tocsr()  # -Δ_h, SPD
        g = np.arange(1, nx) * h
        self.X, self.Y = (a.ravel() for a in np.meshgrid(g, g, indexing="ij"))
        self.u0 = _bump(self.X, self.Y, 0.5, 0.5, 0.25)
        self.I = sp.eye(self.L.shape[0], format="csr")
        self.kappas = np.array([self.kappa((k + 1) * self.dt) for k in range(steps)])

    @staticmethod
    def kappa(t: float) -> float:
        s = np.sin(2 * np.pi * t)
        return float(max(0.1 * s, -10.0 * s))

    def system(self, k: int, u: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        t = (k + 1) * self.dt
        f = 32.0 * _bump(
            self.X,
            self.Y,
            0.5 + np.cos(16 * np.pi * t) / 4,
            0.5 + np.sin(16 * np.pi * t) / 4,
            0.125,
        )
        return (self.I + (self.dt * self.kappas[k]) * self.L).tocsr(), u + self.dt * f

    def trajectory(self) -> Iterator[tuple[sp.csr_matrix, np.ndarray]]:
        """Generator for ``tune_sequence``: receives each new state via ``send``."""
        u = self.u0
        for k in range(self.steps):
            u = yield self.system(k, u)

    def replay(self, states: list[np.ndarray]) -> Iterator[tuple]:
        """The fixed sequence: system k from state k, warm-started at it."""
        for k, u in enumerate(states):
            A, b = self.system(k, u)
            yield A, b, u


def _cg(A, b, omega=None, *, rtol, maxiter, x0):
    return CG(rtol=rtol, maxiter=maxiter, check_spd=False).solve(A, b, x0=x0)


def _amg_pcg(A, b, omega=None, *, rtol, maxiter, x0):
    M = AMG(A, kind="sa")
    sol = CG(rtol=rtol, maxiter=maxiter, check_spd=False).solve(A, b, M=M, x0=x0)
    sol.info["setup_seconds"] = M.setup_seconds
    return sol


def heat(nx: int, steps: int, seeds: int) -> list[dict]:
    pde = Heat(nx, steps)
    setting = f"heat nx={nx} (n={(nx - 1) ** 2})"
    # the trajectory: plain CG, each step warm-started at the previous state
    cg_states: list[np.ndarray] = [pde.u0]

    def traj():
        gen = pde.trajectory()
        item = next(gen)
        try:
            while True:
                x = yield item[0], item[1], cg_states[-1]
                cg_states.append(x)
                item = gen.send(x)
        except StopIteration:
            return

    cg_res = tune_sequence(traj(), 1.0, method=_cg, rtol=RTOL, maxiter=MAXITER)
    states = cg_states[:-1]
    rows = [_row(setting, "CG (no preconditioner)", cg_res.iterations, cg_res.total_seconds)]
    arms = default_arms()
    ssor = partial(ssor_pcg, check_spd=False)
    grid = np.zeros((steps, arms.size), dtype=np.int64)
    grid_s = np.zeros(arms.size)
    for j, w in enumerate(arms):
        res = tune_sequence(pde.replay(states), float(w), method=ssor, rtol=RTOL, maxiter=MAXITER)
        grid[:, j], grid_s[j] = res.iterations, res.total_seconds
    best = int(np.argmin(grid.sum(axis=0)))
    best_total = int(grid[:, best].sum())
    for j in sorted({0, int(np.argmin(np.abs(arms - 1.5))), best}):
        label = "best fixed ω (hindsight)" if j == best else "fixed ω"
        rows.append(
            _row(
                setting,
                f"SSOR-PCG, {label}",
                grid[:, j],
                grid_s[j],
                arms[j],
                vs_best_fixed=grid[:, j].sum() / best_total,
            )
        )
    inst = grid.min(axis=1)
    rows.append(
        _row(
            setting,
            "SSOR-PCG, instance-optimal (grid)",
            inst,
            None,
            vs_best_fixed=inst.sum() / best_total,
        )
    )
    lo, hi = float(pde.kappas.min()), float(pde.kappas.max())
    tuners = {
        "SSOR-PCG + Tsallis-INF": lambda s: TsallisINF(arms, rng=s),
        "SSOR-PCG + binned Tsallis-INF (κ)": lambda s: BinnedTsallisINF(
            arms, 6, lo, hi + 1e-12, rng=s
        ),
    }
    for name, make in tuners.items():
        runs = []
        for seed in range(seeds):
            res = tune_sequence(
                pde.replay(states),
                make(seed),
                method=ssor,
                rtol=RTOL,
                maxiter=MAXITER,
                contexts=pde.kappas,
            )
            runs.append((res.iterations, res.total_seconds))
        rows.append(_bandit_rows(setting, name, runs, best_total))
    rows[0]["vs_best_fixed"] = rows[0]["total_iterations"] / best_total
    try:
        import pyamg  # noqa: F401
    except ImportError:
        rows.append(
            {"setting": setting, "method": "AMG-PCG (pyamg SA)", "note": "pyamg not installed"}
        )
    else:
        res = tune_sequence(pde.replay(states), 1.0, method=_amg_pcg, rtol=RTOL, maxiter=MAXITER)
        name = "AMG-PCG (pyamg SA, set-up per step)"
        ratio = res.total_iterations / best_total
        rows.append(_row(setting, name, res.iterations, res.total_seconds, vs_best_fixed=ratio))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T = 500 instances, 100 heat steps")
    ap.add_argument("--T", type=int, default=None, help="instances per shift distribution")
    ap.add_argument("--steps", type=int, default=None, help="heat-equation time steps")
    ap.add_argument("--seeds", type=int, default=3, help="bandit runs per sequence")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    T = args.T or (500 if args.quick else 5000)
    steps = args.steps or (100 if args.quick else 500)
    rows: list[dict] = []
    for setting in SHIFTS:
        rows += learning_to_relax(setting, T, args.seeds)
    heat_rows: list[dict] = []
    for nx in (50, 100):
        t0 = time.perf_counter()
        heat_rows += heat(nx, steps, args.seeds)
        log.info("heat nx=%d done (%.0f s)", nx, time.perf_counter() - t0)
    path = save(
        "relax",
        rows + heat_rows,
        T=T,
        heat_steps=steps,
        seeds=args.seeds,
        rtol=RTOL,
        maxiter=MAXITER,
        norm="true residual ||b - A x||_2 <= rtol ||b||_2 (SOR); CG recurrence, re-checked",
        arms=default_arms().tolist(),
    )
    cols = [
        "setting",
        "method",
        "omega",
        "total_iterations",
        "mean_iterations",
        "last_quarter_mean",
        "vs_best_fixed",
        "seconds",
    ]
    for setting in SHIFTS:
        sub = [r for r in rows if r["setting"] == setting]
        print(f"\n### {setting} shift, T = {T} (SOR iterations)\n")
        print(table([r for r in sub if r["method"] != "fixed ω"], cols))
        fixed = [r for r in sub if r["method"] == "fixed ω"]
        print(
            "\nfixed ω grid: "
            + ", ".join(f"{r['omega']:g}: {r['mean_iterations']:.0f}" for r in fixed)
        )
    for nx in (50, 100):
        sub = [r for r in heat_rows if r["setting"].startswith(f"heat nx={nx} ")]
        print(f"\n### {sub[0]['setting']}, {steps} backward-Euler steps (CG iterations)\n")
        print(table(sub, cols))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
