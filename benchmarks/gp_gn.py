"""Gauss-Newton kernel collocation (Chen, Hosseini, Owhadi, Stuart 2021) against finite differences.

    python benchmarks/gp_gn.py            # 3 random point sets per GN row, full FD refinement
    python benchmarks/gp_gn.py --quick    # 1 point set, fewer points, short refinement

Cases (gp.md §7, settings of ``yifanc96/NonLinPDEs-GPsolver``):

- **gn-ell**: ``-Δu + u³ = f`` on [0,1]², ``u = sin πx sin πy + 2 sin 4πx sin 4πy``, 900 random
  interior + 124 random boundary points (31 per edge, as ``src/sample_points.py``), Gaussian kernel
  ``exp(-|r|²/2σ²)``. Rows: σ 0.2 nugget 1e-13 and 4 GN steps (``main_NonLinElliptic2d.py``), σ 0.2
  nugget 1e-4 and σ 0.1588 nugget 1e-10 (the notebook's two reported runs), GN with a GP-HM
  spectral-mixture kernel (``make_kernel('gm', ...)`` at its reference initialisation), and
  Newton on the 5-point finite-difference scheme with a refinement curve. GN errors on the
  reference's 60×60 test grid.
- **gn-burg**: ``u_t + u u_x - 0.02 u_xx = 0``, x ∈ [-1, 1], t ∈ [0, 1], ``u(x, 0) = -sin πx``,
  ``u(±1, t) = 0``; exact solution by Cole-Hopf with Gauss-Hermite quadrature
  (``neuralops.gp.cases.burgers_cole_hopf``, checked against the FD march in the tests). 1000
  random interior + 200 boundary points (t = 0 and x = ±1, equal thirds). The reference kernel is
  ``exp(-(Δt/σ_t)² - (Δx/σ_x)²)``, i.e. SE length-scales ``σ/√2`` here. Rows: the script setting
  (σ_t, σ_x) = (0.3, 0.05), 8 GN steps, and the notebook setting (1/3, 1/20), 12 GN steps, whose
  output is the reference 4.0e-3 RMS (30 t × 100 x test grid); GN with GM kernels; Crank-Nicolson
  finite differences with Newton per step, refinement curve, errors at the FD nodes (t > 0).

Reference numbers are **absolute RMS** errors; rows report RMS and relative L2 on the same grid.
GN rows are medians over ``--seeds`` random point sets (min and max in the row). ``time_ratio`` is
seconds over those of the first GN row of the case. Results: benchmarks/results/gp_gn.json
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save, table  # noqa: E402

from neuralops.gp.cases import burgers_cole_hopf, get_case  # noqa: E402
from neuralops.gp.gauss_newton import GaussNewtonConfig, fit_gauss_newton  # noqa: E402
from neuralops.gp.kernels import ProductKernel, SE1d, make_kernel  # noqa: E402
from neuralops.pde.spec import BoxDomain, burgers  # noqa: E402

log = logging.getLogger("benchmarks.gp_gn")
F64 = torch.float64
SQRT2 = math.sqrt(2.0)
REF_RMS = {("gn-ell", 0.2, 1e-4): 3.4e-3, ("gn-ell", 0.1588, 1e-10): 1.65e-4, "gn-burg": 4.0e-3}


# ------------------------------------------------------------------------------------ problems
def burgers_spec(nu: float = 0.02, n_quad: int = 200):
    """The gallery's gn-burg problem with viscosity ``nu`` (axes (x, t), faces t = 0 and x = ±1)."""
    domain = BoxDomain((-1.0, 0.0), (1.0, 1.0), ("x", "t"))
    zero = lambda x: torch.zeros(x.shape[0], dtype=F64)  # noqa: E731

    def g(x):
        return torch.where(x[:, 1] == 0.0, -torch.sin(math.pi * x[:, 0]), zero(x))

    spec = burgers(
        nu, domain, source=zero, boundary=g, exact=burgers_cole_hopf(nu, n_quad), name="gn-burg"
    )
    return dataclasses.replace(spec, boundary_faces=((0, 0), (0, 1), (1, 0)))


