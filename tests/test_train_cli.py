"""``neuralops train`` / ``neuralops eval`` and training recipes (neuralops.train.recipe)."""

import re
from pathlib import Path

import pytest
from _files import make_grid_file

from neuralops.cli import main
from neuralops.data import PDEDataset
from neuralops.data.errors import RecipeError
from neuralops.data.normalizer import Normalizer
from neuralops.models import load_pretrained
from neuralops.train import TrainConfig, Trainer
from neuralops.train.eval_cli import evaluate
from neuralops.train.recipe import (
    build_data,
    build_model_for,
    load_train_recipe,
    parse_train_recipe,
)

ROOT = Path(__file__).resolve().parents[1]

RECIPE = """
[model]
type = "fno"
modes = [4, 4]
width = 8
n_layers = 2
lifting_channels = 8
projection_channels = 8

[data]
path = "{data}"
normalization = "gaussian"

[train]
max_epochs = 5
batch_size = 2
device = "cpu"

[optim]
optimizer = "adam"
lr = 1e-3

[schedule]
scheduler = "onecycle"

[log]
out_dir = "{out}"
log_every = 1
"""

DATA_RECIPE = """
[dataset]
name = "train_cli_tiny"
pde = "darcy"
n_samples = 8
seed = 1
splits = {{ train = 4, val = 2, test = 2 }}
grid = {{ size = [17, 17], store_stride = 2 }}
[params.a]
sampler = "grf"
alpha = 2.0
tau = 3.0
transform = {{ threshold = [12.0, 3.0] }}
[run]
out = "{out}"
"""


@pytest.fixture
def setup(tmp_path):
    data = make_grid_file(tmp_path / "d.h5", n=8, s=16)
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(data=data, out=tmp_path / "unused"))
    return tmp_path, recipe, data


def _floats(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"^(rel_l2|rel_h1) (\S+)$", text, re.M)}


def test_train_then_eval(setup, capsys):
    tmp, recipe, data = setup
    out = tmp / "run"
    argv = ["train", str(recipe), "--set", "train.max_steps=3", "--set", "optim.lr=2e-3"]
    assert main([*argv, "--out", str(out), "--resume", "none"]) == 0
    printed = capsys.readouterr().out
    assert "test:" in printed and "final model" in printed
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*"))  # checkpoints written
    final = out / "final"
    assert {"config.json", "model.safetensors", "normalizer.json"} <= {
        p.name for p in final.iterdir()
    }
    resolved = (out / "recipe.resolved.toml").read_text()
    assert "lr = 0.002" in resolved and "max_steps = 3" in resolved

    png = tmp / "plot.png"
    assert main(["eval", str(final), str(data), "--split", "test", "--plot", str(png)]) == 0
    got = _floats(capsys.readouterr().out)
    assert png.stat().st_size > 1000

    # the same numbers as Trainer.evaluate on the loaded model and normalizer
    test = PDEDataset(data, "test")
    trainer = Trainer(
        load_pretrained(final),
        TrainConfig(max_steps=1, device="cpu", batch_size=2),
        train_data=PDEDataset(data, "train"),
        normalizer=Normalizer.load(final),
    )
    ref = trainer.evaluate(test)
    assert got["rel_l2"] == pytest.approx(ref["rel_l2"], rel=1e-6)
    assert got["rel_h1"] == pytest.approx(ref["rel_h1"], rel=1e-6)
    direct = evaluate(final, data)
    assert direct["rel_l2"] == pytest.approx(ref["rel_l2"], rel=1e-9)


def test_resume_auto_continues(setup, capsys):
    tmp, recipe, _ = setup
    out = tmp / "run"
    # (a OneCycle schedule keeps its original length on resume, so extend a run without one)
    flat = ["--set", "schedule.scheduler='none'", "--out", str(out)]
    assert main(["train", str(recipe), "--set", "train.max_steps=2", *flat]) == 0
    assert main(["train", str(recipe), "--set", "train.max_steps=4", *flat]) == 0
    assert "step 4" in capsys.readouterr().out


