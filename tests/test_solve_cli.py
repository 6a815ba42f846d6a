"""``neuralops solve``: file formats, summary, output file and exit codes."""

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from neuralops.solvers import gallery
from neuralops.solvers.solve_cli import main


@pytest.fixture
def system(tmp_path):
    A = gallery.poisson((10, 10))
    b = np.random.default_rng(0).random(100)
    scipy.io.mmwrite(str(tmp_path / "A.mtx"), A)
    sp.save_npz(tmp_path / "A.npz", A)
    np.save(tmp_path / "b.npy", b)
    return A, b, tmp_path


@pytest.mark.parametrize("fmt", ["mtx", "npz"])
@pytest.mark.parametrize(
    "method, precond", [("cg", "none"), ("pcg", "ic0"), ("gmres", "ilu"), ("direct", "none")]
)
def test_solves_a_file_and_writes_x(system, capsys, fmt, method, precond):
    A, b, d = system
    out = d / "x.npy"
    args = [str(d / f"A.{fmt}"), "--rhs", str(d / "b.npy"), "--method", method]
    rc = main([*args, "--precond", precond, "--rtol", "1e-10", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    for field in (
        "converged       True",
        "iterations",
        "true residual",
        "setup seconds",
        "stop reason",
    ):
        assert field in text
    x = np.load(out)
    assert np.linalg.norm(b - A @ x) <= 1e-9 * np.linalg.norm(b)


def test_gallery_default_rhs_and_restart(capsys):
    assert (
        main(["--gallery", "convection_diffusion:16x16", "--method", "gmres", "--restart", "5"])
        == 0
    )
    assert "n = 256" in capsys.readouterr().out


def test_not_converged_exits_1(capsys):
    assert main(["--gallery", "poisson:16x16", "--maxiter", "2"]) == 1
    assert "maxiter" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, word",
    [
        (["missing.mtx"], "does not exist"),
        (["--gallery", "poisson:8x8", "--rhs", "RHS"], "--rhs has shape"),
        (["--gallery", "nope:8x8"], "unknown gallery"),
        (
            ["--gallery", "convection_diffusion:8x8", "--method", "cg"],
            "not symmetric positive definite",
        ),
        (["--gallery", "poisson:8x8", "--rtol", "-1"], "rtol"),
        (["--gallery", "poisson:8x8", "--restart", "0", "--method", "gmres"], "restart"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, argv, word):
    np.save(tmp_path / "short.npy", np.ones(5))
    argv = [str(tmp_path / "short.npy") if a == "RHS" else a for a in argv]
    if argv[0] == "missing.mtx":
        argv[0] = str(tmp_path / "missing.mtx")
    assert main(argv) == 2
    assert word in capsys.readouterr().err


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    assert main([]) == 2
    assert main(["--gallery", "poisson:4x4", "--method", "bicg"]) == 2
    assert main(["--help"]) == 0
    assert "--precond" in capsys.readouterr().out
