"""``neuralops solve``: solve one linear system from a file or the gallery and summarise it.

    neuralops solve matrix.mtx --rhs b.npy --method pcg --precond ic0 --out x.npy
    neuralops solve --gallery poisson:64x64 --method gmres --precond ilu --restart 30

Exit code 0 if the solve converged, 1 if not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["main", "build_parser"]

METHODS = ("cg", "pcg", "gmres", "direct")
PRECONDS = ("none", "jacobi", "ic0", "ilu", "amg", "ssor")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neuralops solve",
        description="Solve A x = b from a Matrix Market (.mtx) or scipy .npz matrix, or a "
        "gallery problem, and print the Solution summary.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("matrix", nargs="?", type=Path, help="A as .mtx (Matrix Market) or .npz")
    src.add_argument(
        "--gallery", metavar="SPEC", help="e.g. poisson:64x64, convection_diffusion:128x128"
    )
    p.add_argument("--rhs", type=Path, help="b as .npy (default: all ones)")
    p.add_argument("--method", choices=METHODS, default="cg", help="solver (default: cg)")
    p.add_argument("--precond", choices=PRECONDS, default="none", help="preconditioner")
    p.add_argument("--rtol", type=float, default=1e-8, help="relative tolerance (default 1e-8)")
    p.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    p.add_argument("--maxiter", type=int, default=None, help="iteration cap (default 10 n)")
    p.add_argument("--restart", type=int, default=40, help="GMRES restart length m (default 40)")
    p.add_argument("--out", type=Path, help="write x to this .npy file")
    return p


def _load_matrix(path: Path) -> sp.csr_matrix:
    if not path.is_file():
        raise ValueError(f"matrix file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".mtx" or path.name.endswith(".mtx.gz"):
        import scipy.io

        A = scipy.io.mmread(str(path))
    elif suffix == ".npz":
        A = sp.load_npz(path)
    else:
        raise ValueError(
            f"matrix file {str(path)!r}: expected .mtx or .npz (scipy.sparse.save_npz)"
        )
    A = sp.csr_matrix(A)
    if np.iscomplexobj(A.data):
        raise ValueError(f"matrix file {str(path)!r} is complex; the solvers are real-only")
    return sp.csr_matrix(A, dtype=np.float64)


def _load_rhs(path: Path | None, n: int) -> np.ndarray:
    if path is None:
        return np.ones(n)
    if not path.is_file():
        raise ValueError(f"--rhs file {str(path)!r} does not exist")
    b = np.load(path, allow_pickle=False)
    if b.ndim == 2 and 1 in b.shape:
        b = b.ravel()
    if b.shape != (n,):
        raise ValueError(f"--rhs has shape {b.shape}, expected ({n},) to match A ({n}, {n})")
    return np.asarray(b, dtype=np.float64)


def main(argv: list[str] | None = None) -> int:
    from neuralops.solvers import gallery, make_solver

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help -> 0, bad usage -> 2
        return int(exc.code or 0)
    try:
        if args.gallery:
            A, source = gallery.from_spec(args.gallery), f"gallery {args.gallery}"
        else:
            A, source = _load_matrix(args.matrix), str(args.matrix)
        b = _load_rhs(args.rhs, A.shape[0])
        kw = {"m": args.restart} if args.method == "gmres" else {}
        if args.method != "direct":
            kw["atol"] = args.atol
        solver = make_solver(
            args.method, preconditioner=args.precond, rtol=args.rtol, maxiter=args.maxiter, **kw
        )
        t0 = time.perf_counter()
        sol = solver.solve(A, b)
        wall = time.perf_counter() - t0
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"neuralops solve: error: {exc}", file=sys.stderr)
        return 2
    bnorm = float(np.linalg.norm(b)) or 1.0
    true_rel = float(np.linalg.norm(b - A @ sol.x)) / bnorm
    info = sol.info
    lines = [
        f"system          {source}: n = {A.shape[0]}, nnz = {A.nnz}",
        f"method          {info.get('method', args.method)}"
        + (f" + {info['preconditioner']}" if "preconditioner" in info else ""),
        f"converged       {sol.converged}",
        f"iterations      {sol.iterations}",
        f"true residual   {true_rel:.3e}  (||b - A x|| / ||b||, rtol {args.rtol:g})",
        f"seconds         {sol.seconds:.4f}  (solve; wall incl. set-up {wall:.4f})",
        f"setup seconds   {float(info.get('setup_seconds') or 0.0):.4f}",
        f"stop reason     {sol.stop_reason}",
        f"message         {sol.message or '-'}",
    ]
    print("\n".join(lines))
    if args.out is not None:
        try:
            np.save(args.out, np.asarray(sol.x))
        except OSError as exc:
            print(f"neuralops solve: error: cannot write {str(args.out)!r}: {exc}", file=sys.stderr)
            return 2
        print(f"wrote           {args.out}")
    return 0 if sol.converged else 1


if __name__ == "__main__":
    sys.exit(main())
