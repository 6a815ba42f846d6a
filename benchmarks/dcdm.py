"""DCDM against CG, IC(0)-PCG and pyamg AMG-PCG on a smoke simulation's pressure systems.

python benchmarks/dcdm.py                      # 32^3 and 64^3, rtol 1e-6, 2 systems per grid
python benchmarks/dcdm.py --quick              # 16^3 and 32^3
python benchmarks/dcdm.py --grids 32 64 128 --rtols 1e-4 1e-8 --model runs/dcdm_smoke_3d/final

The systems are those of :class:`neuralops.pde.smoke.Smoke` (a plume rising around random
box/ball obstacles, open top, pressure Poisson matrix on the fluid cells) at the steps ``--steps``
of a run on each grid (the run itself projects with AMG-PCG at 1e-8). Every method solves every
system from a zero initial guess to ``||b - A x|| <= rtol ||b||`` (checked with the true residual);
reported per grid, method and tolerance: mean iterations, mean solve seconds, set-up seconds
(IC(0) factorisation, AMG hierarchy, network load), and whether all converged. The DCDM network
(default: the shipped ``dcdm-smoke-3d``, trained at 16^3) is applied unchanged to every grid; the
growth of its iteration count from the smallest to the largest grid is the paper's claim under test
(iterations independent of the grid size; pass criterion here: at most 1.5x while CG's grows ~2x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from _common import save, table

from neuralops.pde.pressure import obstacle_scene
from neuralops.pde.smoke import Smoke
from neuralops.solvers import CG, DCDM, make_preconditioner


def systems(n: int, steps: list[int], seed: int) -> tuple[object, np.ndarray, list[np.ndarray]]:
    """The pressure matrix and right-hand sides at ``steps`` of a smoke run on an n^3 grid."""
    fluid = obstacle_scene((n, n, n), seed)
    pcg = CG(rtol=1e-8, check_spd=False)
    M = make_preconditioner("amg", Smoke((n, n, n), fluid).A)

    class _AMG:
        def solve(self, A, b, x0=None):
            return pcg.solve(A, b, M=M, x0=x0)

    sim = Smoke((n, n, n), fluid, solver=_AMG())
    out = []
    for k in range(max(steps) + 1):
        sim.step()
        if k in steps:
            out.append(sim.last_rhs.copy())
    return sim.A, sim.fluid, out


def solve_all(name, A, fluid, bs, rtol, net):
    setup = 0.0
    t0 = time.perf_counter()
    if name == "CG":
        solver, M = CG(rtol=rtol, check_spd=False), None
    elif name.startswith("PCG"):
        kind = {
            "PCG IC(0)": ("ic0", {}),
            "PCG AMG-SA": ("amg", {}),
            "PCG AMG-RS": ("amg", {"kind": "rs"}),
        }[name]
        M = make_preconditioner(kind[0], A, **kind[1])
        solver = CG(rtol=rtol, check_spd=False)
    else:
        M, solver = None, DCDM(net, mask=fluid, rtol=rtol, check_spd=False, maxiter=2000)
    setup = time.perf_counter() - t0
    its, secs, ok, worst, switches = [], [], True, 0.0, 0
    for b in bs:
        sol = solver.solve(A, b, M=M) if M is not None else solver.solve(A, b)
        rel = float(np.linalg.norm(b - A @ np.asarray(sol.x, dtype=np.float64)) / np.linalg.norm(b))
        its.append(sol.iterations)
        secs.append(sol.seconds)
        ok &= bool(sol.converged) and rel <= rtol * 1.0001
        worst = max(worst, rel)
        switches += sol.info.get("cg_switch_iteration") is not None
    row = {
        "method": name,
        "rtol": rtol,
        "iterations": statistics.mean(its),
        "solve_s": statistics.mean(secs),
        "setup_s": setup,
        "converged": ok,
        "max_true_rel_residual": worst,
    }
    if name == "DCDM":
        row["cg_switches"] = switches
    return row


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--grids", type=int, nargs="+")
    p.add_argument("--rtols", type=float, nargs="+", default=[1e-6])
    p.add_argument("--steps", type=int, nargs="+", default=[6, 12])
    p.add_argument("--model", default="dcdm-smoke-3d", help="catalog name or folder of the net")
    p.add_argument("--seed", type=int, default=3, help="obstacle layout (not the training scene)")
    p.add_argument("--name", help="result file name (default dcdm or dcdm_quick)")
    a = p.parse_args(argv)
    grids = a.grids or ([16, 32] if a.quick else [32, 64])
    from neuralops.hub import from_pretrained

    t0 = time.perf_counter()
    net = from_pretrained(a.model).to(torch.float32).eval()
    load_s = time.perf_counter() - t0
    rows = []
    for n in grids:
        A, fluid, bs = systems(n, a.steps, a.seed)
        for rtol in a.rtols:
            for name in ("CG", "PCG IC(0)", "PCG AMG-SA", "PCG AMG-RS", "DCDM"):
                row = solve_all(name, A, fluid, bs, rtol, net)
                if name == "DCDM":
                    row["setup_s"] += load_s
                rows.append({"grid": f"{n}^3", "unknowns": int(A.shape[0]), **row})
                print(table([rows[-1]], list(rows[-1])), flush=True)
    cols = ["grid", "unknowns", "method", "rtol", "iterations", "solve_s", "setup_s", "converged"]
    print(table(rows, cols + ["cg_switches"]))
    growth = {}
    for m in ("CG", "DCDM"):
        for rtol in a.rtols:
            its = [r["iterations"] for r in rows if r["method"] == m and r["rtol"] == rtol]
            growth[f"{m} rtol {rtol:g}"] = its[-1] / its[0]
    print("iteration growth from the smallest to the largest grid:", growth)
    name = a.name or ("dcdm_quick" if a.quick else "dcdm")
    path = save(
        name,
        rows,
        model=a.model,
        growth=growth,
        systems_per_grid=len(a.steps),
        goals={
            "iterations": "DCDM <= CG / 5",
            "growth": "DCDM iterations grow <= 1.5x from 32^3 to 64^3 (CG ~2x)",
            "time": "DCDM faster than AMG-PCG at 128^3 on a GPU",
        },
        paper=(
            "Kaneda et al. (ICML 2023) report iteration counts that do not grow with the grid "
            "(abstract); their code's test default is rtol 1e-4 with a 100-iteration cap; per-grid "
            "tables are not in the paper"
        ),
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
