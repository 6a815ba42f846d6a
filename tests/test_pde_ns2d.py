"""2-D Navier–Stokes (vorticity): Taylor–Green decay at second order in time, the generated file."""

import math

import numpy as np
import pytest

from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.data.timewindow import TimeWindow
from neuralops.data.validate import validate
from neuralops.pde.generate import generate
from neuralops.pde.ns2d import NS2DVorticityFamily, VorticitySolver, fno_forcing
from neuralops.pde.recipe import parse_recipe

RECIPE = """
[dataset]
name = "ns_tiny"
pde = "ns2d_vorticity"
n_samples = 6
seed = 3
splits = {{ train = 4, test = 2 }}
grid = {{ size = [32, 32], store_stride = 2 }}
[pde]
viscosity = 1e-3
dt = 0.01
t_end = 0.5
record_every = 0.1
{extra}
[run]
out = "{out}"
workers = 1
"""


def test_taylor_green_decay_is_second_order_in_time():
    errs = [NS2DVorticityFamily.taylor_green_error(32, 0.01, dt, 1.0) for dt in (0.02, 0.01, 0.005)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(1.9 < p < 2.1 for p in orders), orders
    assert errs[-1] < 1e-6


def test_mean_vorticity_is_conserved_and_forcing_has_zero_mean():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((32, 32))
    w0 -= w0.mean() - 0.3  # mean 0.3
    traj = VorticitySolver(32, 1e-3, 1e-3, fno_forcing(32)).run(w0, 3, 20)
    np.testing.assert_allclose(traj.mean(axis=(1, 2)), 0.3, atol=1e-12)
    assert abs(fno_forcing(32).mean()) < 1e-14


def test_generated_trajectories_open_as_time_windows(tmp_path):
    rep = generate(
        parse_recipe(RECIPE.format(out=tmp_path / "ns.h5", extra=""), "ns.toml"), progress=False
    )
    assert rep.complete and rep.n_ok == 6
    assert validate(rep.path).ok
    traj = PDEDataset(rep.path, "train", time="trajectory")
    assert traj[0]["input"].shape == (6, 1, 16, 16)  # t = 0, 0.1, ..., 0.5 at 16^2
    np.testing.assert_allclose(traj[0]["time"].numpy(), np.arange(6) * 0.1, atol=1e-6)
    win = PDEDataset(rep.path, "train", time=TimeWindow(n_in=2, n_out=1))
    assert len(win) == 4 * 4 and win[0]["input"].shape == (2, 1, 16, 16)
    # the stored trajectory is the solver's, strided: rerun sample 0 and compare
    from neuralops.pde.generate import sample_rng

    fam = NS2DVorticityFamily.from_config(
        parse_recipe(RECIPE.format(out=tmp_path / "x.h5", extra=""), "x").dataset.grid,
        {},
        {"viscosity": 1e-3, "dt": 0.01, "t_end": 0.5, "record_every": 0.1},
    )
    params = fam.sample_params(sample_rng(3, 0))
    res = fam.solve(params, None)
    all_ = PDEDataset(rep.path, "all", time="trajectory")
    np.testing.assert_allclose(all_[0]["input"][:, 0].numpy(), res.fields["vorticity"], rtol=1e-6)


@pytest.mark.parametrize(
    "extra, match",
    [
        ('forcing = "kolmogorov"', "pde.forcing"),
        ("viscosity_ = 1.0", "viscosity"),
        ("record_every = 0.015", "whole number of steps"),
    ],
)
def test_bad_recipes(tmp_path, extra, match):
    text = RECIPE.format(out=tmp_path / "b.h5", extra=extra)
    if extra.startswith("record_every"):
        text = text.replace("record_every = 0.1\n", "")
    with pytest.raises(RecipeError, match=match):
        generate(parse_recipe(text, "b.toml"), progress=False)


def test_odd_grid_is_refused(tmp_path):
    text = RECIPE.format(out=tmp_path / "c.h5", extra="").replace("[32, 32]", "[33, 33]")
    with pytest.raises(RecipeError, match="even integers"):
        generate(parse_recipe(text, "c.toml"), progress=False)


def test_unstable_time_step_is_refused_before_any_work(tmp_path):
    text = RECIPE.format(out=tmp_path / "u.h5", extra="").replace("dt = 0.01", "dt = 0.05")
    text = text.replace("record_every = 0.1", "record_every = 0.1\n").replace(
        "t_end = 0.5", "t_end = 0.5"
    )
    with pytest.raises(RecipeError, match="CFL"):
        generate(parse_recipe(text, "u.toml"), progress=False)
    assert not (tmp_path / "u.h5").exists() and not (tmp_path / "u.h5.staging").exists()
