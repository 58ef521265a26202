"""Train/holdout overlap: the same image file content, or the same patient, on both sides.

Calibration takes every threshold from how close unseen holdout images come to the training set; a
holdout image that is a training image sits at distance 0 and drags the thresholds to 0, so the
gate sees nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from memaudit.data.dataset import ImageCaptionDataset


@dataclass(frozen=True)
class Overlap:
    images: list[tuple[str, list[str]]]  # (holdout id, ids of the byte-identical training images)
    patients: list[str]  # patient ids on both sides

    def __bool__(self) -> bool:
        return bool(self.images or self.patients)

    def describe(self, *, first: int = 5) -> str:
        parts = []
        if self.images:
            shown = ", ".join(f"{holdout} = {'/'.join(train)}" for holdout, train in self.images[:first])
            more = f" and {len(self.images) - first} more" if len(self.images) > first else ""
            parts.append(f"{len(self.images)} holdout image(s) are training images ({shown}{more})")
        if self.patients:
            more = f" and {len(self.patients) - first} more" if len(self.patients) > first else ""
            parts.append(f"{len(self.patients)} patient(s) are in both ({', '.join(self.patients[:first])}{more})")
        return "; ".join(parts)


def find_overlap(train: ImageCaptionDataset, holdout: ImageCaptionDataset) -> Overlap:
    """Images shared by content digest, and patients shared by patient id (where both sides give one)."""
    train_by_digest: dict[str, list[str]] = defaultdict(list)
    for record, digest in zip(train.records, train.image_digests, strict=True):
        train_by_digest[digest].append(record.id)
    images = [
        (record.id, train_by_digest[digest])
        for record, digest in zip(holdout.records, holdout.image_digests, strict=True)
        if digest in train_by_digest
    ]
    train_patients = {r.patient_id for r in train.records if r.patient_id}
    holdout_patients = {r.patient_id for r in holdout.records if r.patient_id}
    return Overlap(images=images, patients=sorted(train_patients & holdout_patients))
