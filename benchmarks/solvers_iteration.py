"""Per-iteration cost of our CG and GMRES(40) against scipy's on the same CSR matrices.

    python benchmarks/solvers_iteration.py            # Poisson 128², 256², convection-diffusion 128²
    python benchmarks/solvers_iteration.py --quick    # 64² and 128² only, fewer repeats

Both run a fixed number of iterations (tolerance 0 / 1e-30, so neither stops early) on the same
matrix and right-hand side; runs alternate between the two implementations and the minimum
over repeats is kept (robust on a shared machine). Our CG runs with ``check_spd=False`` (the
one-off symmetry test is reported separately as ``check_ms``). A second, converged run at
rtol 1e-8 reports iterations and seconds of both. Goal: ratio ours/scipy <= 1.2.
Results: benchmarks/results/solvers_iteration.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as spla

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save, table  # noqa: E402

from neuralops.solvers import CG, GMRES, gallery  # noqa: E402

M_RESTART = 40


def _min_alternating(fns: list, repeat: int) -> list[float]:
    """Minimum wall time of each function, calling them in turn ``repeat`` times."""
    best = [float("inf")] * len(fns)
    for f in fns:  # warm-up
        f()
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def _scipy_count(solve, **kw) -> int:
    count = [0]

    def cb(_):
        count[0] += 1

    solve(callback=cb, **kw)
    return count[0]


def bench_cg(name: str, A, b: np.ndarray, iters: int, repeat: int) -> dict:
    ours = CG(rtol=0.0, maxiter=iters, check_spd=False)
    t_ours, t_sp = _min_alternating(
        [lambda: ours.solve(A, b), lambda: spla.cg(A, b, rtol=1e-30, maxiter=iters)], repeat
    )
    t0 = time.perf_counter()
    CG(rtol=1e-8, maxiter=1).solve(A, b)
    check_ms = (time.perf_counter() - t0) * 1e3
    sol = CG(rtol=1e-8, check_spd=False).solve(A, b)
    t_conv_ours, t_conv_sp = _min_alternating(
        [lambda: CG(rtol=1e-8, check_spd=False).solve(A, b), lambda: spla.cg(A, b, rtol=1e-8)],
        max(1, repeat // 2),
    )
    its_sp = _scipy_count(lambda **kw: spla.cg(A, b, rtol=1e-8, **kw))
    return {
        "problem": name,
        "n": A.shape[0],
        "solver": "CG",
        "iters": iters,
        "ours_us_per_it": t_ours / iters * 1e6,
        "scipy_us_per_it": t_sp / iters * 1e6,
        "ratio": t_ours / t_sp,
        "check_ms": check_ms,
        "ours_its_1e-8": sol.iterations,
        "scipy_its_1e-8": its_sp,
        "ours_s_1e-8": t_conv_ours,
        "scipy_s_1e-8": t_conv_sp,
        "ours_true_res": sol.residual,
    }


def bench_gmres(name: str, A, b: np.ndarray, cycles: int, repeat: int) -> dict:
    iters = cycles * M_RESTART
    ours = GMRES(m=M_RESTART, rtol=0.0, maxiter=iters)
    t_ours, t_sp = _min_alternating(
        [
            lambda: ours.solve(A, b),
            lambda: spla.gmres(A, b, rtol=1e-30, restart=M_RESTART, maxiter=cycles),
        ],
        repeat,
    )
    conv = GMRES(m=M_RESTART, rtol=1e-8, maxiter=20_000)
    sol = conv.solve(A, b)
    t_conv_ours, t_conv_sp = _min_alternating(
        [
            lambda: conv.solve(A, b),
            lambda: spla.gmres(A, b, rtol=1e-8, restart=M_RESTART, maxiter=500),
        ],
        max(1, repeat // 3),
    )
    its_sp = _scipy_count(
        lambda **kw: spla.gmres(
            A, b, rtol=1e-8, restart=M_RESTART, maxiter=500, callback_type="pr_norm", **kw
        )
    )
    return {
        "problem": name,
        "n": A.shape[0],
        "solver": f"GMRES({M_RESTART})",
        "iters": iters,
        "ours_us_per_it": t_ours / iters * 1e6,
        "scipy_us_per_it": t_sp / iters * 1e6,
        "ratio": t_ours / t_sp,
        "ours_its_1e-8": sol.iterations,
        "scipy_its_1e-8": its_sp,
        "ours_s_1e-8": t_conv_ours,
        "scipy_s_1e-8": t_conv_sp,
        "ours_true_res": sol.residual,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small grids, fewer repeats")
    ap.add_argument("--repeat", type=int, default=None, help="timed repeats per case")
    args = ap.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)
    sizes = (64, 128) if args.quick else (128, 256)
    rows = []
    for s in sizes:
        A = gallery.poisson((s, s))
        b = np.random.default_rng(0).random(A.shape[0])
        rows.append(bench_cg(f"poisson {s}²", A, b, 300, repeat))
        rows.append(bench_gmres(f"poisson {s}²", A, b, 5, repeat))
    s = sizes[-1] if args.quick else 128
    A = gallery.convection_diffusion(s, eps=0.01)
    b = np.random.default_rng(0).random(A.shape[0])
    rows.append(bench_gmres(f"convection-diffusion {s}²", A, b, 5, repeat))
    path = save(
        "solvers_iteration",
        rows,
        goal="ours_us_per_it / scipy_us_per_it <= 1.2",
        note="fixed-iteration runs, min over alternating repeats; CG with check_spd=False",
    )
    cols = [
        "problem",
        "n",
        "solver",
        "ours_us_per_it",
        "scipy_us_per_it",
        "ratio",
        "ours_its_1e-8",
        "scipy_its_1e-8",
        "ours_s_1e-8",
        "scipy_s_1e-8",
    ]
    print(table(rows, cols))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
