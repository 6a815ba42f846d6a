"""Poisson with obstacles, 2-D and 3-D: second order, SPD systems our solvers agree on, the file."""

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.data.validate import validate
from neuralops.pde.generate import generate, sample_rng
from neuralops.pde.poisson import PoissonFamily, manufactured_error
from neuralops.pde.recipe import load_recipe, parse_recipe
from neuralops.solvers import CG, make_preconditioner, pcg


@pytest.mark.parametrize("d, ns", [(2, (16, 32, 64)), (3, (8, 12, 16))])
@pytest.mark.parametrize("obstacle", [False, True])
def test_second_order_with_and_without_obstacle(d, ns, obstacle):
    errs = [manufactured_error(n, d, obstacle) for n in ns]
    orders = [math.log(a / b) / math.log(m / n) for a, b, n, m in zip(errs, errs[1:], ns, ns[1:])]
    assert all(p >= 1.9 for p in orders), (errs, orders)


RECIPE = """
[dataset]
name = "p"
pde = "poisson"
n_samples = 6
seed = 2
splits = {{ train = 4, test = 2 }}
grid = {{ size = {size}, store_stride = 2 }}
[pde]
{pde}
[solver]
method = "{method}"
preconditioner = "{pre}"
rtol = 1e-12
[run]
out = "{out}"
workers = 1
"""


def _recipe(tmp_path, size="[33, 33]", pde="", method="direct", pre="none", name="p.h5"):
    return parse_recipe(
        RECIPE.format(size=size, pde=pde, method=method, pre=pre, out=tmp_path / name), "p.toml"
    )


def test_systems_are_spd_and_krylov_matches_direct(tmp_path):
    rec = _recipe(tmp_path, size="[17, 17, 17]")
    fam = PoissonFamily.from_config(rec.dataset.grid, rec.params, rec.pde_options)
    params = fam.sample_params(sample_rng(2, 0))
    assert params["solid"].any()  # at least one obstacle
    prob = fam.assemble(params)
    A = prob.A
    assert abs(A - A.T).max() < 1e-12 * abs(A).max()
    x_ref = spla.spsolve(A.tocsc(), prob.b)
    sol = pcg(A, prob.b, M=make_preconditioner("ic0", A), rtol=1e-12)
    assert sol.converged
    np.testing.assert_allclose(sol.x, x_ref, rtol=1e-9, atol=1e-9 * np.abs(x_ref).max())
    assert CG(rtol=1e-12).solve(A, prob.b).converged  # SPD: plain CG is accepted


def test_generated_file(tmp_path):
    direct = generate(_recipe(tmp_path), progress=False)
    cg = generate(_recipe(tmp_path, method="cg", pre="ic0", name="cg.h5"), progress=False)
    assert direct.complete and direct.n_ok == 6 and cg.n_ok == 6
    ds = PDEDataset(direct.path, "all")
    s = ds[0]
    assert s["input"].shape == (4, 17, 17) and s["target"].shape == (1, 17, 17)
    names = [str(c) for c in ds.input_channels]
    mask, bc, u = s["input"][names.index("mask")], s["input"][names.index("bc")], s["target"][0]
    assert (u[mask == 0] == 0).all()  # zero in the obstacles
    np.testing.assert_array_equal(u[0, 1:-1], bc[0, 1:-1])  # boundary data on the edges
    ucg = PDEDataset(cg.path, "all")[0]["target"]
    np.testing.assert_allclose(ucg[0].numpy(), u.numpy(), atol=1e-5 * float(u.abs().max()))
    assert validate(direct.path, deep=True).ok and validate(cg.path, deep=True).ok


def test_shipped_tiny_3d_recipe(tmp_path):
    """3-D, Chebyshev forcing, log-normal kappa, IC(0)-CG: the file validates, every sample is
    finite and zero in its obstacles, and sample 0 equals a direct re-solve of the same draw."""
    path = Path(__file__).parents[1] / "pde_data" / "poisson_3d_tiny.toml"
    rep = generate(path, out=tmp_path / "t.h5", progress=False)
    assert rep.complete and rep.n_ok == 6
    assert validate(rep.path, deep=True).ok
    ds = PDEDataset(rep.path, "all")
    names = [str(c) for c in ds.input_channels]
    for i in range(len(ds)):
        s = ds[i]
        assert s["input"].shape == (4, 9, 9, 9) and s["target"].shape == (1, 9, 9, 9)
        assert bool(s["input"].isfinite().all()) and bool(s["target"].isfinite().all())
        mask = s["input"][names.index("mask")]
        assert 0 < float(mask.mean()) < 1 and (s["target"][0][mask == 0] == 0).all()
    # the same draw, re-solved directly at full resolution, matches the stored (strided) field
    rec = load_recipe(path)
    fam = PoissonFamily.from_config(rec.dataset.grid, rec.params, rec.pde_options)
    params = fam.sample_params(sample_rng(rec.dataset.seed, 0))
    prob = fam.assemble(params)
    x = spla.spsolve(prob.A.tocsc(), prob.b)
    u_ref = fam.fields_from_solution(params, x)[0]["u"]
    u = ds[0]["target"][0].numpy()
    np.testing.assert_allclose(u, u_ref, atol=1e-6 * np.abs(u_ref).max())


@pytest.mark.parametrize(
    "pde, size, match",
    [
        ("obstacles = [3, 1]", "[33, 33]", "pde.obstacles"),
        ('shapes = ["triangle"]', "[33, 33]", "pde.shapes"),
        ("", "[33]", "2 or 3 integers"),
    ],
)
def test_bad_recipes(tmp_path, pde, size, match):
    with pytest.raises(RecipeError, match=match):
        generate(_recipe(tmp_path, size=size, pde=pde), progress=False)
