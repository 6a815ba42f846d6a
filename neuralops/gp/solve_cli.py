"""``neuralops solve --gp [METHOD] --case NAME``: run one GP benchmark case and plot it.

Writes ``<out>/<case>-<method>.png`` (solution, prediction, error), ``<out>/<case>-<method>.json``
(errors, seconds, stop reason) and the fitted solution folder (safetensors + JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

__all__ = ["main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    from neuralops.gp.cases import CASES

    p = argparse.ArgumentParser(
        prog="neuralops solve --gp",
        description="Solve a GP benchmark case (gp.md section 7) with GP-HM or Gauss-Newton.",
    )
    p.add_argument(
        "--gp",
        nargs="?",
        const="",
        default="",
        metavar="METHOD_OR_CASE",
        help="hm or gn (or a case name); default: the case's own method",
    )
    p.add_argument("--case", default=None, help=f"one of: {', '.join(CASES)}")
    p.add_argument("--kernel", default=None, help="GP-HM kernel: stm, gm, se, matern")
    p.add_argument("--steps", type=int, default=None, help="GP-HM Adam steps (default: the case's)")
    p.add_argument(
        "--grid", type=int, default=None, help="GP-HM points per axis (default: the case's)"
    )
    p.add_argument("--quick", action="store_true", help="1e4 steps and at most 200 points per axis")
    p.add_argument("--out", default="gp_out", help="output folder (default gp_out)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--no-plot", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from neuralops.gp.cases import CASES, get_case
    from neuralops.gp.solver import METHODS, GPSolver

    args = _parser().parse_args(argv)
    method = args.gp or None
    case_name = args.case
    if method and method not in METHODS:
        if method in CASES and case_name is None:
            case_name, method = method, None
        else:
            print(
                f"--gp: expected one of {', '.join(METHODS)} or a case name, got {method!r}",
                file=sys.stderr,
            )
            return 2
    if case_name is None:
        print(f"--case: name a case, one of {', '.join(CASES)}", file=sys.stderr)
        return 2
    try:
        case = get_case(case_name)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    method = method or case.method
    if args.threads:
        torch.set_num_threads(args.threads)
    options: dict = {}
    if method == "hm":
        if args.kernel:
            options["kernel"] = args.kernel
        steps = args.steps if args.steps is not None else case.hm.get("steps", 10_000)
        grid = args.grid if args.grid is not None else case.hm.get("grid", 200)
        if args.quick:
            steps, grid = min(steps, 10_000), min(grid, 200)
        options.update(steps=steps, grid=grid)
    sol = GPSolver(method, **options).fit(case.name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{case.name}-{method}"
    sol.save(out / stem)
    summary = {
        "case": case.name,
        "method": method,
        "converged": sol.converged,
        "iterations": sol.iterations,
        "seconds": round(sol.seconds, 3),
        "final_error": sol.info.get("final_error"),
        "oracle_min_error": sol.info.get("oracle_min_error"),
        "stopped": sol.info.get("stopped"),
        "jitter": sol.info.get("jitter"),
    }
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(sol)
    for k, v in summary.items():
        print(f"  {k:<17} {v}")
    if not args.no_plot:
        try:
            path = plot_solution(sol, case.spec(), out / f"{stem}.png")
            print(f"  plot              {path}")
        except ImportError:
            print(
                "  plot              skipped: matplotlib is missing (pip install 'neuralops-pde[plot]')"
            )
    return 0


def plot_solution(sol, spec, path: Path, n: int = 300) -> Path:
    """Exact solution, prediction and pointwise error on an ``n``-per-axis grid (1-D: lines; 2-D: images)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralops.pde.spec import tensor_points

    axes = spec.domain.axes(n)
    pts = tensor_points(axes)
    pred = sol.predict(pts)
    exact = spec.exact(pts) if spec.exact is not None else None
    if spec.domain.dim == 1:
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
        x = axes[0].numpy()
        if exact is not None:
            ax[0].plot(x, exact.numpy(), "k-", lw=1, label="exact")
            ax[1].semilogy(x, (pred - exact).abs().numpy() + 1e-300, "r-", lw=1)
        ax[0].plot(x, pred.numpy(), "--", lw=1, label=sol.method)
        ax[0].legend()
        ax[0].set_title(spec.name)
        ax[1].set_title("|error|")
    else:
        shape = (n, n)
        panels = [("prediction", pred)]
        if exact is not None:
            panels = [("exact", exact), ("prediction", pred), ("|error|", (pred - exact).abs())]
        fig, ax = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
        ext = (
            spec.domain.lower[1],
            spec.domain.upper[1],
            spec.domain.lower[0],
            spec.domain.upper[0],
        )
        for a, (title, val) in zip(ax[0], panels):
            im = a.imshow(val.reshape(shape).numpy(), origin="lower", extent=ext, aspect="auto")
            a.set_title(title)
            a.set_xlabel(spec.domain.names[1])
            a.set_ylabel(spec.domain.names[0])
            fig.colorbar(im, ax=a)
    err = sol.info.get("final_error")
    fig.suptitle(f"{spec.name} / {sol.method}: rel. L2 {err:.2e}" if err is not None else spec.name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
