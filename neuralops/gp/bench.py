"""Side-by-side GP-HM benchmark (gp.md §7): one case, every method, the same machine and run.

Rows per case: GP-HM with Student-t and Gaussian mixtures, GP with a single SE or Matern-5/2 kernel
(Q = 1, mu = 0), a PINN, Chebyshev collocation and second-order finite differences (with its
refinement order). Each row records the final error, the oracle-minimum error (the minimum over
checkpoints, selected with the exact solution; labelled as such), seconds, steps, and the time ratio
to GP-HM-GM. ``REFERENCE`` holds the authors' logged oracle-minimum errors (gp.md §7).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from neuralops.gp.cases import get_case
from neuralops.gp.hm import POLISH_MAX_POINTS, GPHMConfig, fit_hm

__all__ = ["METHODS", "REFERENCE", "BenchSettings", "run_case", "table"]

#: method rows, in table order
METHODS = ("hm-stm", "hm-gm", "gp-se", "gp-matern", "pinn", "chebyshev", "fd")

#: authors' logged oracle-min relative L2 (GP-HM repository result_log, commit 4f52bdf): stm, gm, se, matern
REFERENCE: dict[str, dict[str, float]] = {
    "p1-sin": {"hm-stm": 6.5e-7, "hm-gm": 4.0e-7, "gp-se": 2.7e-2, "gp-matern": 3.3e-2},
    "p1-sincos": {"hm-stm": 5.5e-6, "hm-gm": 1.5e-6, "gp-se": 1.0, "gp-matern": 5.2e-2},
    "p1-xsin": {"hm-stm": 9.0e-7, "hm-gm": 1.6e-6, "gp-se": 3.2e-1, "gp-matern": 1.8e-2},
    "p1-mix": {"hm-stm": 5.5e-4, "hm-gm": 3.8e-4, "gp-se": 1.7e-1, "gp-matern": 4.0e-1},
    "p1-x2sin": {"hm-stm": 4.2e-4, "hm-gm": 1.8e-3, "gp-se": 9.8e-1, "gp-matern": 6.3e-1},
    "ac1-sin": {"hm-stm": 4.9e-6, "hm-gm": 7.7e-7, "gp-se": 2.8e-2, "gp-matern": 3.3e-2},
    "ac1-sincos": {"hm-stm": 4.8e-6, "hm-gm": 4.2e-6, "gp-se": 1.1e-2, "gp-matern": 5.2e-2},
    "p2-sinsin": {"hm-stm": 6.9e-5, "hm-gm": 6.5e-5, "gp-se": 1.0, "gp-matern": 6.3e-1},
    "p2-sinadd": {"hm-stm": 1.0e-3, "hm-gm": 1.1e-3, "gp-se": 9.5e-1, "gp-matern": 3.6e-2},
    "ac2-mix": {"hm-stm": 5.7e-3, "hm-gm": 2.6e-3, "gp-se": 3.4e-1, "gp-matern": 3.0e-1},
    "adv": {"hm-stm": 1.4e-4, "hm-gm": 1.4e-3, "gp-se": 1.2e-2, "gp-matern": 2.3e-2},
}


@dataclass(frozen=True)
class BenchSettings:
    """steps: GP and PINN optimiser steps (None: the case's reference count); grid: points per axis
    (None: the case's); quick: 1e4 steps and at most 200 points per axis; pinn_steps: PINN steps
    (None: as ``steps``); polish: finish each GP row with the polish solve (our addition, gp.md
    §3) where the grid allows it, reporting the Adam final error and the polished one."""

    steps: int | None = None
    grid: int | None = None
    quick: bool = False
    pinn_steps: int | None = None
    polish: bool = False

    def resolve(self, case) -> tuple[int, int]:
        steps = self.steps if self.steps is not None else int(case.hm["steps"])
        grid = self.grid if self.grid is not None else int(case.hm["grid"])
        if self.quick:
            steps, grid = min(steps, 10_000), min(grid, 200)
        return steps, grid


def _gp_row(spec, case, kernel: str, steps: int, grid: int, polish: bool = False) -> dict:
    hm = dict(case.hm)
    extra = bool(hm.pop("extra_gp", False)) and kernel in ("stm", "gm")
    cp = hm.pop("change_point", 0.5)
    polish = polish and grid**spec.domain.dim <= POLISH_MAX_POINTS
    cfg = GPHMConfig(
        polish=polish,
        kernel=kernel,
        grid=grid,
        steps=steps,
        freq_scale=hm["freq_scale"],
        boundary_weight=hm["boundary_weight"],
        extra_gp=extra,
        change_point=cp,
    )
    sol = fit_hm(spec, cfg)
    out = {}
    if polish:
        pol = sol.info["polish"]
        out = {
            "polished_error": sol.info["final_error"],
            "polish_iterations": pol["iterations"],
            "polish_accepted": pol["accepted"],
            "polish_midpoint_residual": [
                pol["midpoint_residual_before"],
                pol["midpoint_residual_after"],
            ],
            "polished_curve": list(zip(sol.history["step"], sol.history.get("polished_error", []))),
        }
    errs, res = sol.history.get("error", []), sol.history["midpoint_residual"]
    adam = range(len(errs) - (1 if polish else 0))
    pick = [i for i in adam if res[i] is not None]
    if pick:  # the checkpoint a residual-based selection (keep="best_residual") would return
        out["residual_selected_error"] = errs[min(pick, key=lambda i: res[i])]
    # (step, test error, midpoint residual) at every checkpoint
    out["curve"] = [list(t) for t in zip(sol.history["step"], errs, res)]
    return {
        **out,
        "final_error": pol["error_before"] if polish else sol.info["final_error"],
        "oracle_min_error": sol.info["oracle_min_error"],
        "seconds": sol.seconds,
        "steps": sol.iterations,
        "stopped": sol.info["stopped"],
        "jitter": sol.info["jitter"],
        "top_mu": [k["mu"][0] for k in sol.kernel_params[0]],
    }


def run_case(
    name: str, methods=METHODS, settings: BenchSettings = BenchSettings(), log=print
) -> list[dict]:
    """All rows of one case; ``log`` gets one line per finished row."""
    from neuralops.gp import baselines

    case = get_case(name)
    spec = case.spec()
    steps, grid = settings.resolve(case)
    rows = []
    for method in methods:
        if method not in METHODS:
            raise ValueError(
                f"unknown benchmark method {method!r}; choose from {', '.join(METHODS)}"
            )
        t0 = time.perf_counter()
        row = {"case": name, "method": method, "grid": grid}
        try:
            if method.startswith(("hm-", "gp-")):
                kernel = method.split("-", 1)[1]
                row.update(_gp_row(spec, case, kernel, steps, grid, settings.polish))
            elif method == "pinn":
                res = baselines.pinn(
                    spec,
                    grid,
                    steps=settings.pinn_steps or steps,
                    boundary_weight=case.hm["boundary_weight"],
                )
                row.update(
                    final_error=res.rel_l2,
                    oracle_min_error=res.info.get("oracle_min_error"),
                    seconds=res.seconds,
                    steps=res.iterations,
                )
            elif method == "chebyshev":
                res = baselines.chebyshev_collocation(spec, grid)
                row.update(
                    final_error=res.rel_l2,
                    seconds=res.seconds,
                    steps=res.iterations,
                    converged=res.converged,
                )
            else:
                res = baselines.finite_differences(spec, grid)
                row.update(final_error=res.rel_l2, seconds=res.seconds, steps=res.iterations)
                sizes = [max(16, grid // 4), max(32, grid // 2), grid, 2 * grid]
                ref = baselines.fd_refinement(spec, sizes)
                row.update(fd_curve=[list(p) for p in ref.pairs], fd_order=ref.order)
        except (
            RuntimeError,
            ValueError,
            torch.linalg.LinAlgError,
        ) as exc:  # recorded, never hidden
            row.update(failed=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
        row["reference_oracle_min"] = REFERENCE.get(name, {}).get(method)
        rows.append(row)
        log(_line(row))
    base = next((r["seconds"] for r in rows if r["method"] == "hm-gm" and "failed" not in r), None)
    for r in rows:
        r["time_ratio_to_hm_gm"] = (r["seconds"] / base) if base else None
    return rows


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return (
            f"{v:.2e}"
            if (v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e3)) or math.isnan(v)
            else f"{v:.3g}"
        )
    return str(v)


def _line(r: dict) -> str:
    if "failed" in r:
        return f"{r['case']:<11} {r['method']:<10} FAILED {r['failed']}"
    return (
        f"{r['case']:<11} {r['method']:<10} final {_fmt(r.get('final_error')):>9}  "
        f"oracle-min {_fmt(r.get('oracle_min_error')):>9}  ref {_fmt(r.get('reference_oracle_min')):>8}  "
        + (f"polished {_fmt(r['polished_error']):>9}  " if "polished_error" in r else "")
        + (
            f"residual-selected {_fmt(r['residual_selected_error']):>9}  "
            if "residual_selected_error" in r
            else ""
        )
        + f"{r['seconds']:8.1f} s  steps {r.get('steps', '-')}"
    )


def table(rows: list[dict]) -> str:
    """A Markdown table of the rows."""
    polished = any("polished_error" in r for r in rows)
    head = (
        "| case | method | grid | steps | final rel. L2 | oracle-min | "
        + ("polished (no oracle) | " if polished else "")
        + "authors' oracle-min | s | time / HM-GM |"
    )
    lines = [head, "|" + "---|" * (10 if polished else 9)]
    for r in rows:
        if "failed" in r:
            dashes = " - |" * (6 if polished else 5)
            lines.append(f"| {r['case']} | {r['method']} | {r['grid']} | - | failed |{dashes}")
            continue
        ratio = r.get("time_ratio_to_hm_gm")
        pol = f"{_fmt(r.get('polished_error'))} | " if polished else ""
        lines.append(
            f"| {r['case']} | {r['method']} | {r['grid']} | {r.get('steps', '-')} | {_fmt(r.get('final_error'))} | "
            f"{_fmt(r.get('oracle_min_error'))} | {pol}{_fmt(r.get('reference_oracle_min'))} | {r['seconds']:.1f} | "
            f"{_fmt(ratio) if ratio is not None else '-'} |"
        )
    return "\n".join(lines)
