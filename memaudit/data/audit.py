"""`memaudit data check`: decode every image and look for data problems that undermine an audit."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from pydantic import BaseModel

from memaudit.data.dataset import ImageCaptionDataset
from memaudit.data.overlap import find_overlap


class DatasetFacts(BaseModel):
    source: str
    manifest: str
    digest: str
    items: int
    patients: int | None
    studies_per_patient: dict[str, float] | None = None  # min, median, max rows per patient
    rows_without_patient: int = 0
    unique_captions: int
    image_shapes: dict[str, int]
    duplicate_images: list[list[str]]


class DataCheckReport(BaseModel):
    """Facts per dataset plus findings: problems that make memorization more likely or its audit unsound."""

    train: DatasetFacts
    holdout: DatasetFacts | None = None
    shared_patients: list[str] = []
    shared_images: list[list[str]] = []
    findings: list[str] = []


def _facts(dataset: ImageCaptionDataset, progress: Callable[[], None] | None) -> DatasetFacts:
    shapes: Counter[str] = Counter()
    for index in range(len(dataset)):
        shapes["x".join(map(str, dataset.load_image(index).shape))] += 1
        if progress:
            progress()
    by_digest: dict[str, list[str]] = defaultdict(list)
    for record, digest in zip(dataset.records, dataset.image_digests, strict=True):
        by_digest[digest].append(record.id)
    studies = Counter(record.patient_id for record in dataset.records if record.patient_id)
    patients = set(studies)
    per_patient = None
    if studies:
        counts = sorted(studies.values())
        middle = len(counts) // 2
        median = counts[middle] if len(counts) % 2 else (counts[middle - 1] + counts[middle]) / 2
        per_patient = {"min": counts[0], "median": median, "max": counts[-1]}
    return DatasetFacts(
        studies_per_patient=per_patient,
        rows_without_patient=sum(not record.patient_id for record in dataset.records),
        source=str(dataset.source),
        manifest=str(dataset.manifest),
        digest=dataset.digest,
        items=len(dataset),
        patients=len(patients) if patients else None,
        unique_captions=len(set(dataset.captions)),
        image_shapes=dict(sorted(shapes.items())),
        duplicate_images=sorted(ids for ids in by_digest.values() if len(ids) > 1),
    )


def check_datasets(
    train: ImageCaptionDataset,
    holdout: ImageCaptionDataset | None = None,
    *,
    progress: Callable[[], None] | None = None,
) -> DataCheckReport:
    """Decode every image (a bad file raises DataError naming it) and collect findings."""
    report = DataCheckReport(train=_facts(train, progress))
    if report.train.duplicate_images:
        report.findings.append(
            f"train: {len(report.train.duplicate_images)} group(s) of byte-identical images; duplicated "
            "training images are the ones diffusion models memorize first"
        )
    if holdout is not None:
        report.holdout = _facts(holdout, progress)
        overlap = find_overlap(train, holdout)
        report.shared_patients = overlap.patients
        report.shared_images = [[*train_ids, holdout_id] for holdout_id, train_ids in overlap.images]
        if report.shared_patients:
            report.findings.append(
                f"{len(report.shared_patients)} patient(s) appear in both train and holdout; holdout "
                "calibration then understates what an unseen patient looks like"
            )
        if report.shared_images:
            report.findings.append(
                f"{len(report.shared_images)} holdout image(s) are byte-identical to training images"
            )
    return report
