"""Recipe parsing: typed values, and errors that name the key and suggest the fix."""

import pytest

from neuralops.data import RecipeError
from neuralops.pde import get_family
from neuralops.pde.recipe import flatten, load_recipe, parse_recipe

BASE = """
[dataset]
name = "t"
pde = "darcy"
n_samples = 10
seed = 3
splits = { train = 6, val = 2, test = 2 }
grid = { size = [17, 17], store_stride = 2 }
[solver]
method = "cg"
rtol = 1e-9
[run]
out = "x.h5"
"""


def test_parse_typed_values():
    r = parse_recipe(BASE)
    assert r.dataset.n_samples == 10 and r.dataset.seed == 3
    assert r.dataset.grid.size == (17, 17) and r.dataset.grid.stored_size == (9, 9)
    assert r.solver.method == "cg" and r.solver.rtol == 1e-9
    assert r.run.out == "x.h5" and r.run.workers == 1 and r.run.fletcher32
    assert len(r.sha256) == 64


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("rtol = 1e-9", "rtoll = 1e-9"), "unknown key 'solver.rtoll'; did you mean 'rtol'?"),
        (('name = "t"', 'nmae = "t"'), "did you mean 'name'?"),
        (("n_samples = 10", "n_samples = -1"), "'dataset.n_samples' must be >= 1"),
        (("n_samples = 10", 'n_samples = "10"'), "'dataset.n_samples' must be an integer"),
        (("size = [17, 17]", "size = [2, 17]"), "'dataset.grid.size' must be >= 3"),
        (('method = "cg"', 'method = "cgg"'), "did you mean 'cg'?"),
        (("rtol = 1e-9", "rtol = 2.0"), "'solver.rtol' must be in (0, 1)"),
        (("train = 6", "train = 60"), "ask for 64 samples but n_samples is 10"),
        (("[run]", "[runn]"), "unknown key 'runn'; did you mean 'run'?"),
    ],
)
def test_bad_recipes_name_the_key(edit, needle):
    with pytest.raises(RecipeError) as err:
        parse_recipe(BASE.replace(*edit), "r.toml")
    assert needle in str(err.value)
    assert str(err.value).startswith("r.toml: ")


def test_unknown_pde_lists_choices():
    with pytest.raises(RecipeError, match=r"unknown PDE family 'dracy'; did you mean 'darcy'\?"):
        get_family("dracy")


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="not valid TOML"):
        parse_recipe("[dataset\nname=1")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.toml")


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_shipped_recipes_parse():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].joinpath("pde_data").glob("*.toml")):
        r = load_recipe(path)
        family = get_family(r.dataset.pde).from_config(r.dataset.grid, r.params, r.pde_options)
        assert family.field_specs(), path
