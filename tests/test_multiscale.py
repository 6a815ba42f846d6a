"""The multiscale trigonometric coefficient (HANO/MgNO) and Darcy data generated with it."""

import numpy as np
import pytest

from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.data.validate import validate
from neuralops.pde.generate import generate
from neuralops.pde.grf import Multiscale, sampler_from_table
from neuralops.pde.recipe import parse_recipe


def test_bounds_and_formula():
    m = sampler_from_table({"sampler": "multiscale", "levels": 3}, 2)
    assert isinstance(m, Multiscale) and m.is_field
    rng = np.random.default_rng(0)
    a = m.sample(rng, (129, 129))
    assert a.min() > 0.25**3 - 1e-12 and a.max() < 1.5**6 + 1e-12
    # the same draws by hand: frequencies a_k ~ U[2^(k-1), 2^k]
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(0, 1, 129), np.linspace(0, 1, 129), indexing="ij")
    ref = np.ones_like(x)
    for k in range(1, 4):
        ak = rng.uniform(2 ** (k - 1), 2**k)
        assert 2 ** (k - 1) <= ak <= 2**k
        ref *= (1 + 0.5 * np.cos(ak * np.pi * (x + y))) * (
            1 + 0.5 * np.sin(ak * np.pi * (y - 3 * x))
        )
    np.testing.assert_allclose(a, ref, rtol=1e-14)


def test_bad_levels_and_dimension():
    with pytest.raises(RecipeError, match="levels"):
        sampler_from_table({"sampler": "multiscale", "levels": 0}, 2)
    with pytest.raises(RecipeError, match="2-D"):
        sampler_from_table({"sampler": "multiscale"}, 3)


def test_darcy_multiscale_generation(tmp_path):
    text = """
[dataset]
name = "ms"
pde = "darcy"
n_samples = 4
seed = 0
splits = {{ train = 3, test = 1 }}
grid = {{ size = [65, 65], store_stride = 4 }}
[params.a]
sampler = "multiscale"
[run]
out = "{out}"
workers = 1
""".format(out=tmp_path / "ms.h5")
    rep = generate(parse_recipe(text, "ms.toml"), progress=False)
    assert rep.complete and rep.n_ok == 4
    s = PDEDataset(rep.path, "all")[0]
    assert s["input"].shape == (1, 17, 17) and float(s["target"].max()) > 0
    assert validate(rep.path, deep=True).ok
