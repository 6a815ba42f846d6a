"""``ResumableSampler``: a ``DistributedSampler``-like sampler that can start mid-epoch.

The permutation of an epoch is a function of ``(seed, epoch)`` only, so a resumed run sees the same order,
and :meth:`ResumableSampler.set_epoch` with ``start_batch=k`` skips the ``k`` batches already consumed in
that epoch without reading them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["ResumableSampler", "mix_seed"]


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (e.g. ``(seed, epoch, worker_id)``), well mixed by ``SeedSequence``,
    so that ``(seed, epoch + 1)`` and ``(seed + 1, epoch)`` give unrelated streams."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class ResumableSampler(torch.utils.data.Sampler[int]):
    """Indices ``0..n-1`` for one rank, shuffled per epoch from ``(seed, epoch)``.

    Like :class:`torch.utils.data.DistributedSampler`: the epoch's permutation is padded by wrapping
    around (or, with ``drop_last=True``, truncated) to a multiple of ``world_size``, and rank ``r`` takes
    every ``world_size``-th index from position ``r``, so ranks never overlap (without padding).
    ``batch_size`` is only used to turn ``start_batch`` into a number of indices to skip.

    >>> s = ResumableSampler(10, seed=0, batch_size=4)
    >>> s.set_epoch(1, start_batch=2)
    >>> len(s), list(s) == list(ResumableSampler(10, seed=0, batch_size=4).epoch_indices(1))[8:]
    (2, True)
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        batch_size: int = 1,
    ) -> None:
        if n < 1:
            raise ValueError(f"ResumableSampler needs n >= 1 samples, got {n}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and n < world_size:
            raise ValueError(
                f"drop_last=True with n={n} < world_size={world_size} leaves no samples"
            )
        self.n, self.seed, self.shuffle = int(n), int(seed), bool(shuffle)
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), bool(drop_last)
        self.batch_size = int(batch_size)
        self.num_samples = (
            n // world_size if drop_last else math.ceil(n / world_size)
        )  #: indices per rank and epoch
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, *, start_batch: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start_batch`` batches of this rank."""
        if start_batch < 0 or start_batch * self.batch_size > self.num_samples:
            raise ValueError(
                f"start_batch={start_batch} is outside the epoch ({self.batches_per_epoch} batches)"
            )
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    @property
    def batches_per_epoch(self) -> int:
        """Batches of ``batch_size`` per rank and epoch (the last one may be short)."""
        return math.ceil(self.num_samples / self.batch_size)

    def epoch_indices(self, epoch: int) -> list[int]:
        """All indices of this rank for ``epoch``, ignoring ``start_batch``."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(mix_seed(self.seed, int(epoch)))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.num_samples * self.world_size
        if total > self.n:  # pad by wrapping around, as DistributedSampler does
            reps = math.ceil((total - self.n) / self.n)
            order = order + (order * reps)[: total - self.n]
        else:
            order = order[:total]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices(self.epoch)[self.start_batch * self.batch_size :])

    def __len__(self) -> int:
        return self.num_samples - min(self.start_batch * self.batch_size, self.num_samples)

    def __repr__(self) -> str:
        return (
            f"ResumableSampler(n={self.n}, seed={self.seed}, shuffle={self.shuffle}, rank={self.rank}, "
            f"world_size={self.world_size}, epoch={self.epoch}, start_batch={self.start_batch})"
        )
