"""The catalogue of metrics a policy rule may judge: one entry per metric, the single source of truth
for its direction (higher_is_better) and meaning; the metric functions themselves do not restate it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CheckName = Literal[
    "noise_magnitude",
    "extraction",
    "nearest_neighbour",
    "fid",
    "alignment",
    "membership",
    "retrigger",
    "reidentification",
]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    check: CheckName
    higher_is_better: bool
    description: str
    rate: bool = False  # a share of a sample: judged with a one-sided binomial test on the sample size
    low: float = 0.0  # the smallest value the metric can take
    high: float = float("inf")  # the largest (1 for fractions and rates)


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "noise_magnitude.flagged_count",
            "noise_magnitude",
            False,
            "training prompts whose text-conditional noise magnitude exceeds the holdout-calibrated threshold",
        ),
        MetricSpec(
            "noise_magnitude.flagged_fraction",
            "noise_magnitude",
            False,
            "fraction of training prompts flagged by noise magnitude",
            rate=True,
            high=1.0,
        ),
        MetricSpec(
            "extraction.extracted_count",
            "extraction",
            False,
            "generated images verified as copies of a training image (distinct training images)",
        ),
        MetricSpec(
            "extraction.extraction_rate",
            "extraction",
            False,
            "fraction of attacked prompts from which a training image was extracted",
            rate=True,
            high=1.0,
        ),
        MetricSpec(
            "nearest_neighbour.amd",
            "nearest_neighbour",
            True,
            "average over generated samples of the minimum cosine distance to the training set",
            high=2.0,
        ),
        MetricSpec(
            "nearest_neighbour.near_copy_rate",
            "nearest_neighbour",
            False,
            "fraction of generated samples closer to a training image than the holdout-calibrated tau",
            rate=True,
            high=1.0,
        ),
        MetricSpec("fid.fid", "fid", False, "Frechet distance between holdout-real and generated features"),
        MetricSpec(
            "alignment.score",
            "alignment",
            True,
            "mean BioViL-T cosine between generated images and their report text",
            low=-1.0,
            high=1.0,
        ),
        MetricSpec(
            "membership.auc",
            "membership",
            False,
            "probability that the membership attack scores a random training study above a random unseen one",
            high=1.0,
        ),
        MetricSpec(
            "membership.identified_count",
            "membership",
            False,
            "training studies singled out as members: their membership score is beyond what unseen studies "
            "reach, significant over all scored studies (Benjamini-Hochberg on holdout p-values)",
        ),
        MetricSpec(
            "membership.tpr_at_1pct_fpr",
            "membership",
            False,
            "share of training studies the membership attack identifies while accusing at most 1% of unseen ones",
            rate=True,
            high=1.0,
        ),
        MetricSpec(
            "membership.patient_auc",
            "membership",
            False,
            "the same AUC per patient (a patient scores as one seeded draw of their studies, so patients with many "
            "studies do not stand out by count); needs patient ids and enough patients on each side",
            high=1.0,
        ),
        MetricSpec(
            "membership.patient_tpr_at_1pct_fpr",
            "membership",
            False,
            "share of training patients identified while accusing at most 1% of unseen patients; needs patient ids "
            "and enough patients on each side (299 at calibration.confidence 0.95)",
            rate=True,
            high=1.0,
        ),
        MetricSpec(
            "membership.tpr_at_01pct_fpr",
            "membership",
            False,
            "the same at 0.1% of unseen studies (needs at least 1,000 holdout studies to mean anything)",
            rate=True,
            high=1.0,
        ),
        MetricSpec(
            "retrigger.retriggered_count",
            "retrigger",
            False,
            "formerly flagged or extracted prompts whose training image comes back under a small perturbation "
            "of their text embedding",
        ),
        MetricSpec(
            "reidentification.reidentified_patients",
            "reidentification",
            False,
            "training patients an image re-identifies: the verifier links the image to the patient beyond what "
            "images of unseen patients reach, at the family test's level",
        ),
    )
}
