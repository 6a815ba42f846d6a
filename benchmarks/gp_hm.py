"""GP-HM against standard-kernel GPs, a PINN, Chebyshev collocation and finite differences (gp.md §7).

The same as ``neuralops bench gp``; results default to benchmarks/results/gp_hm.json.

    python benchmarks/gp_hm.py --quick                      # smoke run: 1e4 steps, <= 200 points per axis
    python benchmarks/gp_hm.py --cases p1-sin,ac1-sin --steps 10000
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuralops.gp.bench_cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", str(Path(__file__).resolve().parent / "results" / "gp_hm.json")]
    sys.exit(main(["gp", *argv]))
