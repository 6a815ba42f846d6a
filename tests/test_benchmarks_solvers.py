"""The SKR benchmark on tiny sequences (so it does not rot between full runs): every column
solves every system to the tolerance, and the summary carries both ratios."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import skr  # noqa: E402


@pytest.mark.parametrize("family", ["darcy", "convdiff"])
def test_skr_bench_family_every_column_converges(family):
    pytest.importorskip("pyamg")
    rows = skr.bench_family(family, 12, 6, 1e-8, seed=0, pcs=["jacobi"])
    cols = [r for r in rows if r["column"] != "summary"]
    assert all(r["max_res"] <= 10 * 1e-8 and r["maxiter_hits"] == 0 for r in cols)
    names = {r["column"] for r in cols}
    strong = "amg" if family == "darcy" else "amg-rs"
    assert {"scipy-gmres40", "gcrodr-skr", "indep:direct", f"reused:{strong}-"} <= {
        n if not n.startswith("reused:" + strong) else f"reused:{strong}-" for n in names
    }
    (summary,) = [r for r in rows if r["column"] == "summary"]
    assert summary["user_ratio"] > 0 and summary["baseline_hits_jacobi"] == 0
    best = min(
        (r for r in cols if r["column"].startswith(("recycled:", "reused:"))),
        key=lambda r: r["ms_total"],
    )
    assert summary["best_sorted"] == best["column"]


def test_indefinite_helmholtz_family_is_symmetric_indefinite():
    systems, feats = skr.make_family("helmholtz-indef", 10, 3, seed=0)
    A = systems[0][0].toarray()
    eig = np.linalg.eigvalsh(A)
    assert np.allclose(A, A.T) and eig[0] < 0 < eig[-1] and feats.shape[0] == 3


def test_skr_form_darcy_and_the_cancellation_of_scaled_preconditioners():
    """The SKR code's Darcy matrix A = L diag(a): A_ii = 4 a_i h^-2, A_ij = -a_j h^-2. An
    incomplete LU without pivoting factors L diag(a) as (ILU of L) diag(a), so the right-
    preconditioned operator A M = L M_L does not depend on a: GMRES takes the same iterations
    on every system of the family, which is why recycling pays so well on it."""
    from neuralops.solvers import GMRES, make_preconditioner

    s = 16
    systems, _ = skr.make_family("darcy-skr", s, 2, seed=0)
    A = systems[0][0].toarray() / (s + 1) ** 2
    a = np.diag(A) / 4.0
    i, j = 0, 1  # neighbours in the natural ordering
    assert np.isclose(A[i, j], -a[j]) and np.isclose(A[j, i], -a[i])
    its = []
    for A_k, b in systems:
        M = make_preconditioner("ilu", A_k, **skr.PC_VARIANTS["ilu0"][1])
        its.append(GMRES(m=40, rtol=1e-10).solve(A_k, b, M=M).iterations)
    assert its[0] == its[1]
