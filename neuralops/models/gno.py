"""A graph neural operator: the graph kernel network (GKN) of Li et al. on PyG graphs.

After Li, Kovachki, Azizzadenesheli, Liu, Bhattacharya, Stuart, Anandkumar, "Neural Operator: Graph
Kernel Network for Partial Differential Equations" (arXiv 2003.03485). With node inputs ``x`` and
positions ``pos``:

1. lift: ``v_i = Linear([x_i, pos_i])`` (width channels);
2. ``depth`` iterations of ``v_i <- act(W v_i + b + mean_{j in N(i)} K(e_ij) v_j)``, where the edge
   kernel ``K`` is an MLP mapping ``e_ij = [pos_i, pos_j, x_i, x_j]`` to a ``width x width`` matrix
   (PyG's ``NNConv`` with mean aggregation). As in the paper, one layer (kernel, ``W``, ``b``) is
   applied ``depth`` times; ``shared=False`` gives every iteration its own;
3. project: ``Linear -> act -> Linear`` to the output channels.

Edges come from ``data.edge_index`` (row 0 the neighbour ``j``, row 1 the centre ``i``, PyG's
``source_to_target`` flow), e.g. the k-nearest-neighbour graphs of ``PDEDataset(..., view="graph")``.

**How the kernel is applied.** The kernel's last layer is linear in its hidden features
``phi(e)`` (``kernel_hidden`` of them), ``K(e) = sum_h phi_h(e) A_h + B``, so

    mean_j K(e_ij) v_j = sum_h A_h (mean_j phi_h(e_ij) v_j) + B (mean_j v_j).

The model lays the incoming edges of every node out in ``max_in_degree`` slots (padding contributes
zero), forms ``sum_j phi(e_ij) v_j^T`` per node with one batched matrix product and then applies the
``A_h``, ``B`` as one ``((H + 1) width) x width`` matrix. This is the same function as materialising
``K(e_ij)`` for every edge (the tests check it against that in float64), at
``E (H + 1) width + N (H + 1) width^2`` multiply-adds instead of ``E H width^2``; no ``E x width^2``
tensor is ever formed, and per iteration autograd keeps ``N max_in_degree width`` gathered states
and ``N (H + 1) width`` aggregates. Memory therefore grows with the *largest* in-degree: use k-NN
graphs or radius graphs with ``max_neighbors``.

>>> import torch
>>> from torch_geometric.data import Batch, Data
>>> cfg = GNOConfig(in_channels=1, out_channels=1, width=8, kernel_hidden=16, depth=2)
>>> model = GNO(cfg)
>>> ring = torch.tensor([[1, 2, 3, 0], [0, 1, 2, 3]])      # j -> i
>>> g = Data(x=torch.randn(4, 1), pos=torch.rand(4, 2), edge_index=ring)
>>> model(Batch.from_data_list([g, g])).shape      # (n_nodes, out_channels)
torch.Size([8, 1])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from neuralops.models.base import ModelConfig, PretrainedMixin, register_model
from neuralops.models.mgno import ACTIVATIONS

__all__ = ["EdgeKernel", "GNO", "GNOConfig", "GraphKernelLayer", "Neighbourhoods"]


@dataclass(frozen=True)
class GNOConfig(ModelConfig):
    """Hyperparameters of :class:`GNO` (defaults sized for a CPU).

    Parameters
    ----------
    in_channels, out_channels:
        Node input and output channels.
    space_dim:
        Dimension of the node positions ``pos``.
    width:
        Channels of the hidden node state ``v``; each kernel value is a ``width x width`` matrix.
    kernel_hidden:
        Width of the hidden layers of the edge MLP ``K``.
    kernel_layers:
        Number of hidden layers of the edge MLP (the paper's ``DenseNet([ker_in, H, H, width**2])``
        has 2).
    depth:
        Number of kernel iterations.
    shared:
        One kernel layer (edge MLP, ``W``, ``b``) applied ``depth`` times, as in the paper; False gives
        each iteration its own.
    projection_hidden:
        Hidden width of the output MLP ``width -> projection_hidden -> out_channels``.
    activation:
        ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"`` or ``"identity"``, used everywhere.
    """

    model_type: ClassVar[str] = "gno"

    in_channels: int = 1
    out_channels: int = 1
    space_dim: int = 2
    width: int = 32
    kernel_hidden: int = 64
    kernel_layers: int = 2
    depth: int = 4
    shared: bool = True
    projection_hidden: int = 64
    activation: str = "gelu"

    def __post_init__(self) -> None:
        for name in (
            "in_channels",
            "out_channels",
            "space_dim",
            "width",
            "kernel_hidden",
            "kernel_layers",
            "projection_hidden",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GNOConfig.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            raise ValueError(f"GNOConfig.depth must be an int >= 0, got {self.depth!r}")
        if not isinstance(self.shared, bool):
            raise ValueError(f"GNOConfig.shared must be True or False, got {self.shared!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"GNOConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )

    @property
    def edge_features(self) -> int:
        """Length of ``e_ij = [pos_i, pos_j, x_i, x_j]``."""
        return 2 * (self.space_dim + self.in_channels)


class EdgeKernel(nn.Module):
    """The edge MLP ``K``: ``e`` (E, edge_features) -> a ``width x width`` matrix per edge.

    ``features(e)`` gives the last hidden layer ``phi`` (E, hidden); ``matrices(e)`` the kernel values
    (E, width, width) with ``K[:, a, b]`` mapping input channel ``b`` to output channel ``a``;
    ``factors()`` the last layer as ``(hidden + 1, width_in, width_out)``, the bias last.
    """

    def __init__(self, in_features: int, hidden: int, layers: int, width: int, act: str) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            body += [nn.Linear(a, b), ACTIVATIONS[act]()]
        self.body = nn.Sequential(*body)
        self.width = width
        self.out = nn.Linear(hidden, width * width)
        with torch.no_grad():  # K(e) v keeps the scale of v: entries ~ 1/sqrt(width * hidden)
            self.out.weight.mul_(width**-0.5)
            self.out.bias.mul_(width**-0.5)

    def features(self, e: torch.Tensor) -> torch.Tensor:
        return self.body(e)

    def matrices(self, e: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(e)).reshape(-1, self.width, self.width)

    def factors(self) -> torch.Tensor:
        w = self.width
        a = self.out.weight.reshape(w, w, -1)  # (out, in, hidden)
        full = torch.cat([a, self.out.bias.reshape(w, w, 1)], dim=2)  # (out, in, hidden + 1)
        return full.permute(2, 1, 0)


class Neighbourhoods(NamedTuple):
    """Incoming edges of every node laid out in slots: ``edges`` (N, max_in_degree) edge ids and
    ``nodes`` (N, max_in_degree) their source nodes, both padded with an out-of-range id (E, N);
    ``degree`` (N,) the in-degree."""

    edges: torch.Tensor
    nodes: torch.Tensor
    degree: torch.Tensor

    @classmethod
    def from_edge_index(cls, edge_index: torch.Tensor, n_nodes: int) -> Neighbourhoods:
        """From ``edge_index`` (2, E), row 0 the source ``j`` and row 1 the target ``i``."""
        src, dst = edge_index[0], edge_index[1]
        n_edges = dst.shape[0]
        degree = torch.bincount(dst, minlength=n_nodes)
        width = int(degree.max()) if n_edges else 0
        order = torch.argsort(dst, stable=True)
        first = torch.cumsum(degree, 0) - degree  # each node's first position in `order`
        slot = torch.arange(n_edges, device=dst.device) - first[dst[order]]
        edges = torch.full((n_nodes, width), n_edges, dtype=torch.long, device=dst.device)
        edges[dst[order], slot] = order
        pad_src = torch.cat([src, src.new_full((1,), n_nodes)])
        return cls(edges, pad_src[edges], degree)

    def gather(self, values: torch.Tensor, *, by: str) -> torch.Tensor:
        """Per-edge (``by="edges"``, (E, C)) or per-node (``by="nodes"``, (N, C)) values at the slots:
        (N, max_in_degree, C), zero at padding."""
        index = self.edges if by == "edges" else self.nodes
        return torch.cat([values, values.new_zeros(1, values.shape[1])])[index]


class GraphKernelLayer(nn.Module):
    """``v_i -> W v_i + b + mean_{j in N(i)} K(e_ij) v_j`` (no activation).

    ``forward(v, phi, hood)``: ``v`` (N, width); ``phi`` (N, max_in_degree, hidden) the kernel
    features :meth:`EdgeKernel.features` of the incoming edges laid out by ``hood`` (a
    :class:`Neighbourhoods`, zero at padding); returns (N, width). A node without incoming edges gets
    ``W v_i + b``.
    """

    def __init__(self, kernel: EdgeKernel, width: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.root = nn.Linear(width, width)

    def forward(self, v: torch.Tensor, phi: torch.Tensor, hood: Neighbourhoods) -> torch.Tensor:
        n, width = v.shape
        real = (hood.nodes < n)[..., None].to(phi.dtype)  # 1 at an edge, 0 at padding
        phi1 = torch.cat([phi, real], dim=2)  # the constant feature, which carries the bias B
        vj = hood.gather(v, by="nodes")  # (N, slots, width)
        acc = phi1.transpose(1, 2) @ vj  # (N, hidden + 1, width): sum_j phi(e_ij) v_j^T
        factors = self.kernel.factors().reshape(-1, width)
        agg = (acc.reshape(n, -1) @ factors) / hood.degree.clamp_min(1)[:, None].to(v.dtype)
        return self.root(v) + agg


@register_model
class GNO(PretrainedMixin, nn.Module):
    """Graph kernel network on PyG graphs: ``model(data)`` with ``data.x`` (N, in_channels),
    ``data.pos`` (N, space_dim) and ``data.edge_index`` (2, E) (``j -> i``); returns (N, out_channels).

    Lift ``[x, pos] -> width``; ``depth`` iterations ``v <- act(W v + b + mean_j K(e_ij) v_j)`` with
    ``e_ij = [pos_i, pos_j, x_i, x_j]``; project ``width -> projection_hidden -> out_channels``.
    Graphs of a ``Batch`` interact only through their own edges, so a batch gives what each graph
    gives alone.
    """

    config_class = GNOConfig

    def __init__(self, config: GNOConfig) -> None:
        super().__init__()
        self.config = config
        w, act = config.width, config.activation

        def kernel() -> EdgeKernel:
            return EdgeKernel(
                config.edge_features, config.kernel_hidden, config.kernel_layers, w, act
            )

        self.lift = nn.Linear(config.in_channels + config.space_dim, w)
        n_layers = min(config.depth, 1) if config.shared else config.depth
        self.layers = nn.ModuleList(GraphKernelLayer(kernel(), w) for _ in range(n_layers))
        self.act = ACTIVATIONS[act]()
        self.project = nn.Sequential(
            nn.Linear(w, config.projection_hidden),
            ACTIVATIONS[act](),
            nn.Linear(config.projection_hidden, config.out_channels),
        )

    def _inputs(self, data: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.config
        pos = getattr(data, "pos", None)
        if pos is None:
            raise ValueError(
                f"GNO needs node positions: data.pos of shape (n_nodes, {cfg.space_dim})"
            )
        x = getattr(data, "x", None)
        if x is None or x.ndim != 2 or x.shape[0] != pos.shape[0]:
            raise ValueError(
                f"data.x must be (n_nodes, {cfg.in_channels}) with n_nodes = {pos.shape[0]} "
                f"(data.pos), got {None if x is None else tuple(x.shape)}"
            )
        if x.shape[1] != cfg.in_channels or pos.ndim != 2 or pos.shape[1] != cfg.space_dim:
            raise ValueError(
                f"expected {cfg.in_channels} input channels and {cfg.space_dim}-D positions, got "
                f"x {tuple(x.shape)} and pos {tuple(pos.shape)}"
            )
        edge_index = getattr(data, "edge_index", None)
        if edge_index is None:
            raise ValueError(
                "GNO needs a neighbour graph: data.edge_index of shape (2, n_edges); build one with "
                "PDEDataset(..., view='graph', graph={'k': 8}) or neuralops.data.graph.neighbours"
            )
        if edge_index.ndim != 2 or edge_index.shape[0] != 2 or edge_index.is_floating_point():
            raise ValueError(
                f"data.edge_index must be an integer tensor of shape (2, n_edges), got "
                f"{edge_index.dtype} {tuple(edge_index.shape)}"
            )
        if edge_index.numel() and (
            int(edge_index.min()) < 0 or int(edge_index.max()) >= pos.shape[0]
        ):
            raise ValueError(
                f"data.edge_index refers to nodes outside [0, {pos.shape[0]}): "
                f"min {int(edge_index.min())}, max {int(edge_index.max())}"
            )
        return x, pos.to(x.dtype), edge_index.long()

    def forward(self, data: Any) -> torch.Tensor:
        x, pos, edge_index = self._inputs(data)
        src, dst = edge_index[0], edge_index[1]
        hood = Neighbourhoods.from_edge_index(edge_index, x.shape[0])
        e = torch.cat([pos[dst], pos[src], x[dst], x[src]], dim=1)  # [pos_i, pos_j, x_i, x_j]
        v = self.lift(torch.cat([x, pos], dim=1))
        phi = None
        for k in range(self.config.depth):
            layer = self.layers[0 if self.config.shared else k]
            if phi is None or not self.config.shared:
                phi = hood.gather(layer.kernel.features(e), by="edges")
            v = self.act(layer(v, phi, hood))
        return self.project(v)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"GNO(width={c.width}, kernel_hidden={c.kernel_hidden}, depth={c.depth}, "
            f"shared={c.shared}, params={self.num_parameters():,})"
        )
