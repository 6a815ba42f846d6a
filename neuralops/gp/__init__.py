"""Gaussian-process PDE solvers: GP-HM (spectral mixtures on Kronecker grids) and Gauss-Newton."""
