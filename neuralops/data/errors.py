"""Errors raised by :mod:`neuralops.data`.

Every error names the file (and where it applies the field and sample) and says how to fix it.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DataFileError",
    "SchemaVersionError",
    "FieldNotFoundError",
    "IncompleteDatasetError",
    "NonFiniteError",
    "RecipeError",
]


class DataError(Exception):
    """Base class of every data error in neuralops."""


class DataFileError(DataError, OSError):
    """The file cannot be read as an HDF5 dataset (truncated, not HDF5, corrupt chunk)."""


class SchemaVersionError(DataError):
    """The file carries another (or no) schema id than the one this neuralops reads."""


class FieldNotFoundError(DataError, KeyError):
    """A requested field is absent; the message lists the fields present and their roles."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class IncompleteDatasetError(DataError):
    """Samples are still pending (generation was interrupted)."""


class NonFiniteError(DataError, ValueError):
    """A sample marked ok holds NaN or Inf."""


class RecipeError(DataError, ValueError):
    """A dataset recipe has an unknown key, a wrong type or an out-of-range value."""
