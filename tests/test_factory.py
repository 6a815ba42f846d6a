"""Solvers by name, and a preconditioner reused along a sequence of similar systems."""

import numpy as np
import pytest
import scipy.sparse as sp

from neuralops.solvers import GMRES, Preconditioned, Reused, gallery, make_solver


def test_reused_builds_the_preconditioner_once_per_refresh():
    A = gallery.poisson((12, 12)).tocsr()
    b = np.ones(A.shape[0])
    r = Reused(GMRES(m=20, rtol=1e-10), "ilu", refresh_every=2)
    for scale in (1.0, 1.01, 1.02):
        sol = r.solve(A * scale, b)
        assert sol.converged
        np.testing.assert_allclose(A * scale @ sol.x, b, rtol=0, atol=1e-8 * np.linalg.norm(b))
    assert r.builds == 2 and r.count == 3
    with pytest.raises(ValueError, match="refresh_every"):
        Reused(GMRES(), "ilu", refresh_every=0)


def test_make_solver_names():
    assert isinstance(make_solver("gmres", preconditioner="ilu"), Preconditioned)
    assert isinstance(make_solver("gmres", preconditioner="ilu", reuse_preconditioner=True), Reused)
    with pytest.raises(ValueError, match="unknown solver method 'gmress'"):
        make_solver("gmress")


def test_reused_rebuilds_when_the_iteration_count_grows():
    """A preconditioner built for one coefficient is reused while it stays good; when a solve
    needs more than ``rebuild_growth`` times the first solve's iterations, the next system gets
    a fresh build. The solutions are exact either way (float64, against a dense solve)."""
    from neuralops.solvers import CG

    A0 = gallery.poisson((16, 16)).tocsr()
    n = A0.shape[0]
    b = np.sin(np.arange(n) + 1.0)

    def shift(c):
        return (A0 + c * sp.eye(n)).tocsr()

    # close neighbours: the first build serves them all
    r = Reused(CG(rtol=1e-10), "ic0", rebuild_growth=1.5)
    for c in (0.0, 1e-3, 2e-3, 3e-3):
        sol = r.solve(shift(c), b)
        np.testing.assert_allclose(sol.x, np.linalg.solve(shift(c).toarray(), b), atol=1e-8)
    assert r.builds == 1
    # a jump in the coefficient (diagonal x 30): the stale IC(0) costs iterations -> one rebuild,
    # after which the iteration count is back to the fresh level
    r = Reused(CG(rtol=1e-10), "ic0", rebuild_growth=1.5)
    its = [r.solve(shift(c), b).iterations for c in (0.0, 100.0, 100.0)]
    fresh = CG(rtol=1e-10).solve(shift(100.0), b, M=Preconditioned(CG(), "ic0").build(shift(100.0)))
    assert its[1] > 1.5 * its[0] and r.builds == 2 and its[2] == fresh.iterations
    # without the rule the stale build stays
    r = Reused(CG(rtol=1e-10), "ic0")
    [r.solve(shift(c), b) for c in (0.0, 100.0, 100.0)]
    assert r.builds == 1
    with pytest.raises(ValueError, match="rebuild_growth"):
        Reused(CG(), "ic0", rebuild_growth=0.5)


def test_reused_rebuilds_after_a_failed_solve():
    from neuralops.solvers import CG

    A = gallery.poisson((16, 16)).tocsr()
    b = np.ones(A.shape[0])
    r = Reused(CG(rtol=1e-12, maxiter=3), "jacobi")
    assert not r.solve(A, b).converged  # recorded, not raised
    r.solve(A, b)
    assert r.builds == 2 and r.last_info["fresh_build"]


def test_reused_amg_is_updated_for_each_new_matrix():
    """Between builds an AMG hierarchy takes each new matrix (Galerkin update), so the solve is
    of the new system with the fresh iteration count; ``update=False`` keeps the stale cycle."""
    pytest.importorskip("pyamg")
    from neuralops.solvers import CG

    A = gallery.poisson((20, 20)).tocsr()
    n = A.shape[0]
    d = sp.diags(np.linspace(1.0, 3.0, n))
    A2 = (d @ A @ d).tocsr()  # a different SPD operator on the same graph
    b = np.ones(n)
    r = Reused(CG(rtol=1e-10), "amg")
    r.solve(A, b)
    sol = r.solve(A2, b)
    fresh = Preconditioned(CG(rtol=1e-10), "amg").solve(A2, b)
    assert r.builds == 1 and r.updates == 1 and r.last_info["updates"] == 1
    assert abs(sol.iterations - fresh.iterations) <= 1
    np.testing.assert_allclose(sol.x, np.linalg.solve(A2.toarray(), b), atol=1e-8)
    stale = Reused(CG(rtol=1e-10), "amg", update=False)
    stale.solve(A, b)
    assert stale.solve(A2, b).iterations > sol.iterations and stale.updates == 0
