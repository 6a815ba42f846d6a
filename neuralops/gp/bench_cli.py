"""``neuralops bench gp``: the GP-HM side-by-side benchmark (gp.md §7), table + JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from neuralops.gp.bench import METHODS, BenchSettings, run_case, table
    from neuralops.gp.cases import CASES

    hm_cases = [n for n, c in CASES.items() if c.method == "hm"]
    p = argparse.ArgumentParser(prog="neuralops bench", description=__doc__.split("\n")[0])
    p.add_argument("suite", choices=["gp"], help="benchmark suite (gp: GP-HM and its peers)")
    p.add_argument("--cases", default=",".join(hm_cases), help="comma-separated case names")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated rows")
    p.add_argument("--steps", type=int, default=None, help="GP/PINN steps (default: the case's)")
    p.add_argument("--pinn-steps", type=int, default=None)
    p.add_argument("--grid", type=int, default=None, help="points per axis (default: the case's)")
    p.add_argument("--quick", action="store_true", help="1e4 steps, at most 200 points per axis")
    p.add_argument(
        "--polish",
        action="store_true",
        help="finish GP rows with the polish solve (ours; grids up to 4096 points)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default=None, help="JSON results path (default: print only)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = BenchSettings(
        steps=args.steps,
        grid=args.grid,
        quick=args.quick,
        pinn_steps=args.pinn_steps,
        polish=args.polish,
    )
    methods = tuple(m for m in args.methods.split(",") if m)
    rows: list[dict] = []
    for name in [c for c in args.cases.split(",") if c]:
        if name not in CASES:
            print(f"unknown case {name!r}; choose from {', '.join(hm_cases)}", file=sys.stderr)
            return 2
        rows += run_case(name, methods, settings, log=lambda s: print(s, flush=True))
        if args.out:  # after every case, so a long run that is stopped keeps what it measured
            _write(args, argv, rows)
    print()
    print(table(rows))
    if args.out:
        print(f"\nresults: {args.out}")
    return 0


def _write(args, argv, rows) -> None:
    payload = {
        "command": "neuralops bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "threads": args.threads,
            "device": "cpu",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
        "settings": vars(args),
        "rows": rows,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
