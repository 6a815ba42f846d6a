"""What the validator reports: :class:`Problem` records, the :class:`ValidationReport`, the codes.

Every code in :data:`CODES` is stable: scripts and tests match on it. Warnings leave a file usable
(failed samples are data about failure); errors do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CODES", "OPEN_CODES", "Problem", "ValidationReport"]

#: every problem code and what it means; codes are stable (scripts and tests match on them)
CODES: dict[str, str] = {
    "not-found": "the path does not exist",
    "not-hdf5": "not an HDF5 file (empty, an HTML page, another format)",
    "truncated": "the file is shorter than its superblock says",
    "unreadable": "HDF5 refused to open the file for another reason",
    "schema-missing": "no 'schema' attribute",
    "schema-version": "a schema other than neuralops-pde/1",
    "attr-missing": "a required attribute is absent",
    "attr-type": "an attribute has the wrong type",
    "attr-value": "an attribute has a value outside its allowed set",
    "layout-missing": "a required group or dataset is absent",
    "length-mismatch": "a per-sample dataset does not have n_samples rows",
    "field-length": "a field's leading axis is not n_samples",
    "field-role": "a field's role is missing or not one of input/target/param/input,target",
    "field-dims": "a field's dims do not match its axes",
    "field-dtype": "a field is not floating point",
    "coords-missing": "a spatial or time axis has no coordinate array",
    "coords-mismatch": "a coordinate array's length differs from the field axis",
    "no-input": "no field has role input",
    "no-target": "no field has role target",
    "no-checksum": "(warning) a field is stored without fletcher32 checksums",
    "chunking": "(warning) a field is not chunked one sample per chunk",
    "status-value": "a status outside 0 pending / 1 ok / 2 failed",
    "pending": "samples are still pending (generation interrupted)",
    "complete-flag": "the 'complete' attribute disagrees with the status",
    "failed": "(warning) some samples failed; they are kept as data about failure",
    "failed-no-error": "a failed sample has no error message",
    "split-dtype": "a split is not a 1-D integer array",
    "split-unsorted": "a split is not strictly increasing",
    "split-range": "a split index is outside [0, n_samples)",
    "split-overlap": "two splits share samples",
    "failed-in-split": "a failed sample is in a split",
    "split-not-ok": "a pending (or invalid-status) sample is in a split",
    "split-name": "(warning) a split other than train/val/test",
    "split-missing": "(warning) no train split",
    "offsets": "ragged /mesh offsets do not start at 0, decrease, or miss the row count",
    "recipe-hash": "recipe_sha256 does not match the recipe text",
    "stats-missing": "(warning) a field has no train statistics",
    "stats-mismatch": "stored statistics differ from the train split (shape, or --deep values)",
    "chunk-corrupt": "(--deep) a chunk fails its checksum or cannot be decoded",
    "nonfinite": "(--deep) an ok sample holds NaN or Inf",
    "digest-mismatch": "(--deep) content_sha256 differs from the content",
}
OPEN_CODES = ("not-found", "not-hdf5", "truncated", "unreadable")


@dataclass(frozen=True)
class Problem:
    """One finding: ``code`` (see :data:`CODES`), HDF5 ``location``, ``message``, ``severity``."""

    code: str
    location: str
    message: str
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown problem code {self.code!r}; known: {sorted(CODES)}")
        if self.severity not in ("error", "warning"):
            raise ValueError(f"severity must be 'error' or 'warning', got {self.severity!r}")

    def __str__(self) -> str:
        return f"{self.code}  {self.location}  {self.message}"


@dataclass
class ValidationReport:
    """The problems :func:`validate` found in ``path``; ``ok`` when none is an error."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    deep: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def codes(self) -> set[str]:
        return {p.code for p in self.problems}

    @property
    def unreadable(self) -> bool:
        """True when the file could not be opened at all (no other check ran)."""
        return any(p.code in OPEN_CODES for p in self.problems)

    def __repr__(self) -> str:
        codes = ", ".join(sorted(self.codes)) or "clean"
        return (
            f"ValidationReport({str(self.path)!r}, deep={self.deep}, {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings: {codes})"
        )
