"""``neuralops demo smoke``: a smoke plume around obstacles whose pressure solves use a chosen
solver, side by side with CG on the very same systems.

Every step's pressure system ``A p = b`` is solved by ``--solver`` (the simulation goes on with that
answer) and, for the table, again by plain CG from the same initial guess. Writes ``steps.csv`` (per
step: iterations and seconds of both, ``||b||``, the divergence left, whether the solve converged,
where DCDM handed over to CG), frames ``frame_NNNN.png`` of the smoke density (3-D: integrated over
the depth axis) and, with ``--gif``, ``smoke.gif``; prints a summary.

Solvers: ``cg``, ``ic0`` (incomplete-Cholesky PCG), ``amg`` (pyamg smoothed-aggregation PCG) and
``dcdm`` (a trained DCDM network: ``--model`` is a catalog name or a ``save_pretrained`` folder;
the default is the shipped network for the grid's dimension).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "run_demo", "DEFAULT_MODELS"]

log = logging.getLogger(__name__)

#: the shipped DCDM network used by ``--solver dcdm`` per number of grid axes
DEFAULT_MODELS = {2: "dcdm-smoke-2d", 3: "dcdm-smoke-3d"}
SOLVER_CHOICES = ("cg", "ic0", "amg", "dcdm")


def build_solver(name: str, fluid: np.ndarray, *, rtol: float, model: str | None = None) -> Any:
    """The pressure solver ``name`` for systems on the cells of ``fluid``."""
    from neuralops.solvers import CG, DCDM, make_solver

    if name == "cg":
        return CG(rtol=rtol, check_spd=False)
    if name in ("ic0", "amg"):
        return make_solver("pcg", preconditioner=name, rtol=rtol, check_spd=False)
    if name == "dcdm":
        import torch

        from neuralops.hub import from_pretrained

        net = from_pretrained(model or DEFAULT_MODELS[fluid.ndim])
        dim = getattr(net.config, "dim", None)
        if dim != fluid.ndim:
            raise ValueError(
                f"the DCDM network {model!r} is {dim}-D but the grid {fluid.shape} is "
                f"{fluid.ndim}-D; pass --model for a {fluid.ndim}-D network"
            )
        net = net.to(torch.float32).eval()
        return DCDM(net, mask=fluid, rtol=rtol, check_spd=False)
    raise ValueError(f"unknown solver {name!r}; choose one of {SOLVER_CHOICES}")


def _frame(sim: Any, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if sim.dim == 2:
        img, solid = sim.density, ~sim.fluid
    else:  # integrate over the depth axis (axis 1): a side view
        img = sim.density.sum(axis=1) / sim.shape[1]
        solid = (~sim.fluid).any(axis=1)
    fig, ax = plt.subplots(figsize=(4, 4 * img.shape[1] / img.shape[0]), dpi=80)
    ax.imshow(img.T, origin="lower", cmap="inferno", vmin=0.0, vmax=max(float(img.max()), 1e-6))
    overlay = np.zeros((*solid.T.shape, 4))
    overlay[solid.T] = (0.55, 0.6, 0.7, 1.0)  # obstacles in blue-grey
    ax.imshow(overlay, origin="lower")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_demo(
    *,
    solver: str = "cg",
    grid: tuple[int, ...] = (64, 96),
    steps: int = 60,
    rtol: float = 1e-6,
    seed: int = 0,
    model: str | None = None,
    out: str | Path = "demo_out/smoke",
    frames_every: int = 4,
    gif: bool = False,
    compare: bool = True,
) -> dict[str, Any]:
    """Run the demo; returns the summary (also the last line of the printout)."""
    from neuralops.pde.pressure import obstacle_scene
    from neuralops.pde.smoke import Smoke
    from neuralops.solvers import CG

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fluid = obstacle_scene(grid, seed)
    main_solver = build_solver(solver, fluid, rtol=rtol, model=model)
    cg = CG(rtol=rtol, check_spd=False)
    sim = Smoke(grid, fluid, solver=main_solver)
    try:
        import matplotlib  # noqa: F401

        plots = frames_every > 0
    except ImportError:
        log.warning("matplotlib is not installed: no frames (pip install 'neuralops-pde[plot]')")
        plots = False
    rows, frames = [], []
    t0 = time.perf_counter()
    for k in range(steps):
        x0 = sim.pressure.copy()
        rec = sim.step()
        row = {
            "step": k,
            f"{solver}_iterations": rec.solution.iterations,
            f"{solver}_seconds": rec.seconds_solve,
            "converged": rec.solution.converged,
            "rhs_norm": rec.rhs_norm,
            "divergence_after": rec.divergence_after,
        }
        if solver == "dcdm":
            row["cg_switch"] = rec.solution.info.get("cg_switch_iteration")
            row["fallbacks"] = rec.solution.info.get("fallbacks")
        if compare and solver != "cg":
            ref = cg.solve(sim.A, sim.last_rhs, x0=x0)
            row["cg_iterations"], row["cg_seconds"] = ref.iterations, ref.seconds
        rows.append(row)
        if plots and (k % frames_every == 0 or k == steps - 1):
            frames.append(
                _frame(
                    sim,
                    out / f"frame_{k:04d}.png",
                    f"step {k}: {solver} {rec.solution.iterations} it",
                )
            )
    wall = time.perf_counter() - t0
    with open(out / "steps.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if gif and frames:
        from PIL import Image

        images = [Image.open(f).convert("P", palette=Image.ADAPTIVE) for f in frames]
        images[0].save(
            out / "smoke.gif", save_all=True, append_images=images[1:], duration=120, loop=0
        )
    it = np.array([r[f"{solver}_iterations"] for r in rows], dtype=float)
    sec = np.array([r[f"{solver}_seconds"] for r in rows])
    summary = {
        "solver": solver,
        "grid": list(grid),
        "unknowns": int(sim.A.shape[0]),
        "steps": steps,
        "rtol": rtol,
        "mean_iterations": float(it.mean()),
        "mean_solve_seconds": float(sec.mean()),
        "max_divergence_ratio": float(
            max(r["divergence_after"] / max(r["rhs_norm"], 1e-300) for r in rows)
        ),
        "all_converged": all(r["converged"] for r in rows),
        "wall_seconds": wall,
        "frames": len(frames),
        "out": str(out),
    }
    if rows and "cg_iterations" in rows[0]:
        summary["cg_mean_iterations"] = float(np.mean([r["cg_iterations"] for r in rows]))
        summary["cg_mean_solve_seconds"] = float(np.mean([r["cg_seconds"] for r in rows]))
    if solver == "dcdm":
        summary["cg_switches"] = sum(r["cg_switch"] is not None for r in rows)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neuralops demo smoke", description=__doc__.splitlines()[0])
    p.add_argument("--solver", choices=SOLVER_CHOICES, default="cg")
    p.add_argument("--model", help="DCDM network: catalog name or folder (default: shipped)")
    p.add_argument("--grid", type=int, nargs="+", default=[64, 96], help="cells per axis, up last")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0, help="obstacle layout")
    p.add_argument("--out", default="demo_out/smoke")
    p.add_argument("--frames-every", type=int, default=4, help="0: no frames")
    p.add_argument("--gif", action="store_true", help="also write smoke.gif")
    p.add_argument("--no-compare", action="store_true", help="do not re-solve with CG")
    a = p.parse_args(argv)
    try:
        s = run_demo(
            solver=a.solver,
            grid=tuple(a.grid),
            steps=a.steps,
            rtol=a.rtol,
            seed=a.seed,
            model=a.model,
            out=a.out,
            frames_every=a.frames_every,
            gif=a.gif,
            compare=not a.no_compare,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"neuralops demo smoke: error: {exc}", file=sys.stderr)
        return 2
    line = (
        f"{s['solver']}: {s['mean_iterations']:.1f} iterations, "
        f"{1e3 * s['mean_solve_seconds']:.1f} ms per pressure solve"
    )
    if "cg_mean_iterations" in s and s["solver"] != "cg":
        line += (
            f"; CG on the same systems: {s['cg_mean_iterations']:.1f} iterations, "
            f"{1e3 * s['cg_mean_solve_seconds']:.1f} ms"
        )
    print(
        f"smoke {'x'.join(map(str, s['grid']))} ({s['unknowns']} pressure unknowns), {s['steps']} "
        f"steps at rtol {s['rtol']:g} in {s['wall_seconds']:.1f} s"
    )
    print(line)
    print(f"largest ||div u|| / ||b|| after projection: {s['max_divergence_ratio']:.2e}")
    if s.get("cg_switches"):
        print(f"DCDM handed over to CG in {s['cg_switches']} of {s['steps']} steps")
    print(f"per-step table: {s['out']}/steps.csv; frames: {s['frames']}")
    return 0 if s["all_converged"] else 1
