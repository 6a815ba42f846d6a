"""`neuralops solve --gp`, `neuralops bench gp` and the case gallery."""

import json

import pytest

from neuralops.cli import main
from neuralops.gp.cases import CASES, get_case
from neuralops.gp.gauss_newton import GaussNewtonConfig
from neuralops.gp.hm import GPHMConfig


def test_every_case_builds_with_valid_settings():
    for name, case in CASES.items():
        spec = case.spec()
        assert spec.name == name and spec.exact is not None
        if case.method == "hm":
            GPHMConfig(**case.hm)
        else:
            GaussNewtonConfig(**case.gn)
    with pytest.raises(ValueError, match="did you mean 'p1-sin'"):
        get_case("p1-sinn")


def test_solve_gp_writes_summary_and_solution(tmp_path, capsys):
    rc = main(
        [
            "solve",
            "--gp",
            "hm",
            "--case",
            "p1-mix",
            "--steps",
            "30",
            "--grid",
            "60",
            "--out",
            str(tmp_path),
            "--no-plot",
        ]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "p1-mix-hm.json").read_text())
    assert summary["iterations"] == 30 and summary["stopped"] == "max_steps"
    assert (tmp_path / "p1-mix-hm" / "state.safetensors").is_file()
    assert "final_error" in capsys.readouterr().out
    # a case name alone picks the case's own method
    assert main(["solve", "--gp", "gn-ell", "--out", str(tmp_path), "--no-plot"]) == 0
    assert json.loads((tmp_path / "gn-ell-gn.json").read_text())["final_error"] < 1e-5
    assert main(["solve", "--gp", "bogus", "--out", str(tmp_path)]) == 2


def test_bench_gp_rows_side_by_side(tmp_path):
    out = tmp_path / "gp.json"
    rc = main(
        [
            "bench",
            "gp",
            "--cases",
            "p1-mix",
            "--steps",
            "20",
            "--pinn-steps",
            "10",
            "--grid",
            "200",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["method"] for r in rows] == [
        "hm-stm",
        "hm-gm",
        "gp-se",
        "gp-matern",
        "pinn",
        "chebyshev",
        "fd",
    ]
    by = {r["method"]: r for r in rows}
    assert by["chebyshev"]["final_error"] < 1e-8  # analytic solution, 200 Chebyshev points
    assert 1.8 < by["fd"]["fd_order"] < 2.2
    assert by["hm-gm"]["time_ratio_to_hm_gm"] == 1.0
    assert by["hm-stm"]["reference_oracle_min"] == 5.5e-4
