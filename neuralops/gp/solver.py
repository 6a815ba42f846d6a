"""``GPSolver``: one front door to GP-HM and Gauss-Newton.

>>> import math, torch
>>> from neuralops.gp.kernels import SE1d
>>> from neuralops.pde.spec import BoxDomain, poisson
>>> spec = poisson(BoxDomain((0.0,), (1.0,)), exact=lambda x: torch.sin(2 * math.pi * x[:, 0]) + x[:, 0] ** 2)
>>> opts = dict(jitter=1e-10, grid=32, steps=0, polish=True, tau_init=(1e6, 1e6))
>>> sol = GPSolver("hm", kernel=SE1d(0.2), **opts).fit(spec)
>>> sol.info["final_error"] < 1e-4
True
"""

from __future__ import annotations

import dataclasses
import importlib

from neuralops.gp.cases import get_case
from neuralops.gp.solution import GPSolution
from neuralops.pde.spec import PDESpec

__all__ = ["GPSolver", "METHODS"]

#: method -> (module, config class, fit function)
METHODS = {
    "hm": ("neuralops.gp.hm", "GPHMConfig", "fit_hm"),
    "gn": ("neuralops.gp.gauss_newton", "GaussNewtonConfig", "fit_gauss_newton"),
}


class GPSolver:
    """``GPSolver(method, **options).fit(pde) -> GPSolution``.

    ``options`` fill the method's frozen config (:class:`~neuralops.gp.hm.GPHMConfig` or
    :class:`~neuralops.gp.gauss_newton.GaussNewtonConfig`); unknown names are listed in the error.
    ``pde`` is a :class:`~neuralops.pde.spec.PDESpec` or a case name of :mod:`neuralops.gp.cases`,
    whose reference settings fill the options not given here.
    """

    def __init__(self, method: str = "hm", **options):
        if method not in METHODS:
            raise ValueError(
                f"GPSolver: unknown method {method!r}; choose one of {', '.join(METHODS)}"
            )
        self.method = method
        self.options = dict(options)
        self.config_class = self._config_class()
        valid = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(self.options) - valid)
        if unknown:
            raise ValueError(
                f"GPSolver({method!r}): unknown option(s) {unknown}; valid: {', '.join(sorted(valid))}"
            )
        self.config = self.config_class(**self.options)  # validates now, at the boundary

    def _config_class(self):
        module, cls, _ = METHODS[self.method]
        return getattr(importlib.import_module(module), cls)

    def fit(self, pde: PDESpec | str) -> GPSolution:
        """Solve ``pde``; never raises on non-convergence (check ``converged`` and ``info``)."""
        module, _, fit = METHODS[self.method]
        config = self.config
        if isinstance(pde, str):
            case = get_case(pde)
            defaults = case.hm if self.method == "hm" else case.gn
            valid = {f.name for f in dataclasses.fields(self.config_class)}
            config = self.config_class(
                **{**{k: v for k, v in defaults.items() if k in valid}, **self.options}
            )
            pde = case.spec()
        elif not isinstance(pde, PDESpec):
            raise ValueError(
                f"GPSolver.fit: expected a PDESpec or a case name, got {type(pde).__name__}"
            )
        return getattr(importlib.import_module(module), fit)(pde, config)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"GPSolver({self.method!r}{', ' if opts else ''}{opts})"
