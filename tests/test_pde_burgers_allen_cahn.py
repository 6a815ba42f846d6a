"""Burgers (Cole–Hopf, fourth order in time) and Allen–Cahn (steady kinks, energy decay); their files."""

import math

import numpy as np
import pytest

from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.pde.allen_cahn import AllenCahnFamily, AllenCahnSolver
from neuralops.pde.burgers import Burgers1DFamily
from neuralops.pde.generate import generate
from neuralops.pde.recipe import parse_recipe


def test_burgers_matches_cole_hopf_at_fourth_order():
    errs = [Burgers1DFamily.cole_hopf_error(64, 0.1, dt, 1.0) for dt in (0.05, 0.025, 0.0125)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(p > 3.5 for p in orders), (errs, orders)
    assert errs[-1] < 1e-9


def test_allen_cahn_kinks_are_steady_and_energy_decays():
    assert AllenCahnFamily.kink_drift(256, 0.02, 1e-2, 2.0) < 1e-6
    x = np.arange(128) / 128
    traj = AllenCahnSolver((128,), 0.03, 1e-2).run(0.3 * np.cos(2 * np.pi * x), 8, 10)
    k = 2 * np.pi * np.fft.rfftfreq(128, 1 / 128)

    def energy(u):
        ux = np.fft.irfft(1j * k * np.fft.rfft(u), n=128)
        return np.mean(0.5 * 0.03**2 * ux**2 + 0.25 * (u**2 - 1) ** 2)

    e = [energy(u) for u in traj]
    assert all(b < a for a, b in zip(e, e[1:]))  # a gradient flow of the Ginzburg-Landau energy


def test_allen_cahn_2d_reduces_to_1d():
    x = np.arange(32) / 32
    u1 = 0.5 * np.sin(2 * np.pi * x)
    one = AllenCahnSolver((32,), 0.05, 1e-2).run(u1, 2, 5)
    two = AllenCahnSolver((32, 16), 0.05, 1e-2).run(np.repeat(u1[:, None], 16, axis=1), 2, 5)
    np.testing.assert_allclose(two[:, :, 7], one, atol=1e-12)


TINY = """
[dataset]
name = "tiny"
pde = "{pde}"
n_samples = 4
seed = 0
splits = {{ train = 3, test = 1 }}
grid = {{ size = {size}, store_stride = 2 }}
[pde]
{pde_opts}
[run]
out = "{out}"
workers = 1
"""


@pytest.mark.parametrize(
    "pde, size, opts, shape",
    [
        ("burgers1d", "[64]", "dt = 1e-3\nt_end = 0.2\nrecord_every = 0.1", (3, 1, 32)),
        ("allen_cahn", "[32]", "dt = 1e-2\nt_end = 0.2\nrecord_every = 0.1", (3, 1, 16)),
        ("allen_cahn", "[16, 16]", "dt = 1e-2\nt_end = 0.2\nrecord_every = 0.1", (3, 1, 8, 8)),
    ],
)
def test_generated_files(tmp_path, pde, size, opts, shape):
    text = TINY.format(pde=pde, size=size, pde_opts=opts, out=tmp_path / "t.h5")
    rep = generate(parse_recipe(text, "t.toml"), progress=False)
    assert rep.complete and rep.n_ok == 4
    sample = PDEDataset(rep.path, "train", time="trajectory")[0]
    assert tuple(sample["input"].shape) == shape and np.isfinite(sample["input"].numpy()).all()


def test_bad_recipes(tmp_path):
    text = TINY.format(pde="burgers1d", size="[64, 64]", pde_opts="", out=tmp_path / "b.h5")
    with pytest.raises(RecipeError, match="1 entry"):
        generate(parse_recipe(text, "b.toml"), progress=False)
    text = TINY.format(
        pde="allen_cahn", size="[32]", pde_opts="epsilon = -1", out=tmp_path / "c.h5"
    )
    with pytest.raises(RecipeError, match="epsilon"):
        generate(parse_recipe(text, "c.toml"), progress=False)


def test_burgers_cfl_is_checked(tmp_path):
    text = TINY.format(
        pde="burgers1d",
        size="[64]",
        pde_opts="dt = 0.1\nt_end = 0.2\nrecord_every = 0.1",
        out=tmp_path / "c.h5",
    )
    text = text.replace(
        "[pde]", '[params.u0]\nsampler = "grf"\nalpha = 2.0\ntau = 5.0\nsigma = 250.0\n[pde]'
    )
    with pytest.raises(RecipeError, match="CFL"):
        generate(parse_recipe(text, "c.toml"), progress=False)
