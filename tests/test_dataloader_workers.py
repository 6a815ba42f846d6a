"""DataLoader workers (fork and spawn) read exactly what an in-memory copy holds.

The file handle must never be shared across processes: a handle opened in the parent is not reused after fork
(the opening PID is recorded) and pickling for spawn drops it. Each case first reads a sample in the parent, so
a parent handle exists when the workers start.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _files import make_grid_file, make_timeseries_file
from torch.utils.data import DataLoader

from neuralops.data import PDEDataset, TimeWindow

ROOT = Path(__file__).resolve().parents[1]


class OpenedIn:
    """Transform recording the reading process and the process that opened the source's handle."""

    def __init__(self, source):
        self.source = source

    def __call__(self, item):
        item["pid"] = torch.tensor(os.getpid())
        item["opened_by"] = torch.tensor(-1 if self.source._pid is None else self.source._pid)
        return item


def expected_items(path, ds):
    """Every item of ``ds`` rebuilt from one whole-file h5py read (grid view, default fields)."""
    with h5py.File(path) as f:
        a, u = f["fields/a"][...], f["fields/u"][...]
    return [(a[i][None], u[i][None]) for i in ds.indices]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid_file(
        tmp_path_factory.mktemp("w") / "grid.h5",
        n=12,
        s=8,
        failed=(3,),
        splits={"train": range(12)},
    )


@pytest.mark.parametrize("open_mode", ["persistent", "per_item"])
def test_fork_workers_after_parent_read(grid, open_mode):
    ds = PDEDataset(grid, open_mode=open_mode)
    ds.transform = OpenedIn(ds.source)
    parent = ds[0]
    assert int(parent["pid"]) == os.getpid()
    if open_mode == "persistent":
        assert int(parent["opened_by"]) == os.getpid()  # the parent now holds a handle
    loader = DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="fork")
    inputs, targets, pids, opened = [], [], [], []
    for batch in loader:
        inputs.append(batch["input"])
        targets.append(batch["target"])
        pids += batch["pid"].tolist()
        opened += batch["opened_by"].tolist()
    expected = expected_items(grid, ds)
    assert len(expected) == 11
    np.testing.assert_array_equal(torch.cat(inputs).numpy(), np.stack([e[0] for e in expected]))
    np.testing.assert_array_equal(torch.cat(targets).numpy(), np.stack([e[1] for e in expected]))
    assert os.getpid() not in pids and len(set(pids)) == 2
    if open_mode == "persistent":
        assert opened == pids  # each worker reopened the file itself
    else:
        assert set(opened) == {-1}  # per_item keeps no handle


def test_fork_workers_time_windows(tmp_path):
    path = make_timeseries_file(tmp_path / "ts.h5", n=4, t=5)
    ds = PDEDataset(path, "all", time=TimeWindow(2, 1), inputs="w")
    reference = [ds[k] for k in range(len(ds))]
    loader = DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context="fork")
    got = [
        item
        for batch in loader
        for item in zip(batch["input"], batch["target"], batch["time"], strict=True)
    ]
    assert len(got) == len(reference) == 4 * 3
    for (x, y, t), ref in zip(got, reference, strict=True):
        torch.testing.assert_close(x, ref["input"], rtol=0, atol=0)
        torch.testing.assert_close(y, ref["target"], rtol=0, atol=0)
        torch.testing.assert_close(t, ref["time"], rtol=0, atol=0)


SPAWN_SCRIPT = """
import os
import sys

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from neuralops.data import PDEDataset


def main(path, open_mode):
    ds = PDEDataset(path, open_mode=open_mode)
    ds[0]  # the parent holds a handle before the workers start
    with h5py.File(path) as f:
        a, u = f["fields/a"][...], f["fields/u"][...]
    loader = DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="spawn")
    x = torch.cat([b["input"] for b in loader]).numpy()
    y = torch.cat([b["target"] for b in loader]).numpy()
    np.testing.assert_array_equal(x, a[ds.indices][:, None])
    np.testing.assert_array_equal(y, u[ds.indices][:, None])
    print("compared", len(x))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
"""


def test_spawn_workers_after_parent_read(grid, tmp_path):
    script = tmp_path / "spawn_loader.py"
    script.write_text(textwrap.dedent(SPAWN_SCRIPT))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, str(script), str(grid), "persistent"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "compared 11"
