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
