"""Datasets: the HDF5 schema ``neuralops-pde/1`` and the one dataset interface, :class:`PDEDataset`.

``neuralops.data`` imports nothing else from neuralops, so a training script can use it without
the PDE generators or the solvers. Names are resolved lazily to keep ``import`` cheap.
"""

from __future__ import annotations

import importlib

from neuralops.data.errors import (
    DataError,
    DataFileError,
    FieldNotFoundError,
    IncompleteDatasetError,
    NonFiniteError,
    RecipeError,
    SchemaVersionError,
)
from neuralops.data.schema import (
    FAILED,
    OK,
    PENDING,
    SCHEMA_ID,
    DatasetWriter,
    FieldSpec,
    ParamSpec,
    SolverRecord,
    content_digest,
)
from neuralops.data.validate import Problem, ValidationReport, validate

_LAZY = {
    "PDEDataset": "neuralops.data.dataset",
    "TimeWindow": "neuralops.data.timewindow",
    "AllToAll": "neuralops.data.timewindow",
    "GraphSpec": "neuralops.data.graph",
    "AbstractSource": "neuralops.data.source",
    "H5Source": "neuralops.data.source",
    "FieldInfo": "neuralops.data.source",
    "open_dataset": "neuralops.data.foreign",
    "Normalizer": "neuralops.data.normalizer",
    "GaussianNormalizer": "neuralops.data.normalizer",
    "RangeNormalizer": "neuralops.data.normalizer",
    "IdentityNormalizer": "neuralops.data.normalizer",
}

__all__ = [
    "SCHEMA_ID",
    "PENDING",
    "OK",
    "FAILED",
    "DatasetWriter",
    "FieldSpec",
    "ParamSpec",
    "SolverRecord",
    "content_digest",
    "DataError",
    "DataFileError",
    "SchemaVersionError",
    "FieldNotFoundError",
    "IncompleteDatasetError",
    "NonFiniteError",
    "RecipeError",
    "validate",
    "ValidationReport",
    "Problem",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neuralops.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
