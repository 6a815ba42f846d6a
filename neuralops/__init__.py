"""neuralops: neural-operator PDE surrogates.

Subpackages are imported on demand so that ``import neuralops.solvers`` inside a simulation
code never pulls in torch training machinery.
"""

from neuralops._version import __version__

__all__ = ["__version__", "from_pretrained"]


def from_pretrained(name_or_path, *args, **kwargs):
    """A pretrained model by catalog name or local folder; see :func:`neuralops.hub.from_pretrained`."""
    from neuralops.hub import from_pretrained as _from_pretrained

    return _from_pretrained(name_or_path, *args, **kwargs)
