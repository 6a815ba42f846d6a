"""Helmholtz with a variable coefficient: second order, the SPD flag, Krylov vs direct, the file."""

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.data.validate import validate
from neuralops.pde.generate import generate
from neuralops.pde.helmholtz import HelmholtzFamily, helmholtz_operator, manufactured_error
from neuralops.pde.recipe import parse_recipe
from neuralops.solvers import CG, GMRES


def test_second_order():
    errs = [manufactured_error(n) for n in (16, 32, 64)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(p >= 1.9 for p in orders), (errs, orders)


def test_second_order_with_an_indefinite_variable_wavenumber():
    errs = [manufactured_error(n, 12.0, variable=True) for n in (32, 64, 128)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(p >= 1.9 for p in orders), (errs, orders)


HF = """
[dataset]
name = "hf"
pde = "helmholtz"
n_samples = 4
seed = 0
splits = {{ train = 3, test = 1 }}
grid = {{ size = [33, 33], store_stride = 1 }}
[pde]
omega = 250.0
[params.a]
sampler = "choice"
values = [1.0]
[params.c]
sampler = "grf"
alpha = 2.0
tau = 3.0
boundary = "neumann"
[solver]
method = "{method}"
preconditioner = "{pre}"
rtol = 1e-10
[run]
out = "{out}"
workers = 1
"""


def test_variable_wavenumber_files_are_indefinite_and_refuse_cg(tmp_path):
    with pytest.raises(RecipeError, match="indefinite"):
        generate(
            parse_recipe(HF.format(method="cg", pre="none", out=tmp_path / "c.h5"), "c"),
            progress=False,
        )
    d = generate(
        parse_recipe(HF.format(method="direct", pre="none", out=tmp_path / "d.h5"), "d"),
        progress=False,
    )
    g = generate(
        parse_recipe(HF.format(method="gmres", pre="ilu", out=tmp_path / "g.h5"), "g"),
        progress=False,
    )
    assert d.n_ok == g.n_ok == 4
    sd, sg = PDEDataset(d.path, "all")[0], PDEDataset(g.path, "all")[0]
    assert sd["input"].shape == (2, 33, 33)  # a and k(x)
    k = sd["input"][1].numpy()
    assert 250 / 21 <= k.min() and k.max() <= 250 / 19 and k.std() > 0
    np.testing.assert_allclose(
        sg["target"].numpy(), sd["target"].numpy(), atol=1e-6 * float(sd["target"].abs().max())
    )
    assert validate(d.path, deep=True).ok and validate(g.path, deep=True).ok


def test_spd_flag_follows_the_eigenvalue_bound():
    rng = np.random.default_rng(0)
    fam = HelmholtzFamily.from_config(
        parse_recipe(RECIPE.format(out="x.h5", k=""), "x").dataset.grid, {}, {}
    )
    a = np.exp(0.3 * rng.standard_normal((17, 17)))
    for k, expect in ((1.0, True), (12.0, False)):
        prob = fam.assemble({"a": a, "k": np.asarray(k)})
        lam = np.linalg.eigvalsh(prob.A.toarray()).min()
        assert prob.meta["spd"] is expect and bool(lam > 0) is expect
    prob = fam.assemble({"a": a, "k": np.asarray(1.0)})  # SPD: CG agrees with a direct solve
    sol = CG(rtol=1e-12).solve(prob.A, prob.b)
    ref = spla.spsolve(prob.A.tocsc(), prob.b)
    assert sol.converged and np.abs(sol.x - ref).max() < 1e-9 * np.abs(ref).max()
    prob = fam.assemble({"a": a, "k": np.asarray(12.0)})  # indefinite: GMRES still solves it
    sol = GMRES(m=60, rtol=1e-10).solve(prob.A, prob.b)
    ref = spla.spsolve(prob.A.tocsc(), prob.b)
    assert sol.converged and np.abs(sol.x - ref).max() < 1e-7 * np.abs(ref).max()


def test_operator_is_darcy_minus_shift():
    a = np.ones((9, 9))
    A = helmholtz_operator(a, 2.0)
    np.testing.assert_allclose(A.diagonal(), 4 * 64 - 4.0)


RECIPE = """
[dataset]
name = "h"
pde = "helmholtz"
n_samples = 6
seed = 0
splits = {{ train = 4, test = 2 }}
grid = {{ size = [17, 17], store_stride = 2 }}
{k}
[run]
out = "{out}"
workers = 1
"""


def test_generated_file_records_k(tmp_path):
    rep = generate(
        parse_recipe(RECIPE.format(out=tmp_path / "h.h5", k=""), "h.toml"), progress=False
    )
    assert rep.complete and rep.n_ok == 6
    s = PDEDataset(rep.path, "all")[0]
    assert s["input"].shape == (1, 9, 9) and 0 <= float(s["params"][0]) <= 1
    assert validate(rep.path, deep=True).ok


def test_shipped_tiny_recipe_gmres_matches_direct(tmp_path):
    """The tiny SKR recipe (ILU-GMRES) and the same recipe solved directly give one field."""
    path = Path(__file__).parents[1] / "pde_data" / "helmholtz_tiny.toml"
    g = generate(path, out=tmp_path / "g.h5", progress=False)
    text = path.read_text().replace('method = "gmres"', 'method = "direct"')
    d = generate(parse_recipe(text, "d.toml"), out=tmp_path / "d.h5", progress=False)
    assert g.n_ok == d.n_ok == 6 and validate(g.path, deep=True).ok
    dg, dd = PDEDataset(g.path, "all"), PDEDataset(d.path, "all")
    for i in range(len(dg)):
        ug, ud = dg[i]["target"].numpy(), dd[i]["target"].numpy()
        assert ug.shape == (1, 33, 33) and np.isfinite(ug).all() and ud.max() > 0
        np.testing.assert_allclose(ug, ud, atol=1e-6 * np.abs(ud).max())
        assert float(dg[i]["params"][0]) == float(dd[i]["params"][0])  # same k draw


def test_field_wavenumber_is_refused(tmp_path):
    k = '[params.k]\nsampler = "grf"\nalpha = 2.0\ntau = 3.0'
    with pytest.raises(RecipeError, match="params.k"):
        generate(parse_recipe(RECIPE.format(out=tmp_path / "b.h5", k=k), "b.toml"), progress=False)
