"""ResumableSampler: order from (seed, epoch) only, rank partition, mid-epoch start."""

import pytest

from neuralops.train.sampler import ResumableSampler


def test_permutation_depends_only_on_seed_and_epoch():
    a = ResumableSampler(20, seed=3)
    b = ResumableSampler(20, seed=3)
    list(b)  # consuming one does not change the other's order
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    assert sorted(a) == list(range(20))
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(ResumableSampler(20, seed=4).epoch_indices(2)) != a.epoch_indices(2)
    # (seed, epoch + 1) is not (seed + 1, epoch)
    assert ResumableSampler(20, seed=0).epoch_indices(1) != ResumableSampler(
        20, seed=1
    ).epoch_indices(0)


@pytest.mark.parametrize("n,ws", [(20, 2), (21, 4), (5, 3)])
def test_ranks_partition_like_distributed_sampler(n, ws):
    parts = [ResumableSampler(n, seed=1, rank=r, world_size=ws).epoch_indices(5) for r in range(ws)]
    assert len({len(p) for p in parts}) == 1
    flat = [i for p in parts for i in p]
    assert set(flat) == set(range(n))
    assert len(flat) - n == (-n) % ws  # only the wrap-around padding repeats
    dropped = [
        ResumableSampler(n, seed=1, rank=r, world_size=ws, drop_last=True).epoch_indices(5)
        for r in range(ws)
    ]
    flat = [i for p in dropped for i in p]
    assert len(flat) == len(set(flat)) == (n // ws) * ws


def test_start_batch_skips_consumed_batches():
    s = ResumableSampler(10, seed=0, batch_size=3)
    full = s.epoch_indices(4)
    s.set_epoch(4, start_batch=2)
    assert list(s) == full[6:] and len(s) == 4
    s.set_epoch(5)
    assert len(s) == 10 and s.batches_per_epoch == 4
    with pytest.raises(ValueError, match="outside the epoch"):
        s.set_epoch(0, start_batch=5)


def test_no_shuffle_is_identity():
    assert list(ResumableSampler(5, seed=0, shuffle=False)) == [0, 1, 2, 3, 4]