def ell_points(n_int: int, n_bdry: int, seed: int):
    """Uniform random interior points and ``n_bdry / 4`` random points per edge of [0,1]²."""
    rng = np.random.default_rng(seed)
    xi = rng.uniform(0, 1, (n_int, 2))
    m = n_bdry // 4
    s = rng.uniform(0, 1, (4, m))
    xb = np.concatenate(
        [
            np.c_[s[0], np.zeros(m)],
            np.c_[np.ones(m), s[1]],
            np.c_[s[2], np.ones(m)],
            np.c_[np.zeros(m), s[3]],
        ]
    )
    return torch.from_numpy(xi), torch.from_numpy(xb)


def burg_points(n_int: int, n_bdry: int, seed: int):
    """Random (x, t) interior points; boundary thirds on t = 0, x = 1, x = -1."""
    rng = np.random.default_rng(seed)
    xi = np.c_[rng.uniform(-1, 1, n_int), rng.uniform(0, 1, n_int)]
    m = n_bdry // 3
    k = n_bdry - 2 * m
    xb = np.concatenate(
        [
            np.c_[rng.uniform(-1, 1, k), np.zeros(k)],
            np.c_[np.ones(m), rng.uniform(0, 1, m)],
            np.c_[-np.ones(m), rng.uniform(0, 1, m)],
        ]
    )
    return torch.from_numpy(xi), torch.from_numpy(xb)


def grid(xs, ts):
    """Tensor grid ``(len(xs) * len(ts), 2)`` with the second axis fastest."""
    a, b = np.meshgrid(xs, ts, indexing="ij")
    return torch.from_numpy(np.c_[a.ravel(), b.ravel()])


def errors(u, ref) -> dict:
    u, ref = np.asarray(u), np.asarray(ref)
    return {
        "rel_l2": float(np.linalg.norm(u - ref) / np.linalg.norm(ref)),
        "rms": float(np.sqrt(np.mean((u - ref) ** 2))),
        "max_err": float(np.abs(u - ref).max()),
    }


# ----------------------------------------------------------------------------- finite differences
def fd_elliptic(n: int, exact, tol: float = 1e-12):
    """Newton on the 5-point scheme for ``-Δu + u³ = f`` with ``n`` interior nodes per axis.

    Returns (interior nodes ``(n², 2)``, u, Newton steps)."""
    h = 1.0 / (n + 1)
    x = np.linspace(0, 1, n + 2)
    t1 = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]) / h**2
    eye = sp.identity(n)
    A = (sp.kron(t1, eye) + sp.kron(eye, t1)).tocsc()
    full = grid(x, x)
    ub = exact(full).numpy().reshape(n + 2, n + 2)
    bc = np.zeros((n, n))  # boundary values moved to the right-hand side
    bc[0, :] += ub[0, 1:-1]
    bc[-1, :] += ub[-1, 1:-1]
    bc[:, 0] += ub[1:-1, 0]
    bc[:, -1] += ub[1:-1, -1]
    pts = grid(x[1:-1], x[1:-1])
    spec = get_case("gn-ell").spec()
    rhs = spec.source(pts).numpy() + bc.ravel() / h**2
    u, its, step = np.zeros(n * n), 0, np.inf
    while step > tol * (1 + np.abs(u).max()) and its < 30:
        du = spla.spsolve((A + sp.diags(3 * u**2)).tocsc(), A @ u + u**3 - rhs)
        u, its, step = u - du, its + 1, np.abs(du).max()
    return pts, u, its


