"""Generation throughput per PDE family: samples/s with 1 and 2 workers, and peak memory vs samples.

python benchmarks/data_generation.py                 # every family with a recipe listed below
python benchmarks/data_generation.py --quick         # fewer samples
python benchmarks/data_generation.py --recipes pde_data/darcy_smooth.toml,pde_data/poisson_2d.toml

Each run is a fresh ``neuralops generate`` process under ``/usr/bin/time -v`` on a copy of the
recipe with ``n_samples`` changed (splits scaled), writing into a temporary folder: the figure
includes process and worker start-up, as a user sees it. Peak RSS is the largest of the writer
and its workers; it is measured at N and 4N samples, and must not grow with N.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from _common import save, table

from neuralops.train.recipe import dump_toml

ROOT = Path(__file__).resolve().parents[1]

#: recipe -> samples for the throughput runs (chosen so a run takes seconds to a minute on 2 cores)
DEFAULT = {
    "pde_data/darcy_smooth.toml": 40,
    "pde_data/darcy_rough.toml": 8,
}
OPTIONAL = {  # every other family, at a CPU-sized recipe (samples chosen for tens of seconds)
    "pde_data/darcy_multiscale_small.toml": 8,
    "pde_data/poisson_2d.toml": 40,
    "pde_data/poisson_3d.toml": 16,
    "pde_data/helmholtz_skr.toml": 40,
    "pde_data/heat_transient.toml": 8,
    "pde_data/thermal_slot.toml": 24,
    "pde_data/ns2d_small.toml": 8,
    "pde_data/burgers1d_fno.toml": 4,
    "pde_data/allen_cahn_2d.toml": 2,
}


def _recipe_copy(path: Path, n: int, out: Path) -> Path:
    rec = tomllib.loads(path.read_text())
    ds = rec["dataset"]
    old = ds["n_samples"]
    ds["n_samples"] = n
    if "splits" in ds:  # keep the proportions; train gets the remainder
        parts = {k: max(0, v * n // old) for k, v in ds["splits"].items()}
        first = next(iter(parts))
        parts[first] += n - sum(parts.values())
        ds["splits"] = parts
    rec.setdefault("run", {})["out"] = str(out)
    dst = out.with_suffix(".toml")
    dst.write_text(dump_toml(rec))
    return dst


def _run(recipe: Path, workers: int) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "neuralops", "generate", str(recipe)]
    cmd += ["--workers", str(workers), "--no-progress"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return {"wall_s": wall, "peak_rss_mb": int(rss.group(1)) / 1024 if rss else float("nan")}


def bench(recipe: Path, n: int, tmp: Path) -> dict:
    name = recipe.stem
    rows = {}
    for w in (1, 2):
        copy = _recipe_copy(recipe, n, tmp / f"{name}_w{w}.h5")
        rows[w] = _run(copy, w)
    big = _recipe_copy(recipe, 4 * n, tmp / f"{name}_4n.h5")
    r4 = _run(big, 2)
    rec = tomllib.loads(recipe.read_text())
    return {
        "recipe": str(recipe.relative_to(ROOT)) if recipe.is_relative_to(ROOT) else str(recipe),
        "pde": rec["dataset"]["pde"],
        "grid": "x".join(str(s) for s in rec["dataset"].get("grid", {}).get("size", [])),
        "samples": n,
        "samples_per_s_1w": n / rows[1]["wall_s"],
        "samples_per_s_2w": n / rows[2]["wall_s"],
        "scaling_2w": rows[1]["wall_s"] / rows[2]["wall_s"],
        "peak_rss_mb_N": rows[2]["peak_rss_mb"],
        "peak_rss_mb_4N": r4["peak_rss_mb"],
        "samples_per_s_4N_2w": 4 * n / r4["wall_s"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a quarter of the samples")
    p.add_argument("--recipes", default=None, help="comma-separated recipe paths")
    args = p.parse_args(argv)
    if args.recipes:
        plan = {r: 16 for r in args.recipes.split(",")}
    else:
        plan = dict(DEFAULT)
        plan.update({r: n for r, n in OPTIONAL.items() if (ROOT / r).exists()})
    rows = []
    with tempfile.TemporaryDirectory(prefix="neuralops-genbench-") as tmp:
        for r, n in plan.items():
            n = max(2, n // 4) if args.quick else n
            row = bench((ROOT / r).resolve(), n, Path(tmp))
            print(row, flush=True)
            rows.append(row)
    cols = ["recipe", "pde", "grid", "samples", "samples_per_s_1w", "samples_per_s_2w"]
    cols += ["scaling_2w", "peak_rss_mb_N", "peak_rss_mb_4N"]
    print(table(rows, cols))
    path = save(
        "data_generation_quick" if args.quick else "data_generation",
        rows,
        caveats=[
            "wall time of a fresh `neuralops generate` process, start-up and assembly included",
            "peak RSS: /usr/bin/time -v maximum over the writer and its workers",
            "2-core shared machine; the scaling column is 1-worker time / 2-worker time",
        ],
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
