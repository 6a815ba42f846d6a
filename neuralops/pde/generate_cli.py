"""``neuralops generate RECIPE``: argument parsing for :func:`neuralops.pde.generate.generate`."""

from __future__ import annotations

import argparse
import logging

from neuralops.data.errors import DataError

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="neuralops generate",
        description="Generate (or resume) the HDF5 dataset a recipe in pde_data/ describes.",
    )
    p.add_argument("recipe", help="recipe TOML, e.g. pde_data/darcy_smooth.toml")
    p.add_argument("--out", help="output .h5 (default: the recipe's run.out)")
    p.add_argument("--workers", type=int, help="parallel worker processes (default: run.workers)")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue from staged samples (the default when staging exists)",
    )
    g.add_argument("--restart", action="store_true", help="discard staged samples first")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output made from a different recipe",
    )
    p.add_argument("--limit", type=int, help="compute at most N more samples, then stop")
    p.add_argument(
        "--assemble",
        action="store_true",
        help="write the file from finished samples now; the rest stay pending",
    )
    p.add_argument("--keep-staging", action="store_true", help="keep per-sample staging files")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a bar")
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="compute on a Dask cluster: 'local' (a LocalCluster of --workers processes) or "
        "tcp://HOST:PORT (needs the 'distributed' extra)",
    )
    a = p.parse_args(argv)
    from neuralops.pde.generate import generate

    try:
        report = generate(
            a.recipe,
            out=a.out,
            workers=a.workers,
            restart=a.restart,
            overwrite=a.overwrite,
            limit=a.limit,
            assemble=a.assemble,
            keep_staging=a.keep_staging,
            progress=False if a.no_progress else None,
            dask=a.dask,
        )
    except DataError as exc:
        print(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished samples are staged; run the same command again to resume")
        return 130
    print(report.summary())
    if report.content_sha256:
        print(f"content_sha256 {report.content_sha256}")
    return report.exit_code