def fd_burgers(nx: int, nt: int, nu: float = 0.02, tol: float = 1e-12):
    """Crank-Nicolson in t, central differences in x (conservative ``(u²/2)_x``), Newton per step.

    ``nx`` intervals on [-1, 1], ``nt`` steps on [0, 1]; returns (x, t, U ``(nt + 1, nx + 1)``)."""
    x = np.linspace(-1, 1, nx + 1)
    t = np.linspace(0, 1, nt + 1)
    h, k = 2.0 / nx, 1.0 / nt
    U = np.zeros((nt + 1, nx + 1))
    U[0] = -np.sin(np.pi * x)
    U[0, [0, -1]] = 0.0

    def N(v):  # -(v²/2)_x + nu v_xx at interior nodes, v with boundary zeros
        return -(v[2:] ** 2 - v[:-2] ** 2) / (4 * h) + nu * (v[2:] - 2 * v[1:-1] + v[:-2]) / h**2

    ab = np.zeros((3, nx - 1))
    for n in range(nt):
        old = U[n]
        rhs_old = old[1:-1] + 0.5 * k * N(old)
        v = old.copy()
        for _ in range(30):
            r = v[1:-1] - 0.5 * k * N(v) - rhs_old
            ab[0, 1:] = -0.5 * k * (-v[2:-1] / (2 * h) + nu / h**2)  # d r_j / d v_{j+1}
            ab[1, :] = 1 + k * nu / h**2  # d r_j / d v_j
            ab[2, :-1] = -0.5 * k * (v[1:-2] / (2 * h) + nu / h**2)  # d r_j / d v_{j-1}
            dv = scipy.linalg.solve_banded((1, 1), ab, r)
            v[1:-1] -= dv
            if np.abs(dv).max() <= tol:
                break
        U[n + 1] = v
    return x, t, U


# ------------------------------------------------------------------------------------------- runs
def run_gn(spec, config, points, tests) -> dict:
    xi, xb = points
    sol = fit_gauss_newton(spec, config, interior=xi, boundary=xb)
    out = {
        "seconds": sol.seconds,
        "iterations": sol.iterations,
        "stopped": sol.info["stopped"],
        "jitter": sol.info["jitter"],
        "final_J": sol.info.get("final_J", float("nan")),
        "n_functionals": sol.info["n_functionals"],
        "n_unknowns": sol.info["n_unknowns"],
    }
    for name, pts in tests.items():
        e = errors(sol.predict(pts).numpy(), spec.exact(pts).numpy())
        out.update({f"{k}_{name}": v for k, v in e.items()})
    return out


def summarise(case: str, method: str, runs: list[dict], seeds, **extra) -> dict:
    row = {"case": case, "method": method, **extra, "seeds": list(seeds)}
    for key in runs[0]:
        vals = [r[key] for r in runs]
        if isinstance(vals[0], (int, float)) and not isinstance(vals[0], bool):
            row[key] = statistics.median(vals)
            if key.startswith(("rms", "rel_l2")) and len(vals) > 1:
                row[key + "_min"], row[key + "_max"] = min(vals), max(vals)
        else:
            row[key] = vals[0] if len(set(map(str, vals))) == 1 else "/".join(map(str, vals))
    return row


def gn_ell(args) -> list[dict]:
    spec = get_case("gn-ell").spec()
    n_int, n_b = (900, 124) if not args.quick else (400, 84)
    t60 = np.linspace(0, 1, 60)
    tests = {"test": grid(t60, t60)}
    settings = [  # (label, sigma, kernel, nugget, GN steps)
        ("GN SE (script)", 0.2, SE1d(0.2), 1e-13, 4),
        ("GN SE (notebook)", 0.2, SE1d(0.2), 1e-4, 20),
        ("GN SE (notebook)", 0.1588, SE1d(0.1588), 1e-10, 20),
        (
            "GN GP-HM GM Q=10 F=4",
            "GM",
            make_kernel("gm", n_components=10, freq_scale=4.0),
            1e-10,
            20,
        ),
    ]
    rows = []
    for label, sigma, kernel, nugget, steps in settings:
        runs = []
        for seed in args.seeds:
            cfg = GaussNewtonConfig(kernel=kernel, nugget=nugget, max_iter=steps, seed=seed)
            runs.append(run_gn(spec, cfg, ell_points(n_int, n_b, seed), tests))
        ref = REF_RMS.get(("gn-ell", sigma, nugget))
        rows.append(
            summarise(
                "gn-ell",
                label,
                runs,
                args.seeds,
                sigma=sigma,
                nugget=nugget,
                max_iter=steps,
                ref_rms=ref,
            )
        )
        log.info("%s", rows[-1])
    for n in (16, 30, 64, 128) + (() if args.quick else (256,)):
        t0 = time.perf_counter()
        pts, u, its = fd_elliptic(n, spec.exact)
        secs = time.perf_counter() - t0
        rows.append(
            {
                "case": "gn-ell",
                "method": f"FD Newton {n}x{n}",
                "n_unknowns": n * n,
                "iterations": its,
                "seconds": secs,
                **{f"{k}_nodes": v for k, v in errors(u, spec.exact(pts).numpy()).items()},
            }
        )
    return rows


