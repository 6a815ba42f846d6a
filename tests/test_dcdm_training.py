"""DCDM training pieces: Lanczos/Ritz data, the self-supervised loss, and a short training run."""

import numpy as np
import pytest
import torch

from neuralops.data import PDEDataset
from neuralops.pde.pressure import obstacle_scene, pressure_poisson
from neuralops.train.dcdm_data import lanczos, ritz_rhs, training_system, write_ritz_dataset
from neuralops.train.losses import DCDMLoss


@pytest.fixture(scope="module")
def scene():
    fluid = obstacle_scene((16, 16), 3, count=(2, 3), size=(0.1, 0.2), open_sides="top")
    return fluid, pressure_poisson(fluid, open_sides="top")


def test_lanczos_is_orthonormal_and_tridiagonalises(scene):
    _, A = scene
    lz = lanczos(A, 60, seed=1)
    V = lz.V
    assert np.abs(V @ V.T - np.eye(lz.steps)).max() < 1e-12  # full re-orthogonalisation
    np.testing.assert_allclose(V @ (A @ V.T), lz.tridiagonal(), atol=1e-10)


def test_ritz_vectors_satisfy_their_eigen_residual_bound(scene):
    _, A = scene
    ritz = lanczos(A, 80, seed=2).ritz()
    R = A @ ritz.vectors.T - ritz.vectors.T * ritz.values  # columns A y - theta y
    norms = np.linalg.norm(R, axis=0)
    # the Lanczos relation gives the residual exactly: ||A y_i - theta_i y_i|| = beta_m |s_mi|
    np.testing.assert_allclose(norms, ritz.residual_bounds, rtol=1e-6, atol=1e-9)
    # Ritz values lie in the spectrum's hull; the extreme ones converge first
    eig = np.linalg.eigvalsh(A.toarray())
    assert eig[0] - 1e-10 <= ritz.values.min() and ritz.values.max() <= eig[-1] + 1e-10
    assert abs(ritz.values.max() - eig[-1]) < 1e-6 * eig[-1]


def test_full_lanczos_recovers_the_spectrum():
    A = pressure_poisson(np.ones((6, 6), dtype=bool), open_sides="all")
    ritz = lanczos(A, 36, seed=0).ritz()
    # the Krylov space of one start vector holds each distinct eigenvalue once (19 here); the
    # roundoff left at that near-breakdown restarts the recurrence in a new direction, so every
    # Ritz value is an eigenvalue and every Ritz pair is an eigenpair
    eig = np.linalg.eigvalsh(A.toarray())
    assert len(np.unique(np.round(ritz.values, 8))) == len(np.unique(np.round(eig, 8)))
    assert np.abs(ritz.values[:, None] - eig[None, :]).min(axis=1).max() < 1e-9
    residuals = np.linalg.norm(A @ ritz.vectors.T - ritz.vectors.T * ritz.values, axis=0)
    assert residuals.max() < 1e-8


