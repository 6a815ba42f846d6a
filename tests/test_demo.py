"""The quickstart end to end on a tiny recipe: generation, PDEDataset, MgNO training, figure."""

import json

import torch

from neuralops.train.demo_cli import quickstart, relative_l2

RECIPE = """
[dataset]
name = "demo_tiny"
pde = "darcy"
n_samples = 48
seed = 1
splits = {{ train = 40, test = 8 }}
grid = {{ size = [33, 33], store_stride = 2 }}
[params.a]
sampler = "grf"
alpha = 2.0
tau = 3.0
transform = {{ threshold = [12.0, 3.0] }}
[run]
out = "{out}"
"""


def test_relative_l2():
    t = torch.ones(2, 1, 4, 4)
    assert torch.allclose(relative_l2(1.5 * t, t), torch.tensor([0.5, 0.5]))


def test_quickstart_learns(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(out=tmp_path / "d.h5"))
    short = quickstart(recipe=recipe, out=tmp_path / "a", epochs=1, plot=False, batch_size=8)
    m = quickstart(recipe=recipe, out=tmp_path / "b", epochs=12, batch_size=8)
    assert m["n_train"] == 40 and m["n_test"] == 8 and m["resolution"] == [17, 17]
    assert m["test_relative_l2"] < 0.5 * short["test_relative_l2"]
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["epochs"] == 12
    assert (tmp_path / "b" / "darcy_prediction.png").stat().st_size > 10_000
