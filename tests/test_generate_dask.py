"""The Dask backend of ``neuralops generate``: same file as the local pool, on a loopback cluster."""

import builtins

import pytest
from test_generate import recipe
from test_generate_recycled import recipe as recycled_recipe

from neuralops.data.errors import RecipeError
from neuralops.pde.generate import generate

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    """A 2-worker LocalCluster on 127.0.0.1, reached by its tcp:// address like a remote one."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def test_dask_file_equals_the_single_machine_file(tmp_path, scheduler):
    assert scheduler.startswith("tcp://127.0.0.1:")
    ref = generate(recipe(tmp_path, name="ref.h5"), workers=1, progress=False)
    remote = generate(recipe(tmp_path, name="remote.h5"), dask=scheduler, progress=False)
    assert remote.complete and remote.n_ok == 24
    assert remote.content_sha256 == ref.content_sha256


def test_dask_run_resumes_after_interruption(tmp_path, scheduler):
    ref = generate(recipe(tmp_path, name="ref.h5"), workers=1, progress=False)
    r = recipe(tmp_path, name="cut.h5")
    part = generate(r, dask=scheduler, stop_after=5, progress=False)
    assert part.interrupted and part.computed == 5
    done = generate(r, dask=scheduler, progress=False)
    assert done.complete and done.computed == 19 and done.content_sha256 == ref.content_sha256


def test_recycled_chains_on_dask(tmp_path, scheduler):
    local = generate(recycled_recipe(tmp_path, "local.h5"), workers=2, progress=False)
    remote = generate(
        recycled_recipe(tmp_path, "remote.h5"), dask=scheduler, workers=2, progress=False
    )
    assert remote.complete and remote.content_sha256 == local.content_sha256


def test_dask_local_cluster(tmp_path):
    ref = generate(recipe(tmp_path, n=12, name="ref.h5"), workers=1, progress=False)
    loc = generate(recipe(tmp_path, n=12, name="loc.h5"), dask="local", workers=2, progress=False)
    assert loc.content_sha256 == ref.content_sha256


def test_bad_address_and_missing_extra(tmp_path, monkeypatch):
    with pytest.raises(RecipeError, match="tcp://HOST:8786"):
        generate(recipe(tmp_path, name="a.h5"), dask="somewhere:8786", progress=False)
    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(RecipeError, match=r"neuralops-pde\[distributed\]"):
        generate(recipe(tmp_path, name="b.h5"), dask="local", progress=False)