def test_data_recipe_is_generated(tmp_path):
    data_recipe = tmp_path / "tiny.toml"
    data_recipe.write_text(DATA_RECIPE.format(out=tmp_path / "gen.h5"))
    text = RECIPE.replace('path = "{data}"', f'recipe = "{data_recipe}"')
    rec = parse_train_recipe(text.format(out=tmp_path / "o"), ["train.max_steps=1"])
    assert not (tmp_path / "gen.h5").exists()
    built = build_data(rec)
    assert (tmp_path / "gen.h5").exists() and len(built["train"]) == 4
    assert build_model_for(rec, built["train"]).config.in_channels == 1


@pytest.mark.parametrize(
    ("edit", "overrides", "message"),
    [
        (("[optim]", "[optim]\nlrr = 1.0"), [], "unknown key 'optim.lrr'; did you mean 'lr'"),
        (("[log]", "[logs]"), [], "unknown key 'logs'; did you mean 'log'"),
        (("width = 8", "widht = 8"), [], "unknown key 'model.widht'; did you mean 'width'"),
        (("", ""), ["optim.lrr=1e-3"], "unknown key 'optim.lrr'; did you mean 'lr'"),
        (("", ""), ["train.max_epoch=3"], "did you mean 'max_epochs'"),
        (("", ""), ["modle.width=3"], "unknown key 'modle'; did you mean 'model'"),
        (("", ""), ["model.type=fnoo"], "'model.type' = 'fnoo' is unknown; did you mean 'fno'"),
        (('type = "fno"', 'type = "fnoo"'), [], "did you mean 'fno'"),
        (("", ""), ["data.normalization=gausian"], "did you mean 'gaussian'"),
        (("", ""), ["optim.lr=-1"], "lr must be a finite number > 0"),
    ],
)
def test_recipe_errors(setup, edit, overrides, message):
    tmp, recipe, _ = setup
    text = recipe.read_text().replace(*edit) if edit[0] else recipe.read_text()
    with pytest.raises(RecipeError, match=re.escape(message)):
        parse_train_recipe(text, overrides)


def test_cli_reports_recipe_errors(setup, capsys):
    _, recipe, _ = setup
    assert main(["train", str(recipe), "--set", "optim.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_channel_mismatch(setup):
    tmp, recipe, _ = setup
    rec = load_train_recipe(recipe, ["model.in_channels=2", "model.out_channels=3"])
    data = build_data(rec)
    with pytest.raises(RecipeError) as err:
        build_model_for(rec, data["train"])
    msg = str(err.value)
    assert "in_channels=2" in msg and "['a'] have 1 channel" in msg
    assert "out_channels=3" in msg and "['u'] have 1 channel" in msg


def test_mgno_preset():
    rec = parse_train_recipe(
        '[model]\npreset = "darcy_smooth"\nwidth = 8\n[data]\npath = "x.h5"\n[train]\nmax_steps = 1'
    )
    cfg = rec.model_config(1, 1)
    assert rec.model_type == "mgno" and cfg.width == 8 and cfg.n_layers == 5
    with pytest.raises(RecipeError, match="did you mean 'darcy_smooth'"):
        parse_train_recipe(
            '[model]\npreset = "darcy_smoth"\n[data]\npath = "x.h5"\n[train]\nmax_steps = 1'
        )


@pytest.mark.parametrize("path", sorted((ROOT / "train").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_parse(path):
    from neuralops.train import dcdm_train

    if dcdm_train.is_dcdm_recipe(path):  # the DCDM recipes have their own tables
        rec = dcdm_train.load_dcdm_recipe(path)
        from neuralops.models import DCDMNet

        net = DCDMNet(rec.model_config())
        assert net.config.dim == len(rec.table("scene")["shape"])
        return
    rec = load_train_recipe(path)
    if rec.model_type == "multi_operator":  # data per family, channel counts per family
        assert rec.data is None and rec.families
        assert all(f.data.recipe or f.data.path for f in rec.families.values())
        cfg = rec.model_config(1, 1)
        assert all(f["in_channels"] == 1 for f in cfg.families.values())
    else:
        assert rec.data.recipe is not None or rec.data.path is not None
        cfg = rec.model_config(1, 1)
        assert cfg.in_channels == 1
    from neuralops.models import build_model
    from neuralops.train._build import build_optimizer

    build_optimizer(build_model(cfg), rec.config)