def test_ritz_right_hand_sides_are_unit_norm_and_weighted_to_low_modes(scene):
    _, A = scene
    ritz = lanczos(A, 80, seed=3).ritz()
    B = ritz_rhs(ritz, 400, theta=0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(B, axis=1), 1.0, rtol=1e-12)
    energy = (B @ ritz.vectors.T) ** 2  # coefficient energies per Ritz vector
    k = len(ritz.values)
    low, high = energy[:, : k // 2].mean(), energy[:, k // 2 :].mean()
    assert 60 < low / high < 100  # weight 9 on the lower half: variance ratio 81


def test_ritz_dataset_round_trips_through_the_schema(tmp_path, scene):
    fluid, A = scene
    path = tmp_path / "ritz.h5"
    summary = write_ritz_dataset(path, fluid, lanczos_steps=40, samples=30, val_fraction=0.2)
    assert summary["dcdm_unknowns"] == A.shape[0]
    A2, fluid2 = training_system(path)
    assert np.array_equal(fluid2, fluid) and (A2 != A).nnz == 0
    train, val = PDEDataset(path, "train"), PDEDataset(path, "val")
    assert (len(train), len(val)) == (24, 6)
    x = train[0]["input"][0].numpy()
    assert np.all(x[~fluid] == 0) and abs(np.linalg.norm(x[fluid]) - 1) < 1e-6
    with pytest.raises(ValueError, match="not a DCDM Ritz dataset"):
        from neuralops.pde.generate import generate  # any ordinary dataset

        other = generate(
            "pde_data/darcy_demo.toml", out=tmp_path / "d.h5", limit=None, progress=False
        )
        training_system(other.path)


def test_loss_is_scale_invariant_and_zero_for_the_exact_inverse(scene):
    fluid, A = scene
    loss = DCDMLoss(A, fluid)
    g = torch.Generator().manual_seed(0)
    b = torch.zeros(4, 1, *fluid.shape, dtype=torch.float64)
    b[:, 0][:, torch.as_tensor(fluid)] = torch.randn(
        4, int(fluid.sum()), generator=g, dtype=torch.float64
    )
    q = torch.randn(b.shape, generator=g, dtype=torch.float64)
    base = loss(q, b)
    for c in (3.0, -0.25, 1e4):
        torch.testing.assert_close(loss(c * q, b), base, rtol=1e-6, atol=0)
    exact = torch.zeros_like(b)
    Ainv = np.linalg.inv(A.toarray())
    for i in range(4):
        exact[i, 0][torch.as_tensor(fluid)] = torch.as_tensor(
            Ainv @ b[i, 0][torch.as_tensor(fluid)].numpy()
        )
    assert float(loss(exact, b)) < 1e-20
    assert float(loss(7.0 * exact, b)) < 1e-20  # "up to a scalar"
    assert float(base) > 1e-3
    # values outside the fluid are ignored
    noisy = q.clone()
    noisy[:, 0][:, torch.as_tensor(~fluid)] = 1e3
    torch.testing.assert_close(loss(noisy, b), base)
    with pytest.raises(ValueError, match="values per sample"):
        loss(q[..., :-1], b[..., :-1])
    with pytest.raises(ValueError, match="True cells"):
        DCDMLoss(A, np.ones((16, 16), dtype=bool))


def test_training_200_steps_halves_the_loss_and_keeps_masked_cells_zero(tmp_path):
    recipe = tmp_path / "dcdm.toml"
    recipe.write_text(
        f"""
[scene]
shape = [32, 32]
seed = 0
[data]
path = "{tmp_path / "ritz32.h5"}"
lanczos_steps = 200
samples = 400
[model]
preset = "ref64"
width = 8
[train]
max_steps = 5
batch_size = 10
lr = 1e-3
seed = 0
[log]
out_dir = "{tmp_path / "run"}"
log_every = 20
[eval]
scenes = [101]
rtol = 1e-6
maxiter = 500
"""
    )
    from neuralops.cli import main

    # through `neuralops train` (it recognises the [scene] table); overrides as TABLE.KEY=VALUE
    assert main(["train", str(recipe), "--set", "max_steps=3"]) == 2
    assert main(["train", str(recipe), "--set", "train.no_such_key=3"]) == 2
    assert main(["train", str(recipe), "--set", "train.max_steps=200"]) == 0
    import json

    summary = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert summary["steps"] == 200
    A, fluid = training_system(tmp_path / "ritz32.h5")
    from neuralops.models import load_pretrained

    net = load_pretrained(summary["final"]).eval()
    val = PDEDataset(tmp_path / "ritz32.h5", "val")
    x = torch.stack([val[i]["input"] for i in range(len(val))]).float()
    with torch.no_grad():
        q = net(x, mask=torch.as_tensor(fluid))
    assert torch.all(q[:, 0][:, torch.as_tensor(~fluid)] == 0)
    after = float(DCDMLoss(A, fluid)(q, x))
    assert after == pytest.approx(summary["val_loss"], rel=1e-4)
    assert after <= 0.5 * summary["initial_val_loss"], summary
    row = summary["eval"][0]  # a held-out scene: converges whatever the (barely trained) network
    assert row["dcdm_converged"], row
