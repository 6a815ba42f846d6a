"""Dask distributed backend of ``neuralops generate`` (``--dask local`` or ``--dask tcp://HOST:PORT``).

Units of work (a sample, or a recycling chain) become tasks; at most ``2 x workers`` are in flight
(``workers`` = the cluster's worker threads), so a cluster of any size never holds the whole
dataset. Results travel back to the client, which stays the single writer: no shared filesystem
is needed. Each worker process builds the family and solver from the recipe text once and keeps
them (keyed by the recipe's sha256). Sample ``i`` draws from the same seeded generator as in a
local run, so on identical software the file is bit-identical to the single-machine one; machines
with another BLAS or CPU may differ in the last bits.

``local`` starts a ``LocalCluster`` of single-threaded worker processes on loopback (one BLAS
thread each, as the local pool); on a real cluster, start workers with ``--nthreads 1`` and
``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` for the same guarantee.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from neuralops.data.errors import RecipeError

__all__ = ["run_dask"]

log = logging.getLogger(__name__)

_INSTALL = "pip install 'neuralops-pde[distributed]'"


def _task(recipe_text: str, source: str, sha256: str, fn_name: str, unit: Any) -> Any:
    """Runs on a worker: (re)build the family for this recipe once per process, then compute."""
    from neuralops.pde import _workers

    if _workers._WORKER.get("sha256") != sha256:
        _workers._init(recipe_text, source)
        _workers._WORKER["sha256"] = sha256
    return getattr(_workers, fn_name)(unit)


@contextlib.contextmanager
def _client(address: str, workers: int) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise RecipeError(f"--dask needs dask.distributed: {_INSTALL}") from None
    if address == "local":
        from neuralops.pde._workers import single_threaded_env

        with single_threaded_env():  # inherited by the spawned worker processes
            cluster = LocalCluster(
                n_workers=max(1, workers),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
            )
        with cluster, Client(cluster) as client:
            yield client
        return
    if not address.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise RecipeError(
            f"--dask {address!r}: give 'local' or a scheduler address such as tcp://HOST:8786"
        )
    try:
        client = Client(address, timeout="30s")
    except OSError as exc:
        raise RecipeError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
    with client:
        yield client


def run_dask(
    recipe: Any, fn_name: str, units: Sequence[Any], address: str, workers: int
) -> Iterator[Any]:
    """Like ``run_pool``: yields ``fn(unit)`` results as they finish, computed on a Dask cluster."""
    with _client(address, workers) as client:
        from distributed import as_completed

        slots = max(1, sum(client.nthreads().values()))
        window = 2 * slots
        log.info(
            "dask: %d worker threads at %s, %d units", slots, client.scheduler.address, len(units)
        )
        args = (recipe.text, recipe.source, recipe.sha256, fn_name)
        pending = iter(units)
        futures = [
            client.submit(_task, *args, u, pure=False) for _, u in zip(range(window), pending)
        ]
        ac = as_completed(futures)
        for fut in ac:
            try:
                result = fut.result()
            finally:
                fut.release()
            nxt = next(pending, None)
            if nxt is not None:
                ac.add(client.submit(_task, *args, nxt, pure=False))
            yield result
