"""Single-family batches for multi-operator training: :class:`FamilyDataset` and :class:`FamilyBatchSampler`.

Families have different channel counts, so a batch never mixes them. :class:`FamilyDataset` lays the
families' datasets end to end (global index = family offset + local index) and tags every item with
its ``family``; :class:`FamilyBatchSampler` yields lists of global indices, one family per batch, with
the families drawn in proportion to ``n_f ** temperature`` (models.md §5.2, T = 1 by default).

An epoch has ``ceil(sum_f n_f / batch_size)`` batches. Family ``f`` gets the largest-remainder
rounding of ``N * p_f`` of them (``p_f`` from :func:`~neuralops.models.multiop.family_weights`), so
the counts follow the weights exactly up to rounding; the order of the batches is a permutation drawn
from ``(seed, epoch)``, and each family reads its samples from its own stream of permutations drawn
from ``(seed, epoch, family)``. With T = 1 and every ``n_f`` a multiple of the batch size, an epoch
visits every sample exactly once. Everything is a function of ``(seed, epoch)``, so
``set_epoch(epoch, start_batch=k)`` resumes in the middle of an epoch without reading anything.
Under DDP (``rank``, ``world_size``) rank ``r`` takes batches ``r, r + W, r + 2W, ...`` of the
epoch's list, wrapping around so that every rank takes the same number of steps.

>>> s = FamilyBatchSampler({"poisson": 8, "heat": 24}, batch_size=4, seed=0)
>>> s.counts
{'poisson': 2, 'heat': 6}
>>> [s.family_of(b[0]) for b in s][:3] == [f for f, _ in s.epoch_batches(0)][:3]
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from neuralops.models.multiop import family_weights
from neuralops.train.sampler import mix_seed

__all__ = ["FamilyBatchSampler", "FamilyDataset", "allocate", "batch_family", "family_datasets"]


def allocate(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder; ties go to
    the family listed first). The counts sum to ``total`` and each is within 1 of ``total * w``.

    >>> allocate(5, {"a": 0.25, "b": 0.75})
    {'a': 1, 'b': 4}
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    s = sum(weights.values())
    if not weights or s <= 0:
        raise ValueError(f"weights must be positive, got {dict(weights)}")
    quota = {k: total * w / s for k, w in weights.items()}
    counts = {k: math.floor(q) for k, q in quota.items()}
    order = sorted(quota, key=lambda k: -(quota[k] - counts[k]))  # stable: ties keep their order
    for k in order[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


class FamilyDataset(torch.utils.data.Dataset):
    """The datasets of several families end to end; item ``i`` is its family's item (a dict) with
    ``"family"`` (the name) added. ``offsets[f]`` is the global index of family ``f``'s first item.

    >>> data = FamilyDataset({"a": [{"input": 0}] * 2, "b": [{"input": 1}] * 3})
    >>> len(data), data[3]["family"], data.locate(3)
    (5, 'b', ('b', 1))
    """

    def __init__(self, datasets: Mapping[str, Any]) -> None:
        if not datasets:
            raise ValueError("FamilyDataset needs at least one family {name: dataset}")
        self.datasets = dict(datasets)
        self.sizes = {name: len(d) for name, d in self.datasets.items()}
        empty = [name for name, n in self.sizes.items() if n == 0]
        if empty:
            raise ValueError(f"the datasets of families {empty} are empty")
        self.offsets: dict[str, int] = {}
        start = 0
        for name, n in self.sizes.items():
            self.offsets[name] = start
            start += n
        self._len = start

    def __len__(self) -> int:
        return self._len

    def locate(self, idx: int) -> tuple[str, int]:
        """``(family, local index)`` of global item ``idx``."""
        if not 0 <= idx < self._len:
            raise IndexError(f"item {idx} out of range for {self._len} items")
        for name, start in reversed(self.offsets.items()):
            if idx >= start:
                return name, idx - start
        raise AssertionError("unreachable")

    def __getitem__(self, idx: int) -> dict[str, Any]:
        name, local = self.locate(int(idx))
        item = self.datasets[name][local]
        if not isinstance(item, Mapping):
            raise TypeError(
                f"family {name!r} item {local} is a {type(item).__name__}; multi-operator training "
                "needs dict items with 'input' and 'target' (as PDEDataset gives)"
            )
        return {**item, "family": name}

    def __repr__(self) -> str:
        return f"FamilyDataset({self.sizes})"


class FamilyBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of global indices into a :class:`FamilyDataset`, one family each (see the module doc).

    ``sizes``: items per family (in the dataset's order); ``temperature`` T: family weights
    ``∝ n_f ** T`` (1: every sample equally likely; 0: every family equally likely);
    ``batches_per_epoch``: default ``ceil(sum n_f / batch_size)``. A family smaller than the batch
    size gives batches of all its items.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        batch_size: int,
        *,
        seed: int,
        temperature: float = 1.0,
        batches_per_epoch: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        self.sizes = {str(k): int(v) for k, v in sizes.items()}
        self.weights = family_weights(self.sizes, temperature)
        self.batch_size, self.seed, self.temperature = batch_size, int(seed), float(temperature)
        self.rank, self.world_size = int(rank), int(world_size)
        n = batches_per_epoch or math.ceil(sum(self.sizes.values()) / batch_size)
        if n < 1:
            raise ValueError(f"batches_per_epoch must be >= 1, got {batches_per_epoch!r}")
        #: batches per family and epoch (all ranks together)
        self.counts = allocate(n, self.weights)
        #: batches in one epoch, all ranks together
        self.global_batches = n
        self.offsets: dict[str, int] = {}
        start = 0
        for name, size in self.sizes.items():
            self.offsets[name] = start
            start += size
        self.epoch = self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        """Batches in one epoch on this rank: ``ceil(global_batches / world_size)`` (as
        ``DistributedSampler`` does, the last round wraps around so every rank has as many)."""
        return math.ceil(self.global_batches / self.world_size)

    def set_epoch(self, epoch: int, *, start_batch: int = 0) -> None:
        """Select the epoch and skip its first ``start_batch`` batches."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(
                f"start_batch={start_batch} is outside the epoch ({self.batches_per_epoch} batches)"
            )
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def family_of(self, index: int) -> str:
        """The family of a global index."""
        for name, start in reversed(self.offsets.items()):
            if index >= start:
                return name
        raise IndexError(f"index {index} is negative")

    def epoch_batches(self, epoch: int) -> list[tuple[str, list[int]]]:
        """Every batch of ``epoch`` as ``(family, global indices)``, ignoring ``start_batch``."""
        names = list(self.sizes)
        labels = [i for i, name in enumerate(names) for _ in range(self.counts[name])]
        g = torch.Generator()
        g.manual_seed(mix_seed(self.seed, int(epoch)))
        order = torch.randperm(len(labels), generator=g).tolist()
        streams = [self._stream(epoch, i, name) for i, name in enumerate(names)]
        return [(names[labels[k]], next(streams[labels[k]])) for k in order]

    def _stream(self, epoch: int, i: int, name: str) -> Iterator[list[int]]:
        """Batches of family ``name`` in order: consecutive permutations, cut into full batches."""
        n, start = self.sizes[name], self.offsets[name]
        size = min(self.batch_size, n)
        g = torch.Generator()
        g.manual_seed(mix_seed(self.seed, int(epoch), 1 + i))
        buffer: list[int] = []
        while True:
            while len(buffer) < size:
                buffer += torch.randperm(n, generator=g).tolist()
            yield [start + j for j in buffer[:size]]
            buffer = buffer[size:]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches(self.epoch)
        n, w = len(batches), self.world_size
        for k in range(self.start_batch, self.batches_per_epoch):
            yield batches[(k * w + self.rank) % n][1]

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __repr__(self) -> str:
        return (
            f"FamilyBatchSampler(sizes={self.sizes}, batch_size={self.batch_size}, "
            f"temperature={self.temperature}, counts={self.counts}, seed={self.seed}, "
            f"rank={self.rank}/{self.world_size}, "
            f"epoch={self.epoch}, start_batch={self.start_batch})"
        )


