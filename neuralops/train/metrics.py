"""Relative error metrics on gridded fields, as batch-mean losses and as (sum, count) accumulators.

Shapes follow the package convention: ``pred`` and ``target`` are ``(batch, channels, *spatial)``.
With ``reduction="mean"`` (the loss form) a function returns the mean over samples, a scalar, or ``(channels,)``
with ``per_channel=True``; ``reduction="none"`` returns the per-sample values ``(batch,)`` or
``(batch, channels)``, which :class:`MeanMetric` accumulates as (sum, count) so that evaluation never averages
averages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

__all__ = ["METRICS", "MeanMetric", "get_metric", "rel_h1", "rel_l1", "rel_l1_median", "rel_l2"]

_EPS = 1e-30


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape (batch, channels, *spatial); got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.ndim < 2:
        raise ValueError(f"expected (batch, channels, *spatial), got shape {tuple(pred.shape)}")


def _sq_sums(x: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """Sum of squares over (channels and) points: ``(batch,)`` or ``(batch, channels)``."""
    x2 = x.reshape(x.shape[0], x.shape[1], -1).square().sum(-1)
    return x2 if per_channel else x2.sum(-1)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean(0)
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _graph_sq_sums(x: torch.Tensor, batch: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """Per-graph sums of squares of node features ``(n_nodes, C)``: ``(graphs,)`` or ``(graphs, C)``."""
    n_graphs = int(batch.max()) + 1 if batch.numel() else 0
    x2 = x.reshape(x.shape[0], -1).square()
    out = x2.new_zeros(n_graphs, x2.shape[1]).index_add_(0, batch, x2)
    return out if per_channel else out.sum(-1)


def rel_l2(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    per_channel: bool = False,
    reduction: str = "mean",
    batch: torch.Tensor | None = None,
) -> torch.Tensor:
    """Relative L2 error ``||pred - target||_2 / ||target||_2`` per sample over channels and points.

    ``pred``, ``target``: ``(batch, channels, *spatial)``; or, for a batch of graphs, node features
    ``(n_nodes, channels)`` with ``batch`` ``(n_nodes,)`` the graph of each node (PyG's
    ``Batch.batch``): a sample is then a graph. Returns the mean over samples (a scalar, or
    ``(channels,)`` with ``per_channel=True``), or per-sample values with ``reduction="none"``.

    >>> y = torch.ones(2, 1, 4)
    >>> float(rel_l2(2 * y, y))
    1.0
    >>> nodes = torch.ones(5, 1)      # two graphs of 3 and 2 nodes; the second one is exact
    >>> rel_l2(nodes * torch.tensor([[2.], [2.], [2.], [1.], [1.]]), nodes, batch=torch.tensor([0, 0, 0, 1, 1]),
    ...        reduction="none")
    tensor([1., 0.])
    """
    if batch is not None:
        if pred.shape != target.shape or pred.ndim != 2 or batch.shape != pred.shape[:1]:
            raise ValueError(
                "graph rel_l2 needs pred and target of shape (n_nodes, channels) and batch of shape "
                f"(n_nodes,); got {tuple(pred.shape)}, {tuple(target.shape)}, {tuple(batch.shape)}"
            )
        num = _graph_sq_sums(pred - target, batch, per_channel)
        den = _graph_sq_sums(target, batch, per_channel)
    else:
        _check(pred, target)
        num = _sq_sums(pred - target, per_channel)
        den = _sq_sums(target, per_channel)
    return _reduce(torch.sqrt(num / den.clamp_min(_EPS)), reduction)


def _gradients(
    e: torch.Tensor, periodic: bool, lengths: Sequence[float] | float
) -> list[torch.Tensor]:
    """Partial derivatives of ``e`` ``(batch, channels, *spatial)`` along each spatial axis.

    Periodic grids (n points, endpoint excluded, spacing L/n) use the FFT; others (endpoints included,
    spacing L/(n-1)) second-order central differences, second-order one-sided at the boundary.
    """
    spatial = e.shape[2:]
    if isinstance(lengths, int | float):
        lengths = (float(lengths),) * len(spatial)
    if len(lengths) != len(spatial):
        raise ValueError(f"lengths has {len(lengths)} entries for {len(spatial)} spatial axes")
    grads = []
    for axis, (n, length) in enumerate(zip(spatial, lengths, strict=True)):
        dim = axis + 2
        if periodic:
            k = torch.fft.fftfreq(n, d=length / n, device=e.device, dtype=torch.float64)
            ik = (2j * math.pi * k).to(
                torch.complex128 if e.dtype == torch.float64 else torch.complex64
            )
            if n % 2 == 0:
                ik[n // 2] = 0  # the Nyquist mode has no well-defined real derivative
            shape = [1] * e.ndim
            shape[dim] = n
            de = torch.fft.ifft(torch.fft.fft(e, dim=dim) * ik.reshape(shape), dim=dim).real
            grads.append(de.to(e.dtype))
        else:
            if n < 3:
                raise ValueError(f"finite-difference H1 needs >= 3 points per axis, got {n}")
            grads.append(torch.gradient(e, spacing=length / (n - 1), dim=dim, edge_order=2)[0])
    return grads


def rel_h1(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    periodic: bool = False,
    lengths: Sequence[float] | float = 1.0,
    per_channel: bool = False,
    reduction: str = "mean",
    batch: torch.Tensor | None = None,
) -> torch.Tensor:
    """Relative H1 error: ``sqrt((||e||^2 + ||grad e||^2) / (||y||^2 + ||grad y||^2))`` per sample.

    ``pred``, ``target``: ``(batch, channels, *spatial)`` on a uniform grid over a box with side
    ``lengths`` (a number or one per spatial axis). Gradients are spectral with ``periodic=True`` and
    second-order finite differences otherwise; the quadrature weights cancel in the ratio. Returns as
    :func:`rel_l2`.
    """
    if batch is not None:
        raise ValueError("rel_h1 needs gridded fields; graph batches support rel_l2 only")
    _check(pred, target)
    if pred.ndim < 3:
        raise ValueError(f"rel_h1 needs spatial axes; got shape {tuple(pred.shape)}")
    e = (pred - target).float() if pred.dtype in (torch.float16, torch.bfloat16) else pred - target
    y = target.to(e.dtype)
    num = _sq_sums(e, per_channel)
    den = _sq_sums(y, per_channel)
    for g in _gradients(e, periodic, lengths):
        num = num + _sq_sums(g, per_channel)
    for g in _gradients(y, periodic, lengths):
        den = den + _sq_sums(g, per_channel)
    return _reduce(torch.sqrt(num / den.clamp_min(_EPS)), reduction)


def rel_l1(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    groups: Sequence[int] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Poseidon's training loss: per sample, ``mean|pred - target| / (mean|target| + 1e-10)`` within each
    channel group, averaged over the groups. ``groups`` are channel boundaries (``[0, 1, 3, 4]`` for
    [rho], [u, v], [p]); default: all channels form one group.

    >>> y = torch.ones(2, 2, 4)
    >>> float(rel_l1(y * torch.tensor([[[1.5]], [[1.0]]]), y, groups=[0, 1, 2]))
    0.25
    """
    _check(pred, target)
    cuts = list(groups) if groups is not None else [0, pred.shape[1]]
    if cuts[0] != 0 or cuts[-1] != pred.shape[1] or any(b <= a for a, b in zip(cuts, cuts[1:])):
        raise ValueError(
            f"groups must rise strictly from 0 to the channel count {pred.shape[1]}, got {cuts}"
        )
    err = (pred - target).abs()
    ref = target.abs()
    values = [
        err[:, a:b].reshape(err.shape[0], -1).mean(-1)
        / (ref[:, a:b].reshape(ref.shape[0], -1).mean(-1) + 1e-10)
        for a, b in zip(cuts, cuts[1:])
    ]
    return _reduce(torch.stack(values, -1).mean(-1), reduction)


