"""Transient heat: theta scheme orders against the exact decay; a trajectory is a sequence of solves."""

import math

import h5py
import numpy as np
import pytest

from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.pde.generate import generate
from neuralops.pde.heat import decay_error
from neuralops.pde.recipe import parse_recipe


@pytest.mark.parametrize("scheme, order", [("backward_euler", 1), ("crank_nicolson", 2)])
def test_time_order(scheme, order):
    errs = [decay_error(32, dt, scheme)[1] for dt in (0.01, 0.005, 0.0025)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(abs(p - order) < 0.1 for p in orders), (errs, orders)


def test_space_order_two_against_the_exact_decay():
    errs = [decay_error(n, 1e-4, "crank_nicolson")[0] for n in (8, 16, 32)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(p >= 1.9 for p in orders), (errs, orders)


RECIPE = """
[dataset]
name = "heat"
pde = "heat"
n_samples = 4
seed = 1
splits = {{ train = 3, test = 1 }}
grid = {{ size = [17, 17], store_stride = 2 }}
[pde]
dt = 1e-3
t_end = 0.01
record_every = 5e-3
{pde}
[solver]
method = "{method}"
preconditioner = "{pre}"
rtol = 1e-12
[run]
out = "{out}"
workers = 1
"""


def _gen(tmp_path, name, method="direct", pre="none", pde=""):
    text = RECIPE.format(out=tmp_path / name, method=method, pre=pre, pde=pde)
    return generate(parse_recipe(text, "heat.toml"), progress=False)


def test_krylov_trajectories_equal_direct_ones(tmp_path):
    direct = _gen(tmp_path, "d.h5")
    cg = _gen(tmp_path, "c.h5", method="cg", pre="ic0")
    assert direct.n_ok == cg.n_ok == 4
    ud = PDEDataset(direct.path, "all", time="trajectory")[0]["target"].numpy()
    uc = PDEDataset(cg.path, "all", time="trajectory")[0]["target"].numpy()
    assert ud.shape == (3, 1, 9, 9)
    np.testing.assert_allclose(uc, ud, atol=1e-6 * np.abs(ud).max())
    with h5py.File(cg.path) as f:
        its = f["solver/iterations"][...]
        assert (its > 0).all() and (f["solver/residual"][...] < 1e-10).all()
    # the temperature decays (no source): the max norm never grows
    norms = np.abs(ud).reshape(3, -1).max(axis=1)
    assert norms[1] <= norms[0] and norms[2] <= norms[1]


def test_bad_scheme(tmp_path):
    with pytest.raises(RecipeError, match="pde.scheme"):
        _gen(tmp_path, "b.h5", pde='scheme = "rk4"')
