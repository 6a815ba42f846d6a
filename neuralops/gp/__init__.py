"""Gaussian-process PDE solvers: GP-HM (spectral mixtures on Kronecker grids) and Gauss-Newton.

``GPSolver(method, **options).fit(pde) -> GPSolution``; ``pde`` is a
:class:`neuralops.pde.spec.PDESpec` or a case name of :mod:`neuralops.gp.cases`.
"""

from neuralops.gp._linalg import GPConditioningWarning
from neuralops.gp.cases import CASES, get_case
from neuralops.gp.hm import GPHMConfig, fit_hm
from neuralops.gp.kernels import (
    GaussianMixture1d,
    Matern1d,
    ProductKernel,
    SE1d,
    StudentTMixture1d,
    make_kernel,
)
from neuralops.gp.solution import GPSolution
from neuralops.gp.solver import GPSolver

#: short aliases used in the docs: ``GPSolver("gn", kernel=SE(lengthscale=0.2))``
SE = SE1d
Matern = Matern1d

__all__ = [
    "GPSolver",
    "GPSolution",
    "GPHMConfig",
    "GPConditioningWarning",
    "fit_hm",
    "CASES",
    "get_case",
    "GaussianMixture1d",
    "StudentTMixture1d",
    "SE1d",
    "Matern1d",
    "SE",
    "Matern",
    "ProductKernel",
    "make_kernel",
]

# --- Gauss-Newton (gauss_newton.py) ---
from neuralops.gp.gauss_newton import GaussNewtonConfig, GNPredictor, fit_gauss_newton  # noqa: E402

__all__ += ["GaussNewtonConfig", "GNPredictor", "fit_gauss_newton"]
# --- end Gauss-Newton ---

# --- dataset tie-in ---
from neuralops.gp.dataset import (  # noqa: E402
    DatasetFit,
    GridFunction,
    SpectralPrior,
    fit_spectral_prior,
    solve_dataset,
)

__all__ += ["solve_dataset", "DatasetFit", "GridFunction", "fit_spectral_prior", "SpectralPrior"]
# --- end dataset tie-in ---
