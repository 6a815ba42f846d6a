"""Run krypy's ``RecyclingGmres`` on a sequence of systems (the krypy column of ``skr.py``).

krypy 2.2.0 needs numpy < 2 and scipy < 1.12, so this script runs in its own pinned environment
(``make krypy-venv``: numpy 1.26.4, scipy 1.11.4, krypy 2.2.0) and imports nothing from neuralops.

    python _krypy_runner.py systems.npz results.json

``systems.npz`` holds, for system ``i`` in solve order, the CSR arrays ``data_i``, ``indices_i``,
``indptr_i``, the right-hand side ``b_i``, plus ``n``, ``count``, ``tol``, ``maxiter``, ``pc``
("none" or "ilu": scipy ``spilu``, drop_tol 1e-4, fill_factor 10, as a LEFT preconditioner built
per system as in the other columns), ``spd``. One ``RecyclingGmres`` instance carries its Ritz
vectors (RitzFactorySimple, 20 vectors, smallest magnitude) from system to system. Writes per-system seconds, iterations and
true relative residuals as JSON.
"""

import json
import sys
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def _solver(lu):
    """``X -> M X`` for real or complex blocks (krypy's Ritz vectors may be complex)."""

    def dot(X):
        X = np.asarray(X)
        if np.iscomplexobj(X):
            return lu.solve(np.ascontiguousarray(X.real)) + 1j * lu.solve(
                np.ascontiguousarray(X.imag)
            )
        return lu.solve(X)

    return dot


def main(src: str, dst: str) -> None:
    import krypy
    from krypy.recycling import RecyclingGmres
    from krypy.recycling.factories import RitzFactorySimple

    z = np.load(src)
    n, count = int(z["n"]), int(z["count"])
    tol, maxiter, pc, spd = float(z["tol"]), int(z["maxiter"]), str(z["pc"]), bool(z["spd"])
    recycler = RecyclingGmres()
    out = {"seconds": [], "iterations": [], "residual": [], "versions": {}}
    out["versions"] = {"krypy": krypy.__version__, "numpy": np.__version__}
    for i in range(count):
        A = sp.csr_matrix((z[f"data_{i}"], z[f"indices_{i}"], z[f"indptr_{i}"]), shape=(n, n))
        b = z[f"b_{i}"].reshape(-1, 1)
        t0 = time.perf_counter()
        kw = {}
        if pc == "ilu":
            lu = spla.spilu(sp.csc_matrix(A), drop_tol=1e-4, fill_factor=10.0)
            # krypy's own operator type: it applies Mr to blocks of vectors when deflating
            kw["Ml"] = krypy.utils.LinearOperator((n, n), np.float64, dot=_solver(lu))
        elif pc != "none":
            raise SystemExit(f"krypy runner: unsupported preconditioner {pc!r}")
        # left preconditioning (krypy diverged with a per-system right preconditioner and
        # recycling); M A is not self-adjoint even for SPD A
        system = krypy.linsys.LinearSystem(A, b, self_adjoint=spd and pc == "none", **kw)
        try:
            sol = recycler.solve(
                system,
                vector_factory=RitzFactorySimple(n_vectors=20, which="sm"),
                tol=tol,
                maxiter=maxiter,
            )
        except Exception as exc:  # krypy raises ConvergenceError at maxiter: record, go on
            sol = getattr(exc, "solver", None)
            if sol is None:
                raise
        dt = time.perf_counter() - t0
        x = np.asarray(sol.xk).ravel()
        res = float(np.linalg.norm(b.ravel() - A @ x) / np.linalg.norm(b))
        out["seconds"].append(dt)
        out["iterations"].append(len(sol.resnorms) - 1)
        out["residual"].append(res)
    with open(dst, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
