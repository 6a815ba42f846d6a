"""Reference (non-GP) solvers that GP-HM is compared against in the benchmark (spec ``gp.md`` §7).

Each baseline takes a :class:`~neuralops.pde.spec.PDESpec` on a 1-D or 2-D box whose operator reads
derivatives of order at most 2, and returns a frozen :class:`BaselineResult`:

- :func:`chebyshev_collocation` -- Chebyshev-Gauss-Lobatto collocation (tensor product in 2-D); linear
  problems are solved directly, nonlinear ones by Newton with the Jacobian of the pointwise operator;
- :func:`finite_differences` -- second-order finite differences on a uniform grid (sparse LU, Newton),
  with :func:`fd_refinement` for the observed order;
- :func:`pinn` -- a tanh MLP trained with Adam on the GP-HM collocation grid.

Errors are measured on the GP-HM test grid: ``test_grid`` (300) uniform nodes per axis, end points
included. Chebyshev solutions are evaluated there by barycentric interpolation, finite-difference ones
by (tensor-product) cubic-spline interpolation, whose O(h^4) error does not mask the O(h^2) of the scheme.

**Boundary data.** A problem with a second-order entry in its jet takes Dirichlet data on
``spec.boundary_faces``. A first-order (hyperbolic) problem such as advection ``beta u_x + u_t = f``
takes data only on its *inflow* faces -- the lower face of an axis whose coefficient is positive, the
upper face where it is negative -- even when the spec lists all faces (the GP-HM benchmark gives
GP-HM all four edges). Data on an outflow face over-determine a first-order problem: collocation then
has no consistent square system, and the baseline would be handed the answer at the final time. The
faces used are recorded in ``info["faces"]``.

>>> import math, torch
>>> from neuralops.pde.spec import BoxDomain, poisson
>>> spec = poisson(BoxDomain((0.0,), (1.0,)), exact=lambda x: torch.sin(math.pi * x[:, 0]))
>>> res = chebyshev_collocation(spec, 24)
>>> res.rel_l2 < 1e-12, res.values.shape
(True, torch.Size([300]))
"""

from neuralops.gp.baselines._common import TEST_GRID, BaselineResult, FDRefinement
from neuralops.gp.baselines.chebyshev import chebyshev_collocation, chebyshev_nodes
from neuralops.gp.baselines.finite_differences import fd_refinement, finite_differences
from neuralops.gp.baselines.pinn import pinn

__all__ = [
    "BaselineResult",
    "FDRefinement",
    "TEST_GRID",
    "chebyshev_collocation",
    "chebyshev_nodes",
    "fd_refinement",
    "finite_differences",
    "pinn",
]
