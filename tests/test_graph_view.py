"""Graph view: PyG Data from grid and mesh samples; edges against a brute-force distance matrix."""

import h5py
import numpy as np
import pytest
import torch
from _files import make_grid_file, make_ragged_file

from neuralops.data import PDEDataset
from neuralops.data.graph import GraphBuilder, GraphSpec, neighbours


def brute_force(pos):
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return d


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    return make_ragged_file(tmp_path_factory.mktemp("g") / "mesh.h5", n=4, nodes=(30, 60))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid_file(tmp_path_factory.mktemp("g") / "grid.h5", n=4, s=9)


def test_radius_graph_on_a_grid_matches_brute_force(grid):
    ds = PDEDataset(grid, "all", view="graph", graph=dict(radius=0.2, max_neighbors=64))
    data = ds[1]
    with h5py.File(grid) as f:
        x, y, a, u = f["coords/x"][...], f["coords/y"][...], f["fields/a"][1], f["fields/u"][1]
    gx, gy = np.meshgrid(x, y, indexing="ij")
    pos = np.stack([gx.ravel(), gy.ravel()], axis=1)  # h = 0.125 in x, 0.25 in y
    d = brute_force(pos)
    expected = {(j, i) for i, j in zip(*np.nonzero(d <= 0.2), strict=True)}
    got = set(map(tuple, data.edge_index.T.tolist()))
    assert (
        got == expected and data.edge_index.shape[1] == len(expected) == 2 * 9 * 8
    )  # x-neighbours only
    np.testing.assert_allclose(data.pos.numpy(), pos, rtol=1e-7)
    np.testing.assert_array_equal(data.x[:, 0].numpy(), a.ravel())
    np.testing.assert_array_equal(data.y[:, 0].numpy(), u.ravel())
    assert data.params.shape == (1, 3) and data.x.shape == (81, 1)


def test_radius_with_max_neighbors_keeps_the_nearest(mesh):
    ds = PDEDataset(mesh, "all", view="graph", graph=dict(radius=0.3, max_neighbors=4))
    with h5py.File(mesh) as f:
        off, all_pos = f["mesh/offsets"][...], f["mesh/pos"][...]
    for k, i in enumerate(ds.indices):
        pos = all_pos[off[i] : off[i + 1]].astype(np.float64)
        d = brute_force(pos)
        edges = ds[k].edge_index.numpy()
        degree = np.bincount(edges[1], minlength=len(pos))
        np.testing.assert_array_equal(degree, np.minimum((d <= 0.3).sum(1), 4))
        for centre in range(len(pos)):
            kept = np.sort(d[centre, edges[0][edges[1] == centre]])
            np.testing.assert_allclose(kept, np.sort(d[centre])[: degree[centre]])
            assert (kept <= 0.3).all()


def test_knn_graph(mesh):
    ds = PDEDataset(mesh, "all", view="graph", graph=GraphSpec(k=5))
    with h5py.File(mesh) as f:
        off, all_pos, kappa = f["mesh/offsets"][...], f["mesh/pos"][...], f["fields/kappa"][...]
    data = ds[2]
    i = ds.indices[2]
    pos = all_pos[off[i] : off[i + 1]].astype(np.float64)
    d = brute_force(pos)
    edges = data.edge_index.numpy()
    assert edges.shape == (2, 5 * len(pos)) and (edges[0] != edges[1]).all()
    np.testing.assert_array_equal(np.bincount(edges[1]), np.full(len(pos), 5))
    for centre in range(len(pos)):
        np.testing.assert_allclose(
            np.sort(d[centre, edges[0][edges[1] == centre]]), np.sort(d[centre])[:5]
        )
    np.testing.assert_array_equal(data.x.numpy(), kappa[off[i] : off[i + 1]])
    np.testing.assert_array_equal(data.pos.numpy(), all_pos[off[i] : off[i + 1]])


def test_edges_are_cached_per_mesh(grid):
    builder = GraphBuilder(GraphSpec(k=4))
    ds = PDEDataset(grid, "all", view="graph", graph=builder.spec)
    first, second = ds[0], ds[1]
    assert first.edge_index is second.edge_index and len(ds._graph._cache) == 1
    pos = np.random.default_rng(0).random((20, 2))
    assert builder.edges(pos) is builder.edges(pos.copy())
    assert builder.edges(pos) is not builder.edges(pos + 1e-3)


def test_loops_duplicates_and_bad_options():
    pos = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    nbr, centre = neighbours(pos, GraphSpec(k=1))
    assert centre.tolist() == [0, 1, 2] and nbr[:2].tolist() == [1, 0]  # a duplicate is not self
    assert nbr[2] in (0, 1)  # tie at distance 1
    loops = neighbours(pos, GraphSpec(radius=0.5, loop=True))
    assert sorted(map(tuple, loops.T.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]
    with pytest.raises(ValueError, match="exactly one of radius or k"):
        GraphSpec(radius=0.1, k=3)
    with pytest.raises(ValueError, match=r"unknown graph option\(s\) \['max_neighbours'\]"):
        GraphSpec.coerce(dict(radius=0.1, max_neighbours=4))


def test_pyg_batches_stack_graph_level_params(grid):
    from torch_geometric.loader import DataLoader

    ds = PDEDataset(grid, "all", view="graph", graph=dict(k=3))
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.num_graphs == 3 and batch.params.shape == (3, 3) and batch.x.shape == (3 * 81, 1)
    torch.testing.assert_close(batch.params[2], ds[2].params[0])
