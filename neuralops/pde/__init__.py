"""PDE families (declarative problems that assemble their operators) and the dataset generator."""

from __future__ import annotations

import difflib
import importlib

from neuralops.data.errors import RecipeError
from neuralops.pde.base import AbstractPDEFamily, GridConfig, LinearProblem, SampleResult

__all__ = [
    "AbstractPDEFamily",
    "GridConfig",
    "LinearProblem",
    "SampleResult",
    "FAMILIES",
    "get_family",
    "generate",
    "load_recipe",
]

#: family id -> "module:Class"; modules are imported only when a family is used
FAMILIES: dict[str, str] = {
    "darcy": "neuralops.pde.darcy:DarcyFamily",
    "ns2d_vorticity": "neuralops.pde.ns2d:NS2DVorticityFamily",
    "poisson": "neuralops.pde.poisson:PoissonFamily",
    "helmholtz": "neuralops.pde.helmholtz:HelmholtzFamily",
    "heat": "neuralops.pde.heat:HeatFamily",
    "thermal": "neuralops.pde.thermal:ThermalFamily",
    "burgers1d": "neuralops.pde.burgers:Burgers1DFamily",
    "allen_cahn": "neuralops.pde.allen_cahn:AllenCahnFamily",
}


def get_family(name: str) -> type[AbstractPDEFamily]:
    """The family class registered under ``name``; unknown names list the choices."""
    if name not in FAMILIES:
        close = difflib.get_close_matches(name, list(FAMILIES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RecipeError(
            f"unknown PDE family {name!r}{hint} (choose one of {', '.join(sorted(FAMILIES))})"
        )
    module, cls = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def __getattr__(name: str):
    if name == "generate":
        from neuralops.pde.generate import generate

        return generate
    if name == "load_recipe":
        from neuralops.pde.recipe import load_recipe

        return load_recipe
    raise AttributeError(f"module 'neuralops.pde' has no attribute {name!r}")