def batch_family(batch: Mapping[str, Any]) -> str:
    """The one family of a batch collated from :class:`FamilyDataset` items (its ``"family"`` entries)."""
    names = set(batch["family"])
    if len(names) != 1:
        raise ValueError(f"a batch mixes families {sorted(names)}; batches must hold one family")
    return names.pop()


def family_datasets(
    model: Any, train: Mapping[str, Any], val: Mapping[str, Any] | None
) -> tuple[FamilyDataset, dict[str, Any] | None]:
    """Check per-family training (and validation) data against ``model``'s families; returns the
    training data as one :class:`FamilyDataset` and the validation mapping."""
    known = getattr(model, "families", None)
    if not isinstance(known, list | tuple):
        raise TypeError(
            f"train_data is a mapping of families, but {type(model).__name__} does not route "
            "families; use neuralops.models.multiop.MultiOperatorModel (or give one dataset)"
        )
    if val is not None and not isinstance(val, Mapping):
        raise TypeError("with train_data given per family, give val_data per family too")
    unknown = sorted({f for f in [*train, *(val or {})] if f not in known})
    if unknown:
        raise ValueError(
            f"families {unknown} are not in the model, which has {list(known)}; add them first "
            "(model.add_family or prepare_finetune)"
        )
    return FamilyDataset(train), (dict(val) if val else None)