def rel_l1_median(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Poseidon-style metric: the median over samples of ``||pred - target||_1 / ||target||_1``.

    ``pred``, ``target``: ``(batch, channels, *spatial)``; returns a scalar. (A median does not
    accumulate as (sum, count): evaluate it on the concatenated predictions.)
    """
    _check(pred, target)
    num = (pred - target).abs().reshape(pred.shape[0], -1).sum(-1)
    den = target.abs().reshape(pred.shape[0], -1).sum(-1).clamp_min(_EPS)
    return (num / den).median()


Metric = Callable[..., torch.Tensor]
METRICS: dict[str, Metric] = {"rel_l1": rel_l1, "rel_l2": rel_l2, "rel_h1": rel_h1}


def get_metric(name: str | Metric) -> Metric:
    """A metric by name (``rel_l1``, ``rel_l2``, ``rel_h1``), or a callable returned unchanged."""
    if callable(name):
        return name
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid names: {sorted(METRICS)}")
    return METRICS[name]


class MeanMetric:
    """Accumulates per-sample values as (sum, count); ``compute()`` is the exact mean over all samples.

    Under DDP, :meth:`all_reduce` sums both across ranks before ``compute()``.

    >>> m = MeanMetric()
    >>> m.update(torch.tensor([1.0, 2.0])); m.update(torch.tensor([6.0]))
    >>> m.compute()
    3.0
    """

    def __init__(self) -> None:
        self.sum: torch.Tensor | None = None
        self.count = 0

    def update(self, values: torch.Tensor) -> None:
        """Add per-sample values ``(batch,)`` (or ``(batch, channels)``)."""
        v = values.detach().to(torch.float64).sum(0)
        self.sum = v if self.sum is None else self.sum + v
        self.count += int(values.shape[0])

    def all_reduce(self) -> None:
        """Sum (sum, count) over the default process group (no-op when not distributed)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        # a rank that saw no sample still joins the collective (with a scalar zero sum)
        if self.sum is not None:
            total = self.sum
        else:
            nccl = dist.get_backend() == "nccl"
            device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
            total = torch.zeros((), dtype=torch.float64, device=device)
        buf = torch.cat([total.reshape(-1), total.new_tensor([self.count])])
        dist.all_reduce(buf)
        self.sum, self.count = buf[:-1].reshape(total.shape), int(buf[-1].item())

    def compute(self) -> float | list[float]:
        """The mean: a float, or a list for per-channel values. Raises if nothing was added."""
        if self.sum is None or self.count == 0:
            raise ValueError("MeanMetric.compute() called before any update()")
        mean = self.sum / self.count
        return float(mean) if mean.ndim == 0 else mean.tolist()
