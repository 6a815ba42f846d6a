"""Run every benchmark in this folder (``make bench``); each writes benchmarks/results/*.json.

python benchmarks/run.py            # all
python benchmarks/run.py data_loader --quick
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "data_loader",
    "data_generation",
    "solvers_iteration",
    "relax",
    "skr",
    "trainer_overhead",
    "mgno_vs_fno",
    "hub_download",
    "dcdm",
]


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or BENCHMARKS
    flags = [a for a in argv if a.startswith("-")]
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; choose from {BENCHMARKS}", file=sys.stderr)
            return 2
        print(f"== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *flags])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
