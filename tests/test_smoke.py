"""Smoke simulation with obstacles: the pressure projection leaves a divergence-free velocity up to
the linear solver's tolerance, with any neuralops solver (CG, PCG, direct, DCDM) or a user's own."""

import numpy as np
import pytest
import torch

from neuralops.models import DCDMConfig, DCDMNet
from neuralops.pde.pressure import obstacle_scene
from neuralops.pde.smoke import PressureSolveError, Smoke
from neuralops.solvers import DCDM, make_solver


@pytest.mark.parametrize("shape", [(24, 32), (12, 12, 16)])
def test_projection_is_divergence_free_to_the_solver_tolerance(shape):
    fluid = obstacle_scene(shape, 2)
    for rtol in (1e-4, 1e-9):
        sim = Smoke(shape, fluid, solver=make_solver("cg", rtol=rtol))
        for rec in sim.run(8):
            assert rec.solution.converged
            # the outflow after the update is exactly D + A p = -(residual of the solve)
            assert rec.divergence_after <= rtol * rec.rhs_norm * (1 + 1e-6) + 1e-14
            assert rec.rhs_norm > 1e-3  # the source and buoyancy do make divergence each step
        assert sim.density.max() <= 1.0 + 1e-12 and sim.density.min() >= -1e-12  # bounded
        assert np.all(sim.density[~sim.fluid] == 0)


def test_a_direct_solve_projects_to_machine_precision():
    sim = Smoke((20, 20), obstacle_scene((20, 20), 5), solver=make_solver("direct"))
    rec = sim.run(5)[-1]
    assert rec.divergence_after < 1e-12 * rec.rhs_norm
    # closed faces stay closed: no flow into obstacles or through the walls
    for d, u in enumerate(sim.velocity):
        assert np.all(u[~sim.open_face[d]] == 0)


def test_dcdm_and_pcg_inside_the_simulation_and_a_users_own_solver():
    shape = (16, 24)
    fluid = obstacle_scene(shape, 3)
    torch.manual_seed(0)
    net = DCDMNet(DCDMConfig(dim=2, width=4, blocks_fine=1, blocks_coarse=1, blocks_up=1)).double()
    runs = {
        "dcdm": DCDM(net, mask=fluid, rtol=1e-7),
        "ic0": make_solver("pcg", preconditioner="ic0", rtol=1e-7),
    }
    states = {}
    for name, solver in runs.items():
        sim = Smoke(shape, fluid, solver=solver)
        for rec in sim.run(6):
            assert rec.solution.converged and rec.divergence_after <= 1.01e-7 * rec.rhs_norm
        states[name] = sim.density
    # same physics whichever solver: the fields agree to the solver tolerance's effect
    np.testing.assert_allclose(states["dcdm"], states["ic0"], atol=1e-5)

    class Mine:  # any object with solve(A, b, x0=...) -> something with x, converged, info
        calls = 0

        def solve(self, A, b, x0=None):
            import scipy.sparse.linalg as sla

            Mine.calls += 1
            x = sla.spsolve(A.tocsc(), b)
            return type("S", (), {"x": x, "converged": True, "info": {}})()

    sim = Smoke(shape, fluid, solver=Mine())
    rec = sim.run(3)[-1]
    assert Mine.calls == 3 and rec.divergence_after < 1e-10 * rec.rhs_norm


def test_failed_pressure_solves_are_raised_or_recorded():
    shape = (16, 16)
    tight = make_solver("cg", rtol=1e-12, maxiter=2)
    with pytest.raises(PressureSolveError, match="did not converge") as err:
        Smoke(shape, solver=tight).step()
    assert err.value.solution.converged is False
    sim = Smoke(shape, solver=tight, allow_unconverged=True)
    rec = sim.step()
    assert not rec.solution.converged and sim.history[-1] is rec


def test_bad_input():
    with pytest.raises(ValueError, match="2 or 3 axes"):
        Smoke((8,))
    with pytest.raises(ValueError, match="boolean mask of shape"):
        Smoke((8, 8), np.ones((8, 9), dtype=bool))
    with pytest.raises(ValueError, match="dt"):
        Smoke((8, 8), dt=0.0)
    closed = np.ones((8, 8), dtype=bool)
    closed[:, -1] = False  # a lid over everything: nothing reaches the open top
    with pytest.raises(ValueError, match="open top"):
        Smoke((8, 8), closed)


def test_demo_writes_frames_table_and_compares_with_cg(tmp_path, capsys):
    from neuralops.cli import main

    torch.manual_seed(0)
    net = DCDMNet(DCDMConfig(dim=2, width=4, blocks_fine=1, blocks_coarse=1, blocks_up=1))
    folder = net.save_pretrained(tmp_path / "net")
    out = tmp_path / "smoke"
    argv = [
        "demo",
        "smoke",
        "--solver",
        "dcdm",
        "--model",
        str(folder),
        "--grid",
        "16",
        "24",
        "--steps",
        "5",
        "--frames-every",
        "2",
        "--gif",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "CG on the same systems" in text and "div u" in text
    import csv

    rows = list(csv.DictReader(open(out / "steps.csv")))
    assert len(rows) == 5 and {"dcdm_iterations", "cg_iterations", "cg_switch"} <= set(rows[0])
    assert all(r["converged"] == "True" for r in rows)
    assert all(float(r["divergence_after"]) <= 1.01e-6 * float(r["rhs_norm"]) for r in rows)
    assert len(list(out.glob("frame_*.png"))) == 3 and (out / "smoke.gif").stat().st_size > 0
    # a 3-D network on a 2-D grid is refused with the fix
    net3 = DCDMNet(DCDMConfig(dim=3, width=4, blocks_fine=1, blocks_coarse=1, blocks_up=1))
    f3 = net3.save_pretrained(tmp_path / "net3")
    argv = [
        "demo",
        "smoke",
        "--solver",
        "dcdm",
        "--model",
        str(f3),
        "--grid",
        "16",
        "24",
        "--steps",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 2
    assert "is 3-D but the grid" in capsys.readouterr().err
