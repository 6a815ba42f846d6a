"""The ``neuralops`` command: one small module per subcommand, imported only when used."""

from __future__ import annotations

import importlib
import logging
import sys

__all__ = ["main", "COMMANDS"]

#: subcommand -> (module with ``main(argv) -> int``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("neuralops.pde.generate_cli", "generate a dataset from a recipe (resumable)"),
    "info": ("neuralops.data.info_cli", "summarise or check (--check, --deep) a dataset file"),
    "solve": (
        "neuralops.solvers.solve_cli",
        "solve a linear system (.mtx/.npz or --gallery), or a GP benchmark case (--gp)",
    ),
    "train": ("neuralops.train.train_cli", "train a model from a recipe (train/*.toml)"),
    "eval": ("neuralops.train.eval_cli", "evaluate a trained model on a dataset split"),
    "demo": ("neuralops.train.demo_cli", "run an end-to-end demo (quickstart)"),
    "download": (
        "neuralops.hub.download_cli",
        "fetch a pretrained model (--list shows the catalog)",
    ),
    "hub": ("neuralops.hub.hub_cli", "model-zoo maintenance: print a catalog entry for a folder"),
    "bench": ("neuralops.gp.bench_cli", "side-by-side benchmarks: `neuralops bench gp [--quick]`"),
}

#: ``neuralops solve --gp ...`` goes to the GP solvers, not the linear-system solver
GP_SOLVE_MODULE = "neuralops.gp.solve_cli"


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: neuralops COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "neuralops COMMAND --help shows the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from neuralops import __version__

        print(f"neuralops {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"neuralops: unknown command {name!r}{hint}\n\n{_usage()}", file=sys.stderr)
        return 2
    target = COMMANDS[name][0]
    if name == "solve" and any(a == "--gp" or a.startswith("--gp=") for a in rest):
        target = GP_SOLVE_MODULE
    module = importlib.import_module(target)
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
