"""Tiny schema-v1 files for tests, written with :class:`neuralops.data.DatasetWriter`.

Every builder writes a finalized file (statistics over the train split, content digest) and returns its path.
Values are random but seeded, so tests compare what a reader returns with the raw h5py arrays.

- :func:`make_grid_file`: steady 2-D data, input ``a``, target ``u``, optional vector target ``v`` (channels
  ``vx, vy``), params ``k`` (scalar) and ``bc`` (2,), coords ``x`` on [0, 1] and ``y`` on [0, 2].
- :func:`make_timeseries_file`: trajectories ``w`` (role ``input,target``, dims sample/time/x/y), a static input
  ``f``, param ``nu``, coords ``t`` with step ``DT``.
- :func:`make_ragged_file`: mesh data with per-sample node counts, input ``kappa``, target ``T``, nodes in
  [0, 1]^2.

``failed`` samples are written as failed (NaN fields, an error message); ``pending`` ones are never written, so
the file stays incomplete. Splits default to half train, a quarter val, the rest test (ok samples only).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from neuralops.data import FAILED, DatasetWriter, FieldSpec, ParamSpec, SolverRecord

__all__ = ["make_grid_file", "make_timeseries_file", "make_ragged_file", "default_splits", "DT"]

DT = 0.1
RECIPE = '[dataset]\nname = "test"\n'


def default_splits(n: int) -> dict[str, np.ndarray]:
    """Half train, a quarter val, the rest test, by index."""
    idx = np.arange(n)
    a, b = n // 2, n // 2 + n // 4
    return {"train": idx[:a], "val": idx[a:b], "test": idx[b:]}


def _fill(
    writer: DatasetWriter,
    n: int,
    sample,
    failed: Iterable[int],
    pending: Iterable[int],
    splits: Mapping[str, Iterable[int]] | None,
) -> None:
    failed, pending = set(failed), set(pending)
    rng = np.random.default_rng(1234)
    for i in range(n):
        fields, params, extra = sample(rng, i)
        if i in pending:
            continue
        rec = SolverRecord(
            iterations=10 + i, residual=1e-10 * (i + 1), seconds=0.5, converged=i not in failed
        )
        if i in failed:
            empty = {"pos": np.zeros((0, 2))} if writer.ragged else {}
            writer.write_sample(
                i,
                params=params,
                solver=rec,
                status=FAILED,
                error=f"CG stalled at sample {i}",
                **empty,
            )
        else:
            writer.write_sample(i, fields=fields, params=params, solver=rec, **extra)
    writer.write_splits({k: np.asarray(list(v)) for k, v in (splits or default_splits(n)).items()})
    writer.finalize()


def make_grid_file(
    path: str | os.PathLike,
    n: int = 8,
    s: int = 16,
    *,
    failed: Iterable[int] = (),
    pending: Iterable[int] = (),
    nan: Iterable[int] = (),
    vector: bool = False,
    splits: Mapping[str, Iterable[int]] | None = None,
    pde: str = "darcy",
    fletcher32: bool = True,
) -> Path:
    """``n`` samples on an ``s`` x ``s`` grid; ``nan`` lists ok samples whose ``u`` holds one NaN."""
    nan = set(nan)
    fields = [
        FieldSpec("a", "input", (s, s), ("sample", "x", "y"), description="coefficient"),
        FieldSpec("u", "target", (s, s), ("sample", "x", "y"), units="m"),
    ]
    if vector:
        fields.append(
            FieldSpec(
                "v",
                "target",
                (s, s, 2),
                ("sample", "x", "y", "component"),
                units="m/s",
                channels=("vx", "vy"),
            )
        )
    params = [ParamSpec("k", units="1/m", distribution="U(1,2)"), ParamSpec("bc", shape=(2,))]

    def sample(rng, i):
        a = 1.0 + rng.random((s, s))
        u = rng.standard_normal((s, s)) + i
        if i in nan:
            u[s // 2, 1] = np.nan
        out = {"a": a, "u": u}
        if vector:
            out["v"] = rng.standard_normal((s, s, 2))
        return out, {"k": 1.0 + rng.random(), "bc": rng.random(2)}, {}

    path = Path(path)
    with DatasetWriter(
        path,
        pde=pde,
        n_samples=n,
        fields=fields,
        spatial_dims=["x", "y"],
        params=params,
        coords={"x": np.linspace(0.0, 1.0, s), "y": np.linspace(0.0, 2.0, s)},
        seed=3,
        recipe_text=RECIPE,
        fletcher32=fletcher32,
    ) as w:
        _fill(w, n, sample, failed, pending, splits)
    return path


def make_timeseries_file(
    path: str | os.PathLike,
    n: int = 4,
    t: int = 6,
    s: int = 8,
    *,
    failed: Iterable[int] = (),
    pending: Iterable[int] = (),
    splits: Mapping[str, Iterable[int]] | None = None,
) -> Path:
    """``n`` trajectories of ``t`` snapshots (``t_k = k * DT``) on an ``s`` x ``s`` grid."""
    fields = [
        FieldSpec("w", "input,target", (t, s, s), ("sample", "time", "x", "y"), units="1/s"),
        FieldSpec("f", "input", (s, s), ("sample", "x", "y"), description="forcing"),
    ]

    def sample(rng, i):
        w = rng.standard_normal((t, s, s)) + np.arange(t)[:, None, None]
        return {"w": w, "f": rng.random((s, s))}, {"nu": 10.0 ** -(i + 3)}, {}

    path = Path(path)
    with DatasetWriter(
        path,
        pde="ns2d_vorticity",
        n_samples=n,
        fields=fields,
        spatial_dims=["x", "y"],
        params=[ParamSpec("nu", units="m^2/s")],
        recipe_text=RECIPE,
        coords={"x": np.linspace(0, 1, s), "y": np.linspace(0, 1, s), "t": DT * np.arange(t)},
    ) as w:
        _fill(w, n, sample, failed, pending, splits)
    return path


def make_ragged_file(
    path: str | os.PathLike,
    n: int = 5,
    *,
    nodes: tuple[int, int] = (20, 40),
    failed: Iterable[int] = (),
    splits: Mapping[str, Iterable[int]] | None = None,
) -> Path:
    """``n`` meshes with a random node count in ``nodes`` (inclusive), nodes uniform in [0, 1]^2."""
    fields = [
        FieldSpec("kappa", "input", (1,), ("node", "component")),
        FieldSpec("T", "target", (1,), ("node", "component"), units="K"),
    ]

    def sample(rng, i):
        m = int(rng.integers(nodes[0], nodes[1] + 1))
        pos = rng.random((m, 2))
        values = {"kappa": 1.0 + rng.random((m, 1)), "T": 100.0 * rng.random((m, 1))}
        return values, {"q": -rng.random()}, {"pos": pos}

    path = Path(path)
    with DatasetWriter(
        path,
        pde="heat",
        n_samples=n,
        fields=fields,
        spatial_dims=["x", "y"],
        ragged=True,
        params=[ParamSpec("q", units="W/m^2")],
        recipe_text=RECIPE,
    ) as w:
        _fill(w, n, sample, failed, (), splits)
    return path
