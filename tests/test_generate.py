"""The generation pipeline: valid files, per-sample seeds, resume identity, failures recorded."""

import h5py
import numpy as np
import pytest

from neuralops.cli import main as cli_main
from neuralops.data import FAILED, OK, content_digest
from neuralops.pde.generate import GenerationError, generate, sample_rng, split_indices
from neuralops.pde.recipe import parse_recipe

RECIPE = """
[dataset]
name = "tiny"
pde = "darcy"
n_samples = {n}
seed = 7
splits = {{ train = {ntrain}, val = 4, test = 4 }}
grid = {{ size = [17, 17], store_stride = 2 }}
[params.a]
sampler = "grf"
alpha = 2.0
tau = 3.0
boundary = "neumann"
transform = {{ threshold = [12.0, 3.0] }}
[solver]
method = "{method}"
{solver_extra}
[run]
out = "{out}"
workers = 1
"""


def recipe(tmp_path, n=24, method="direct", solver_extra="", name="tiny.h5", ntrain=None):
    text = RECIPE.format(
        n=n,
        out=tmp_path / name,
        method=method,
        solver_extra=solver_extra,
        ntrain=n - 8 if ntrain is None else ntrain,
    )
    return parse_recipe(text, "tiny.toml")


def test_generate_writes_a_valid_file(tmp_path):
    rep = generate(recipe(tmp_path), progress=False)
    assert rep.complete and rep.n_ok == 24 and rep.n_failed == 0 and rep.exit_code == 0
    with h5py.File(rep.path) as f:
        assert f.attrs["complete"] and f.attrs["content_sha256"] == rep.content_sha256
        assert content_digest(f) == rep.content_sha256
        assert (f["status"][...] == OK).all()
        assert f["fields/a"].shape == (24, 9, 9) and f["fields/u"].shape == (24, 9, 9)
        assert (f["solver/residual"][...] < 1e-12).all() and f["solver/converged"][...].all()
        a = f["fields/a"][...]
        assert set(np.unique(a)) == {3.0, 12.0}
        u = f["fields/u"][...]
        assert np.all(u[:, 0, :] == 0) and np.all(u[:, :, -1] == 0) and (u[:, 4, 4] > 0).all()
        splits = {k: f["splits"][k][...] for k in f["splits"]}
    expected = split_indices(7, 24, {"train": 16, "val": 4, "test": 4})
    for k in expected:
        np.testing.assert_array_equal(splits[k], expected[k])
    assert not (tmp_path / "tiny.h5.staging").exists()
    assert not (tmp_path / "tiny.h5.partial").exists()


def test_sample_seeds_do_not_depend_on_dataset_size(tmp_path):
    small = generate(recipe(tmp_path, n=10, name="s.h5", ntrain=2), progress=False)
    large = generate(recipe(tmp_path, n=16, name="l.h5"), progress=False)
    with h5py.File(small.path) as fs, h5py.File(large.path) as fl:
        np.testing.assert_array_equal(fs["fields/u"][...], fl["fields/u"][:10])
    assert sample_rng(7, 3).random() == sample_rng(7, 3).random() != sample_rng(7, 4).random()


def test_resume_after_interruption_gives_the_same_file(tmp_path):
    ref = generate(recipe(tmp_path, name="ref.h5"), progress=False)
    r = recipe(tmp_path, name="cut.h5")
    part = generate(r, workers=2, stop_after=7, progress=False)
    assert part.interrupted and not part.complete and part.computed == 7
    staging = tmp_path / "cut.h5.staging"
    units = sorted(staging.glob("unit-*.npz"))
    assert len(units) == 7 and not (tmp_path / "cut.h5").exists()
    # a kill mid-write leaves a temporary file and possibly a torn unit: both are discarded
    (staging / ".unit-00000099.npz.tmp-1").write_bytes(b"torn")
    units[0].write_bytes(units[0].read_bytes()[:100])
    done = generate(r, workers=2, progress=False)
    assert done.complete and done.computed == 24 - 6
    assert done.content_sha256 == ref.content_sha256
    again = generate(r, progress=False)
    assert again.skipped and again.computed == 0


def test_existing_output_from_another_recipe_is_refused(tmp_path):
    generate(recipe(tmp_path), progress=False)
    other = recipe(tmp_path, n=20)
    with pytest.raises(GenerationError, match="--overwrite"):
        generate(other, progress=False)
    rep = generate(other, overwrite=True, progress=False)
    assert rep.n_ok == 20


def test_staging_from_another_recipe_shows_the_diff(tmp_path):
    generate(recipe(tmp_path), stop_after=2, progress=False)
    other = recipe(tmp_path, n=20)
    with pytest.raises(GenerationError, match=r"dataset.n_samples: 24 -> 20[\s\S]*--restart"):
        generate(other, progress=False)
    assert generate(other, restart=True, progress=False).complete


def test_failed_solves_are_recorded_not_hidden(tmp_path):
    r = recipe(tmp_path, method="cg", solver_extra="rtol = 1e-10\nmaxiter = 2")
    rep = generate(r, progress=False)
    assert rep.n_failed == 24 and rep.exit_code == 3 and "exceeds" in rep.summary()
    with h5py.File(rep.path) as f:
        assert (f["status"][...] == FAILED).all()
        assert all("did not converge" in e for e in f["error"].asstr()[...])
        assert (f["solver/iterations"][...] == 2).all() and not f["solver/converged"][...].any()
        assert np.isnan(f["fields/u"][0]).all()
        assert all(len(f["splits"][k]) == 0 for k in f["splits"])


def test_assemble_writes_pending_samples(tmp_path):
    r = recipe(tmp_path)
    rep = generate(r, limit=5, assemble=True, progress=False)
    assert not rep.complete and rep.n_ok == 5 and rep.n_pending == 19
    with h5py.File(rep.path) as f:
        assert not f.attrs["complete"] and (f["status"][...] == 0).sum() == 19
    assert generate(r, progress=False).complete


def test_cli_generate(tmp_path, capsys):
    path = tmp_path / "r.toml"
    path.write_text(recipe(tmp_path).text)
    assert cli_main(["generate", str(path), "--no-progress"]) == 0
    assert "24 ok, 0 failed of 24 (complete)" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(recipe(tmp_path).text.replace('pde = "darcy"', 'pde = "darcyy"'))
    assert cli_main(["generate", str(bad)]) == 2
    assert "did you mean 'darcy'" in capsys.readouterr().out


def test_bad_worker_count_is_refused(tmp_path):
    from neuralops.data import RecipeError

    with pytest.raises(RecipeError, match="--workers must be >= 1, got 0"):
        generate(recipe(tmp_path), workers=0, progress=False)
