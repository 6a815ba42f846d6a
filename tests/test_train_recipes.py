"""Every training recipe in train/ parses and builds its model and optimizer; the smoke recipe trains."""

import time
from pathlib import Path

import pytest
from _files import make_grid_file

from neuralops.models import build_model
from neuralops.train._build import build_optimizer, build_scheduler
from neuralops.train.recipe import load_train_recipe
from neuralops.train.train_cli import run

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "train").glob("*.toml"))


def test_recipes_exist():
    names = {p.stem for p in RECIPES}
    assert {"mgno_darcy_rough", "mgno_darcy_smoke", "fno_darcy"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_builds_model_and_optimizer(path):
    from neuralops.train.dcdm_train import is_dcdm_recipe, load_dcdm_recipe

    if is_dcdm_recipe(path):  # DCDM recipes: [scene] [data] [model] [train] [log] [eval]
        rec = load_dcdm_recipe(path)
        model, config = build_model(rec.model_config()), rec.train_config()
    else:
        rec = load_train_recipe(path)
        model = build_model(rec.model_config(in_channels=1, out_channels=1))
        config = rec.config
    opt = build_optimizer(model, config)
    units = config.max_epochs if config.scheduler_unit == "epoch" else 100
    build_scheduler(opt, config, total_steps=units or 1)
    assert model.n_params() > 0


def test_paper_recipes_use_the_paper_models():
    rough = load_train_recipe(ROOT / "train/mgno_darcy_rough.toml")
    assert build_model(rough.model_config(1, 1)).n_params() == 572_661
    assert rough.loss == "rel_h1" and rough.config.lr == 5e-4 and rough.config.batch_size == 8
    fno = load_train_recipe(ROOT / "train/fno_darcy.toml")
    assert build_model(fno.model_config(1, 1)).num_parameters(real=False) == 602_977
    assert fno.data == rough.data and fno.config.scheduler == rough.config.scheduler


def test_smoke_recipe_runs_end_to_end(tmp_path):
    data = make_grid_file(tmp_path / "d.h5", n=24, s=33)
    text = (ROOT / "train/mgno_darcy_smoke.toml").read_text()
    text = text.replace('recipe = "pde_data/darcy_demo.toml"', f'path = "{data}"')
    recipe = tmp_path / "smoke.toml"
    recipe.write_text(text)
    t0 = time.perf_counter()
    result = run(recipe, out=tmp_path / "run")
    assert time.perf_counter() - t0 < 30
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert result["fit"]["epoch"] == 2 and 0 < result["test"]["rel_l2"] < 10


def test_mesh_transformer_recipe_trains_on_graph_data(tmp_path):
    from neuralops.pde.generate import generate
    from neuralops.pde.recipe import parse_recipe

    data_recipe = (ROOT / "pde_data/thermal_slot.toml").read_text()
    data_recipe = data_recipe.replace("n_samples = 1200", "n_samples = 6")
    data_recipe = data_recipe.replace(
        "train = 1000, val = 100, test = 100", "train = 4, val = 1, test = 1"
    )
    data_recipe = data_recipe.replace("size = [65, 65]", "size = [17, 17]")
    data_recipe = data_recipe.replace(
        'out = "pde_data/thermal_slot.h5"', f'out = "{tmp_path / "th.h5"}"'
    )
    rep = generate(parse_recipe(data_recipe, "th.toml"), progress=False)
    text = (ROOT / "train/transolver_thermal.toml").read_text()
    text = text.replace('recipe = "pde_data/thermal_slot.toml"', f'path = "{rep.path}"')
    text = text.replace("max_epochs = 50", "max_epochs = 2").replace("hidden = 64", "hidden = 16")
    (tmp_path / "tr.toml").write_text(text)
    result = run(tmp_path / "tr.toml", out=tmp_path / "run")
    assert result["fit"]["epoch"] == 2 and 0 < result["test"]["rel_l2"] < 10
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_scot_recipe_trains_on_all2all_pairs(tmp_path):
    from _files import DT, make_timeseries_file

    from neuralops.data import RecipeError
    from neuralops.train.recipe import parse_train_recipe

    data = make_timeseries_file(tmp_path / "ts.h5", n=6, t=4, s=32)
    text = (ROOT / "train/scot_ns_small.toml").read_text()
    text = text.replace(
        'recipe = "pde_data/ns2d_small.toml"', f'path = "{data}"\ninputs = "w"\ntargets = "w"'
    )
    text = text.replace("t_norm = 10.0", f"t_norm = {3 * DT}")
    recipe = tmp_path / "scot.toml"
    recipe.write_text(text)
    rec = load_train_recipe(recipe, ["train.max_epochs=1"])
    assert rec.data.time == "all2all" and rec.model_type == "scot"
    result = run(recipe, overrides=["train.max_epochs=1"], out=tmp_path / "run")
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert result["fit"]["epoch"] == 1 and 0 < result["test"]["rel_l2"] < 10
    bad = text.replace('time = "all2all"', 'time = "pairs"')
    with pytest.raises(RecipeError, match="all2all"):
        parse_train_recipe(bad)
