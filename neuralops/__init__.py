"""neuralops: neural-operator PDE surrogates.

Subpackages are imported on demand so that ``import neuralops.solvers`` inside a simulation
code never pulls in torch training machinery.
"""

from neuralops._version import __version__

__all__ = ["__version__"]
