"""Graph neural operator (graph kernel network, NNConv with mean aggregation) on PyG graphs."""

import json

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from neuralops.data.graph import GraphSpec, neighbours
from neuralops.models import GNO, GNOConfig, build_model, load_pretrained

CFG = GNOConfig(in_channels=2, out_channels=1, width=8, kernel_hidden=16, depth=3)


def _graph(n: int, seed: int, k: int = 6) -> Data:
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 2, generator=g)
    edge_index = torch.from_numpy(neighbours(pos.numpy(), GraphSpec(k=k)))
    return Data(x=torch.randn(n, 2, generator=g), pos=pos, edge_index=edge_index)


def test_forward_shape_and_a_gradient_for_every_parameter():
    torch.manual_seed(0)
    for shared in (True, False):
        model = GNO(
            GNOConfig(
                in_channels=2, out_channels=3, width=8, kernel_hidden=16, depth=2, shared=shared
            )
        )
        out = model(_graph(40, 0))
        assert out.shape == (40, 3)
        out.square().sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert len(GNO(CFG).layers) == 1 and len(GNO(GNOConfig(depth=3, shared=False)).layers) == 3


def test_node_permutation_equivariance():
    torch.manual_seed(0)
    model = GNO(CFG).eval()
    g = _graph(50, 1)
    perm = torch.randperm(50)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(50)
    permuted = Data(x=g.x[perm], pos=g.pos[perm], edge_index=inv[g.edge_index])
    torch.testing.assert_close(model(permuted), model(g)[perm], atol=1e-5, rtol=0)


def test_batch_of_two_sizes_equals_separate_runs():
    torch.manual_seed(0)
    model = GNO(CFG).eval()
    a, b = _graph(40, 2), _graph(73, 3)
    both = model(Batch.from_data_list([a, b]))
    torch.testing.assert_close(both[:40], model(a), atol=1e-5, rtol=0)
    torch.testing.assert_close(both[40:], model(b), atol=1e-5, rtol=0)


def test_mean_aggregation_matches_dense_kernel_matrices_float64():
    """The factored aggregation equals materialising K(e_ij) for every edge, in float64, with edges
    in no particular order, unequal in-degrees and a node without incoming edges."""
    torch.manual_seed(0)
    cfg = GNOConfig(in_channels=1, out_channels=2, width=4, kernel_hidden=5, depth=2, shared=False)
    model = GNO(cfg).double().eval()
    n = 6
    edges = [(3, 2), (1, 0), (0, 3), (2, 0), (0, 4), (5, 0), (1, 3), (0, 1), (4, 2), (2, 3)]
    edge_index = torch.tensor(edges).T  # row 0 j, row 1 i; node 5 has no incoming edge
    x = torch.randn(n, 1, dtype=torch.float64)
    pos = torch.rand(n, 2, dtype=torch.float64)
    data = Data(x=x, pos=pos, edge_index=edge_index)

    act = torch.nn.functional.gelu
    v = model.lift(torch.cat([x, pos], 1))
    for layer in model.layers:
        new = torch.zeros_like(v)
        for i in range(n):
            js = [j for j, c in edges if c == i]
            new[i] = layer.root(v[i])
            if js:
                e = torch.stack([torch.cat([pos[i], pos[j], x[i], x[j]]) for j in js])
                K = layer.kernel.matrices(e)  # (deg, width, width)
                new[i] += torch.stack([K[t] @ v[j] for t, j in enumerate(js)]).mean(0)
        v = act(new)
    dense = model.project(v)
    torch.testing.assert_close(model(data), dense, atol=1e-12, rtol=1e-12)
    flipped = Data(x=x, pos=pos, edge_index=edge_index.flip(1))  # edge order does not matter
    torch.testing.assert_close(model(flipped), dense, atol=1e-12, rtol=1e-12)


def test_overfits_one_mesh_of_500_points():
    torch.manual_seed(0)
    g = _graph(500, 4, k=8)
    y = (torch.sin(3 * g.pos[:, :1]) * g.x[:, :1] + g.pos[:, 1:]).detach()
    model = GNO(GNOConfig(in_channels=2, width=12, kernel_hidden=16, depth=2))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def rel() -> float:
        with torch.no_grad():
            return float(torch.linalg.norm(model(g) - y) / torch.linalg.norm(y))

    before = rel()
    for _ in range(200):
        opt.zero_grad()
        loss = ((model(g) - y) ** 2).mean()
        loss.backward()
        opt.step()
    after = rel()
    assert after < 0.1 * before and after < 0.08, (before, after)  # 0.96 -> 0.042


def test_save_load_round_trip_bitwise(tmp_path):
    torch.manual_seed(0)
    model = build_model("gno", in_channels=2, width=8, kernel_hidden=16, depth=2, shared=False)
    model.eval()
    g = _graph(60, 5)
    folder = model.save_pretrained(tmp_path / "m", metadata={"note": "test"})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["model_type"] == "gno"
    again = load_pretrained(folder)
    assert isinstance(again, GNO) and again.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert torch.equal(again(g), model(g))
    with pytest.raises(ValueError, match="widht"):
        GNOConfig.from_dict({**model.config.to_dict(), "widht": 3})


def test_bad_input_and_config():
    model = GNO(CFG)
    g = _graph(5, 0, k=2)
    with pytest.raises(ValueError, match="positions"):
        model(Data(x=g.x, edge_index=g.edge_index))
    with pytest.raises(ValueError, match="input channels"):
        model(Data(x=torch.randn(5, 3), pos=g.pos, edge_index=g.edge_index))
    with pytest.raises(ValueError, match="data.x must be"):
        model(Data(x=torch.randn(4, 2), pos=g.pos, edge_index=g.edge_index))
    with pytest.raises(ValueError, match="edge_index"):
        model(Data(x=g.x, pos=g.pos))
    with pytest.raises(ValueError, match="outside"):
        model(Data(x=g.x, pos=g.pos, edge_index=torch.tensor([[0, 5], [1, 2]])))
    with pytest.raises(ValueError, match="integer tensor"):
        model(Data(x=g.x, pos=g.pos, edge_index=torch.zeros(3, 4, dtype=torch.long)))
    with pytest.raises(ValueError, match="width"):
        GNOConfig(width=0)
    with pytest.raises(ValueError, match="activation"):
        GNOConfig(activation="swish")
    with pytest.raises(ValueError, match="shared"):
        GNOConfig(shared=1)
    assert "params=" in repr(model) and np.isfinite(model.num_parameters())
