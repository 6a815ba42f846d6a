"""Recycled generation (SKR): same dataset as independent solves, chains resume exactly."""

import h5py
import numpy as np

from neuralops.pde.generate import generate
from neuralops.pde.recipe import parse_recipe

RECIPE = """
[dataset]
name = "recycled"
pde = "darcy"
n_samples = 24
seed = 11
splits = {{ train = 16, test = 8 }}
grid = {{ size = [25, 25], store_stride = 2 }}
[params.a]
sampler = "grf"
alpha = 2.5
tau = 7.0
transform = "exp"
[solver]
method = "{method}"
preconditioner = "{pre}"
rtol = 1e-10
{recycle}
[run]
out = "{out}"
"""
RECYCLE = "recycle = { enabled = true, chain_length = 8, k = 6, m = 24 }"


def recipe(tmp_path, name, method="gcrodr", pre="none", recycle=RECYCLE):
    return parse_recipe(
        RECIPE.format(method=method, pre=pre, recycle=recycle, out=tmp_path / name), "r.toml"
    )


def test_recycled_dataset_equals_independent_solves(tmp_path):
    direct = generate(recipe(tmp_path, "direct.h5", "direct", recycle=""), progress=False)
    rec = generate(recipe(tmp_path, "rec.h5", pre="jacobi"), workers=2, progress=False)
    assert rec.complete and rec.n_ok == 24
    with h5py.File(direct.path) as fd, h5py.File(rec.path) as fr:
        np.testing.assert_array_equal(fd["fields/a"][...], fr["fields/a"][...])
        ud, ur = fd["fields/u"][...].astype(np.float64), fr["fields/u"][...].astype(np.float64)
        err = np.linalg.norm((ud - ur).reshape(24, -1), axis=1)
        assert (err / np.linalg.norm(ud.reshape(24, -1), axis=1)).max() < 1e-6
        assert (fr["solver/residual"][...] <= 1e-10).all() and fr["solver/converged"][...].all()
        assert (fr["solver/iterations"][...] > 0).all()
        assert '"method": "gcrodr"' in fr.attrs["solver_config"]
        splits_d = {k: fd["splits"][k][...] for k in fd["splits"]}
        for k, v in splits_d.items():
            np.testing.assert_array_equal(v, fr["splits"][k][...])


def test_recycled_generation_resumes_chain_by_chain(tmp_path):
    ref = generate(recipe(tmp_path, "ref.h5"), workers=1, progress=False)
    r = recipe(tmp_path, "cut.h5")
    part = generate(r, workers=2, stop_after=9, progress=False)
    assert part.interrupted and part.computed == 16  # whole chains only
    staging = tmp_path / "cut.h5.staging"
    assert (staging / "features.npz").exists()
    # tear one unit of a finished chain: that whole chain is solved again from its start
    unit = sorted(staging.glob("unit-*.npz"))[3]
    unit.write_bytes(unit.read_bytes()[:50])
    done = generate(r, workers=2, progress=False)
    assert done.complete and done.content_sha256 == ref.content_sha256


def test_reused_preconditioner_along_a_chain(tmp_path):
    reuse = RECYCLE.replace("m = 24", "m = 24, reuse_preconditioner = true")
    rec = generate(recipe(tmp_path, "r.h5", pre="ilu", recycle=reuse), progress=False)
    ref = generate(recipe(tmp_path, "d.h5", "direct", recycle=""), progress=False)
    with h5py.File(rec.path) as fr, h5py.File(ref.path) as fd:
        assert fr["solver/converged"][...].all() and (fr["solver/residual"][...] <= 1e-10).all()
        u, v = fr["fields/u"][...].astype(float), fd["fields/u"][...].astype(float)
        assert np.abs(u - v).max() < 1e-6 * np.abs(v).max()


def test_recycling_lowers_iterations_along_a_chain(tmp_path):
    rec = generate(recipe(tmp_path, "rec.h5"), progress=False, keep_staging=True)
    plain = generate(recipe(tmp_path, "gm.h5", "gmres", recycle=""), progress=False)
    with h5py.File(rec.path) as fr, h5py.File(plain.path) as fp:
        it_rec, it_plain = fr["solver/iterations"][...], fp["solver/iterations"][...]
    assert it_rec.sum() < 0.8 * it_plain.sum()


def test_sorted_chains_with_a_reused_preconditioner_and_no_krylov_space(tmp_path):
    """``k = 0``: PCG in SKR order with the IC(0) factor of a chain's first system reused.
    Same dataset as a direct solve; fewer preconditioner builds than samples (the solver
    object of a chain is rebuilt only when the iteration count grows)."""
    reuse = "recycle = { enabled = true, chain_length = 8, k = 0, reuse_preconditioner = true }"
    rec = generate(recipe(tmp_path, "r.h5", "pcg", pre="ic0", recycle=reuse), progress=False)
    ref = generate(recipe(tmp_path, "d.h5", "direct", recycle=""), progress=False)
    indep = generate(recipe(tmp_path, "i.h5", "pcg", pre="ic0", recycle=""), progress=False)
    with h5py.File(rec.path) as fr, h5py.File(ref.path) as fd, h5py.File(indep.path) as fi:
        assert fr["solver/converged"][...].all() and (fr["solver/residual"][...] <= 1e-10).all()
        u, v = fr["fields/u"][...].astype(float), fd["fields/u"][...].astype(float)
        assert np.abs(u - v).max() < 1e-6 * np.abs(v).max()
        # a neighbour's IC(0) is nearly as good as the system's own
        assert fr["solver/iterations"][...].mean() < 1.5 * fi["solver/iterations"][...].mean()


def test_reuse_without_krylov_space_needs_a_preconditioner(tmp_path):
    import pytest

    from neuralops.pde.recipe import RecipeError

    bad = "recycle = { enabled = true, k = 0 }"
    with pytest.raises(RecipeError, match="reuse_preconditioner = true"):
        recipe(tmp_path, "x.h5", "pcg", pre="ic0", recycle=bad)
    bad = "recycle = { enabled = true, k = 0, reuse_preconditioner = true, rebuild_growth = 0.5 }"
    with pytest.raises(RecipeError, match="rebuild_growth"):
        recipe(tmp_path, "x.h5", "pcg", pre="ic0", recycle=bad)
    with pytest.raises(RecipeError, match="k = 0"):
        recipe(tmp_path, "x.h5", "pcg", pre="ic0", recycle=RECYCLE)
