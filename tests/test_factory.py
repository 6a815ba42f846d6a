"""Solvers by name, and a preconditioner reused along a sequence of similar systems."""

import numpy as np
import pytest

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
