"""A Transolver-style mesh transformer: physics attention over learned slices of a point cloud.

After Wu et al., "Transolver: A Fast Transformer Solver for PDEs on General Geometries" (ICML 2024,
arXiv 2402.02366). Per head, with N points and M learned slices:

1. slice weights ``w_i = softmax_M(Linear(x_i) / tau)`` (a learned temperature per head, 0.5 at
   initialisation);
2. slice tokens ``s_j = sum_i w_ij f_i / sum_i w_ij`` with ``f = Linear(x)``;
3. ordinary softmax attention among the M tokens;
4. back to the points: ``x'_i = sum_j w_ij s'_j``.

The cost is O(N M d + M^2 d): linear in the number of points, and no neighbour graph is needed.
Slices are pooled **per graph** of a PyG batch (points of other graphs, and padding, get no
weight), so a batch of meshes of different sizes gives what each mesh gives alone.

>>> import torch
>>> from torch_geometric.data import Batch, Data
>>> cfg = MeshTransformerConfig(in_channels=1, out_channels=1, hidden=16, layers=2, heads=2, slices=8)
>>> model = MeshTransformer(cfg)
>>> g = Data(x=torch.randn(30, 1), pos=torch.rand(30, 2))
>>> model(Batch.from_data_list([g, g])).shape      # (n_nodes, out_channels)
torch.Size([60, 1])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from neuralops.models.base import ModelConfig, PretrainedMixin, register_model

__all__ = ["MeshTransformer", "MeshTransformerConfig", "PhysicsAttention"]


@dataclass(frozen=True)
class MeshTransformerConfig(ModelConfig):
    """Hyperparameters of :class:`MeshTransformer` (defaults: the reference Darcy script)."""

    model_type: ClassVar[str] = "mesh_transformer"

    in_channels: int = 1
    out_channels: int = 1
    space_dim: int = 2
    hidden: int = 128
    layers: int = 8
    heads: int = 8
    slices: int = 64
    mlp_ratio: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "space_dim", "hidden", "heads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"MeshTransformerConfig.{name} must be >= 1")
        if self.hidden % self.heads:
            raise ValueError(
                f"hidden={self.hidden} must be divisible by heads={self.heads} "
                f"(e.g. hidden={self.heads * max(1, self.hidden // self.heads)})"
            )
        if self.layers < 0:
            raise ValueError("MeshTransformerConfig.layers must be >= 0")
        if self.slices < 1 or self.mlp_ratio < 1:
            raise ValueError("MeshTransformerConfig.slices and mlp_ratio must be >= 1")


def _dense(x: torch.Tensor, batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Node features (N, d) -> (graphs, N_max, d) zero-padded, and the mask (graphs, N_max)."""
    if batch is None:
        return x.unsqueeze(0), torch.ones(1, x.shape[0], dtype=torch.bool, device=x.device)
    from torch_geometric.utils import to_dense_batch

    return to_dense_batch(x, batch)


class PhysicsAttention(nn.Module):
    """Multi-head physics attention on ``x`` (graphs, N, hidden) with point ``mask`` (graphs, N).

    Returns ``(out, w)``: out (graphs, N, hidden) and the slice weights w (graphs, heads, N, slices),
    zero at masked points and summing to 1 over slices elsewhere.
    """

    def __init__(self, hidden: int, heads: int, slices: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, hidden // heads
        self.temperature = nn.Parameter(torch.full((1, heads, 1, 1), 0.5))
        self.in_x = nn.Linear(hidden, hidden)
        self.in_fx = nn.Linear(hidden, hidden)
        self.to_slice = nn.Linear(self.dim_head, slices)
        nn.init.orthogonal_(self.to_slice.weight)
        self.q = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.k = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.v = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.Dropout(dropout))

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        g, n, _ = t.shape
        return t.reshape(g, n, self.heads, self.dim_head).transpose(1, 2)  # (g, h, n, dh)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fx, xs = self._split(self.in_fx(x)), self._split(self.in_x(x))
        w = torch.softmax(self.to_slice(xs) / self.temperature, dim=-1)  # (g, h, n, m)
        w = w * mask[:, None, :, None].to(w.dtype)
        norm = w.sum(2)  # (g, h, m)
        tokens = torch.einsum("bhnc,bhnm->bhmc", fx, w) / (norm[..., None] + 1e-5)
        q, k, v = self.q(tokens), self.k(tokens), self.v(tokens)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dim_head), dim=-1)
        out = torch.einsum("bhmc,bhnm->bhnc", att @ v, w)
        g, h, n, dh = out.shape
        return self.out(out.transpose(1, 2).reshape(g, n, h * dh)), w


class _Block(nn.Module):
    def __init__(self, cfg: MeshTransformerConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.attn = PhysicsAttention(h, cfg.heads, cfg.slices, cfg.dropout)
        self.mlp = nn.Sequential(
            nn.Linear(h, h * cfg.mlp_ratio), nn.GELU(), nn.Linear(h * cfg.mlp_ratio, h)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)[0]
        return x + self.mlp(self.ln2(x))


@register_model
class MeshTransformer(PretrainedMixin, nn.Module):
    """Transolver on PyG graphs: ``model(data)`` with ``data.x`` (N, in_channels), ``data.pos``
    (N, space_dim) and, for a ``Batch``, ``data.batch`` (N,); returns (N, out_channels).

    Input: ``[x, pos]`` -> MLP (-> 2 hidden -> hidden) plus a learned placeholder; ``layers``
    pre-norm blocks ``x + PhysAttn(LN x)``, ``x + MLP(LN x)``; output LN -> Linear. Edges are not
    used (physics attention needs no neighbour graph).
    """

    config_class = MeshTransformerConfig

    def __init__(self, config: MeshTransformerConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.embed = nn.Sequential(
            nn.Linear(config.in_channels + config.space_dim, 2 * h), nn.GELU(), nn.Linear(2 * h, h)
        )
        self.placeholder = nn.Parameter(torch.rand(h) / h)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.layers))
        self.head = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, config.out_channels))

    def forward(self, data: Any) -> torch.Tensor:
        pos = getattr(data, "pos", None)
        if pos is None:
            raise ValueError(
                "MeshTransformer needs node positions: data.pos of shape (n_nodes, space_dim)"
            )
        x = data.x
        if x is None or x.shape[0] != pos.shape[0]:
            raise ValueError(
                f"data.x must be (n_nodes, {self.config.in_channels}) with n_nodes = "
                f"{pos.shape[0]} (data.pos), got {None if x is None else tuple(x.shape)}"
            )
        if x.shape[-1] != self.config.in_channels or pos.shape[-1] != self.config.space_dim:
            raise ValueError(
                f"expected {self.config.in_channels} input channels and {self.config.space_dim}-D "
                f"positions, got x {tuple(x.shape)} and pos {tuple(pos.shape)}"
            )
        h = self.embed(torch.cat([x, pos.to(x.dtype)], dim=-1)) + self.placeholder
        dense, mask = _dense(h, getattr(data, "batch", None))
        for block in self.blocks:
            dense = block(dense, mask)
        return self.head(dense[mask])
