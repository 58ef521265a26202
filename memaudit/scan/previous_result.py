"""A previous scan given with ``--before``: checked before any model work, since re-triggering matches its
prompts to this scan's training items by id."""

from __future__ import annotations

from pathlib import Path

from memaudit.data import ImageCaptionDataset
from memaudit.errors import DataError
from memaudit.results.scan_result import ScanResult


def check_before(before: ScanResult, path: Path, *, train: ImageCaptionDataset) -> None:
    """A ``--before`` result re-triggers its extracted and flagged prompts in this scan, matched by the
    training items they name: it must be a model scan of this very training set, or re-triggering would
    test nothing and its rule would pass without examining anything."""
    if before.mode != "model":
        raise DataError(
            f"--before {path}: a scan of {before.mode}, not of a model; re-triggering perturbs the prompts a model "
            "scan extracted or flagged (give the result.json of a model scan)"
        )
    if before.train.digest != train.digest:
        raise DataError(
            f"--before {path}: scanned training set {before.train.digest[:16]}... ({before.train.items} items), "
            f"not this scan's {train.digest[:16]}... ({len(train)} items, {train.source}); its prompts are "
            "matched to this training set's items, so give the result of a scan on the same training set"
        )
