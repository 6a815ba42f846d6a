"""Irregular-domain heat (P1 FEM on a slotted, jittered mesh): orders, ragged files, the graph view."""

import math

import h5py
import numpy as np
import pytest

from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.pde import fem
from neuralops.pde.generate import generate
from neuralops.pde.recipe import parse_recipe
from neuralops.pde.thermal import manufactured_errors


def test_p1_orders_on_the_slotted_mesh():
    errs = [manufactured_errors(n) for n in (10, 20, 40)]
    l2 = [math.log2(a[0] / b[0]) for a, b in zip(errs, errs[1:])]
    h1 = [math.log2(a[1] / b[1]) for a, b in zip(errs, errs[1:])]
    assert all(p >= 1.8 for p in l2) and all(p >= 0.9 for p in h1), (l2, h1)


def test_mesh_covers_the_domain_and_edges_point_outwards():
    nodes, tris = fem.slotted_mesh(
        16, (0.25, 0.5, 0.5, 1.0 + 1 / 16), 0.25, np.random.default_rng(1)
    )
    assert abs(fem.areas(nodes, tris).sum() - (1 - 0.25 * 0.5)) < 1e-12
    # divergence theorem: the outward unit normals of the closed boundary sum to zero (times length)
    e = fem.boundary_edges(tris)
    d = nodes[e[:, 1]] - nodes[e[:, 0]]
    assert np.abs(np.stack([d[:, 1], -d[:, 0]]).sum(axis=1)).max() < 1e-12
    # and the boundary encloses the area: 1/2 sum x dy - y dx
    x, y = nodes[e[:, 0]].T
    assert abs(0.5 * np.sum(x * d[:, 1] - y * d[:, 0]) - (1 - 0.125)) < 1e-12


RECIPE = """
[dataset]
name = "th"
pde = "thermal"
n_samples = 5
seed = 4
splits = {{ train = 4, test = 1 }}
grid = {{ size = [17, 17], store_stride = 1 }}
{params}
[solver]
method = "cg"
preconditioner = "ic0"
rtol = 1e-12
[run]
out = "{out}"
workers = 1
"""


def test_generated_meshes_and_physics(tmp_path):
    rep = generate(
        parse_recipe(RECIPE.format(out=tmp_path / "t.h5", params=""), "t.toml"), progress=False
    )
    assert rep.complete and rep.n_ok == 5
    with h5py.File(rep.path) as f:
        offsets = f["mesh/offsets"][...]
        td = f["params/T_D"][...]
    counts = np.diff(offsets)
    assert len(set(counts)) > 1  # a different slot, hence node count, per sample
    ds = PDEDataset(rep.path, "all")
    for i in range(5):
        s = ds[i]
        T = s["target"][0].numpy()
        # heat enters through the bottom (g <= 0) and leaves through the left edge at T_D
        assert T.min() >= td[i] - 1e-3 and np.isfinite(T).all()
    graphs = PDEDataset(rep.path, "all", view="graph", graph={"k": 6})
    g = graphs[0]
    assert (
        g.pos.shape == (counts[0], 2) and g.x.shape == (counts[0], 3) and g.edge_index.shape[0] == 2
    )


def test_no_flux_gives_the_dirichlet_temperature_everywhere(tmp_path):
    params = '[params.g]\nsampler = "choice"\nvalues = [0.0]'
    rep = generate(
        parse_recipe(RECIPE.format(out=tmp_path / "z.h5", params=params), "z.toml"), progress=False
    )
    ds = PDEDataset(rep.path, "all")
    with h5py.File(rep.path) as f:
        td = f["params/T_D"][...]
    for i in range(5):
        np.testing.assert_allclose(ds[i]["target"].numpy(), td[i], rtol=1e-6)


def test_bad_recipes(tmp_path):
    text = RECIPE.format(out=tmp_path / "b.h5", params="").replace("[17, 17]", "[17, 33]")
    with pytest.raises(RecipeError, match=r"\[n \+ 1, n \+ 1\]"):
        generate(parse_recipe(text, "b.toml"), progress=False)
    text = RECIPE.format(
        out=tmp_path / "c.h5", params='[params.T_D]\nsampler = "grf"\nalpha = 2.0\ntau = 3.0'
    )
    with pytest.raises(RecipeError, match="scalar"):
        generate(parse_recipe(text, "c.toml"), progress=False)