def gn_burg(args) -> list[dict]:
    spec = burgers_spec(0.02)
    n_int, n_b = (1000, 200) if not args.quick else (500, 100)
    tests = {
        "test": grid(np.linspace(-1, 1, 100), np.linspace(0, 1, 30)),  # the notebook's 30 t x 100 x
        "test60": grid(np.linspace(-1, 1, 60), np.linspace(0, 1, 60)),  # the script's 60 x 60
    }
    se = lambda sx, st: ProductKernel([SE1d(sx / SQRT2), SE1d(st / SQRT2)])  # noqa: E731
    gm = ProductKernel(
        [
            make_kernel("gm", n_components=10, freq_scale=10.0),
            make_kernel("gm", n_components=5, freq_scale=2.0),
        ]
    )
    settings = [
        ("GN SE (script) s=(0.05, 0.3)", se(0.05, 0.3), 8),
        ("GN SE (notebook) s=(1/20, 1/3)", se(0.05, 1 / 3), 12),
        ("GN GP-HM GM Qx=10 Fx=10, Qt=5 Ft=2", gm, 12),
    ]
    if args.quick:
        settings = settings[:2]
    rows = []
    for label, kernel, steps in settings:
        runs = []
        for seed in args.seeds:
            cfg = GaussNewtonConfig(kernel=kernel, nugget=1e-5, max_iter=steps, seed=seed)
            runs.append(run_gn(spec, cfg, burg_points(n_int, n_b, seed), tests))
        ref = REF_RMS["gn-burg"] if "notebook" in label else None
        rows.append(
            summarise("gn-burg", label, runs, args.seeds, nugget=1e-5, max_iter=steps, ref_rms=ref)
        )
        log.info("%s", rows[-1])
    for n in (32, 64, 128, 256, 512) + (() if args.quick else (1024,)):
        t0 = time.perf_counter()
        x, t, U = fd_burgers(n, n)
        secs = time.perf_counter() - t0
        pts = grid(x, t[1:])
        ref = spec.exact(pts).numpy().reshape(len(x), -1).T
        rows.append(
            {
                "case": "gn-burg",
                "method": f"FD Crank-Nicolson {n}x{n}",
                "n_unknowns": (n - 1) * n,
                "seconds": secs,
                **{f"{k}_nodes": v for k, v in errors(U[1:], ref).items()},
            }
        )
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 seed, fewer points, short refinement")
    p.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="point-set seeds (default 0 1 2)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--cases", nargs="+", default=["gn-ell", "gn-burg"], choices=["gn-ell", "gn-burg"]
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for case in args.cases:
        part = gn_ell(args) if case == "gn-ell" else gn_burg(args)
        base = part[0]["seconds"]
        for r in part:
            r["time_ratio"] = r["seconds"] / base
        rows += part
    cols = [
        "case",
        "method",
        "n_unknowns",
        "iterations",
        "seconds",
        "time_ratio",
        "rms_test",
        "rel_l2_test",
        "rms_test_min",
        "rms_test_max",
        "ref_rms",
        "rms_nodes",
        "rel_l2_nodes",
    ]
    print(table(rows, cols))
    path = save(
        "gp_gn" + ("_quick" if args.quick else ""),
        rows,
        seeds=args.seeds,
        threads=torch.get_num_threads(),
        notes=(
            "GN rows: median over seeds of random point sets; *_test = the reference's test grid "
            "(gn-ell 60x60, gn-burg 30 t x 100 x), *_test60 = 60x60 for gn-burg; reference numbers "
            "(ref_rms) are absolute RMS from the notebooks of yifanc96/NonLinPDEs-GPsolver. FD rows: "
            "errors at the FD nodes (interior nodes for gn-ell, all x and t > 0 for gn-burg). "
            "time_ratio = seconds / seconds of the case's first GN row."
        ),
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
