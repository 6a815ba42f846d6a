"""Mesh transformer (Transolver physics attention) on PyG graphs."""

import pytest
import torch
from torch_geometric.data import Batch, Data

from neuralops.models import MeshTransformer, MeshTransformerConfig, load_pretrained
from neuralops.models.transolver import PhysicsAttention

CFG = MeshTransformerConfig(in_channels=2, out_channels=1, hidden=16, layers=2, heads=2, slices=8)


def _graph(n, seed):
    g = torch.Generator().manual_seed(seed)
    return Data(x=torch.randn(n, 2, generator=g), pos=torch.rand(n, 2, generator=g))


def test_node_permutation_equivariance():
    torch.manual_seed(0)
    model = MeshTransformer(CFG).eval()
    g = _graph(50, 1)
    perm = torch.randperm(50)
    out = model(g)
    out_p = model(Data(x=g.x[perm], pos=g.pos[perm]))
    torch.testing.assert_close(out_p, out[perm], atol=1e-5, rtol=0)


def test_batch_of_two_sizes_equals_separate_runs():
    torch.manual_seed(0)
    model = MeshTransformer(CFG).eval()
    a, b = _graph(40, 2), _graph(73, 3)
    both = model(Batch.from_data_list([a, b]))
    torch.testing.assert_close(both[:40], model(a), atol=1e-5, rtol=0)
    torch.testing.assert_close(both[40:], model(b), atol=1e-5, rtol=0)


def test_slice_weights_sum_to_one_and_vanish_on_padding():
    torch.manual_seed(0)
    attn = PhysicsAttention(hidden=16, heads=4, slices=6)
    x = torch.randn(2, 10, 16)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    _, w = attn(x, mask)
    assert w.shape == (2, 4, 10, 6)
    torch.testing.assert_close(w[0].sum(-1), torch.ones(4, 10))
    torch.testing.assert_close(w[1, :, :7].sum(-1), torch.ones(4, 7))
    assert torch.all(w[1, :, 7:] == 0)


def test_overfits_one_mesh_of_500_points(tmp_path):
    torch.manual_seed(0)
    g = _graph(500, 4)
    y = (torch.sin(3 * g.pos[:, :1]) * g.x[:, :1] + g.pos[:, 1:]).detach()
    cfg = MeshTransformerConfig(in_channels=2, hidden=32, layers=1, heads=2, slices=8, mlp_ratio=2)
    model = MeshTransformer(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(600):
        opt.zero_grad()
        loss = ((model(g) - y) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rel = float(torch.linalg.norm(model(g) - y) / torch.linalg.norm(y))
    assert rel < 0.03
    model.save_pretrained(tmp_path / "m")
    again = load_pretrained(tmp_path / "m")
    assert isinstance(again, MeshTransformer)
    assert torch.equal(again(g), model(g))


def test_bad_input():
    model = MeshTransformer(CFG)
    with pytest.raises(ValueError, match="positions"):
        model(Data(x=torch.randn(5, 2)))
    with pytest.raises(ValueError, match="input channels"):
        model(Data(x=torch.randn(5, 3), pos=torch.rand(5, 2)))
    with pytest.raises(ValueError, match="divisible by heads"):
        MeshTransformerConfig(hidden=10, heads=4)
