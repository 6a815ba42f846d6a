"""``neuralops info FILE [--check] [--deep] [--json]``: describe a dataset file and check it.

Exit status: 0, or 1 when the file cannot be read or ``--check`` finds an error-severity problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from neuralops.data.errors import DataError
from neuralops.data.validate import ValidationReport, info_dict, summarize, validate

__all__ = ["main"]


def _problem_lines(report: ValidationReport) -> list[str]:
    mode = "check --deep" if report.deep else "check"
    if not report.problems:
        return [f"{mode}: ok, no problems"]
    ne, nw = len(report.errors), len(report.warnings)
    lines = [f"{mode}: {ne} error{'s' * (ne != 1)}, {nw} warning{'s' * (nw != 1)}"]
    for title, group in (("errors", report.errors), ("warnings", report.warnings)):
        if group:
            lines.append(f"{title}:")
            lines += [f"  {p}" for p in group]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="neuralops info",
        description="Summarise a neuralops-pde/1 dataset file; --check validates it.",
    )
    p.add_argument("file", help="dataset file (.h5)")
    p.add_argument(
        "--check",
        action="store_true",
        help="run the validator; exit 1 on any error-severity problem",
    )
    p.add_argument(
        "--deep",
        action="store_true",
        help="also read every ok sample: checksums, NaN/Inf, statistics, digest (implies --check)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = p.parse_args(argv)
    check = a.check or a.deep
    report = validate(a.file, deep=a.deep) if check else None
    if report is not None and report.unreadable:
        if a.json:
            print(
                json.dumps(
                    {
                        "path": a.file,
                        "ok": False,
                        "problems": [dataclasses.asdict(q) for q in report.problems],
                    }
                )
            )
        else:
            print(
                "\n".join(f"neuralops info: {q.message}" for q in report.problems), file=sys.stderr
            )
        return 1
    try:
        info = info_dict(a.file) if a.json else None
        text = None if a.json else summarize(a.file)
    except (DataError, OSError) as exc:
        print(f"neuralops info: {exc}", file=sys.stderr)
        if report is None:
            return 1
        info, text = {"path": a.file}, ""
    if a.json:
        if report is not None:
            info["check"] = {
                "ok": report.ok,
                "deep": report.deep,
                "problems": [dataclasses.asdict(q) for q in report.problems],
            }
        print(json.dumps(info, indent=2))
    else:
        if text:
            print(text)
        if report is not None:
            print("\n".join(_problem_lines(report)))
    return 0 if report is None or report.ok else 1
