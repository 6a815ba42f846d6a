"""Trainer on PyG graph batches: ``model(batch)``, losses and metrics reduced per graph."""

import torch
from _files import make_ragged_file
from torch import nn

from neuralops.data import PDEDataset
from neuralops.train import TrainConfig, Trainer
from neuralops.train.metrics import rel_l2


class MeanAggregate(nn.Module):
    """x_i <- MLP([x_i, mean_{j ~ i} x_j, pos_i]): plain torch message passing (no compiled ops)."""

    def __init__(self, c_in: int, c_out: int, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * c_in + dim, 32), nn.GELU(), nn.Linear(32, c_out))

    def forward(self, batch):
        src, dst = batch.edge_index
        x = batch.x
        agg = torch.zeros_like(x).index_add_(0, dst, x[src])
        deg = torch.zeros(x.shape[0], 1, dtype=x.dtype).index_add_(
            0, dst, torch.ones(dst.shape[0], 1, dtype=x.dtype)
        )
        return self.mlp(torch.cat([x, agg / deg.clamp_min(1), batch.pos], dim=-1))


def test_trainer_on_mesh_graphs_per_graph_metrics(tmp_path):
    path = make_ragged_file(tmp_path / "mesh.h5", n=6, nodes=(30, 60))
    graphs = PDEDataset(path, "all", view="graph", graph={"k": 6})
    ds = [graphs[i] for i in range(len(graphs))]
    for g in ds:  # a learnable target: the file's targets are random numbers
        g.y = 3.0 * g.x + 20.0 * g.pos[:, :1]
    first = ds[0]
    model = MeanAggregate(first.x.shape[1], first.y.shape[1], first.pos.shape[1]).to(first.x.dtype)
    cfg = TrainConfig(
        max_steps=60, batch_size=3, lr=3e-3, seed=0, log_every=20, out_dir=str(tmp_path / "run")
    )
    norm = graphs.normalizer("gaussian")
    trainer = Trainer(model, cfg, train_data=ds, metrics=("rel_l2", "rel_h1"), normalizer=norm)
    assert list(trainer.metric_fns) == ["rel_l2"]  # rel_h1 needs a grid: dropped with a warning
    before = trainer.evaluate(ds)["rel_l2"]
    trainer.fit(resume=None)
    after = trainer.evaluate(ds)
    assert after["rel_l2"] < 0.3 * before
    # the metric (physical units) is the mean over graphs of per-graph errors, not node-weighted
    per_graph = []
    with torch.no_grad():
        for g in ds:
            g = g.clone()
            g.x = norm.encode(g.x, key="input", channels_last=True)
            pred = norm.decode(model(g), key="target", channels_last=True)
            per_graph.append(float(rel_l2(pred.T.unsqueeze(0), g.y.T.unsqueeze(0))))
    assert abs(after["rel_l2"] - sum(per_graph) / 6) < 1e-6
