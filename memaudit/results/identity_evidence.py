"""Evidence of the re-identification check (DESIGN 3.9): which training patients an image is linked to,
by id only, and the calibration that says how sure."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from memaudit.metrics.tail import LowerTail
from memaudit.results.frozen import Frozen


class TailRecord(Frozen):
    """The holdout's fitted lower tail (metrics/tail.py): p-values below ``anchor`` (the k-th smallest
    of n holdout distances) extrapolate a power law with exponent ``dimension_low``."""

    n: int
    k: int
    anchor: float
    anchor_bound: float
    dimension: float
    dimension_low: float

    @classmethod
    def of(cls, tail: LowerTail | None) -> TailRecord | None:
        """The record of a fitted tail; None when there is none (conformal p-values only)."""
        if tail is None or tail.k == 0:
            return None
        fields = ("n", "k", "anchor", "anchor_bound", "dimension", "dimension_low")
        return cls(**{name: getattr(tail, name) for name in fields})


class ReidentifiedPatient(Frozen):
    patient_id: str
    images: int  # scored images the per-image test selected for this patient (0: named by the count test)
    probability: float  # the verifier's highest P(same patient) among the images attributed to the patient
    p_value: float  # the smallest per-image p-value among them: how often an unseen patient's image comes that close
    attributed: int | None = None  # 2.10 on: scored images whose most likely training patient this is
    count_p_value: float | None = None  # 2.10 on: the count test's p-value, when it named the patient
    holdout_attributed: int | None = None  # 2.10 on: holdout images attributed to the patient (its null)


class ReidentificationEvidence(Frozen):
    verifier: str  # the folder the weights came from
    verifier_sha256: str
    architecture: str
    input_side: int
    trained_on: str | None = None
    top_k: int
    family_false_alarm: float
    images_scored: int  # generated (or released) images compared with the training patients
    holdout_images: int  # images of unseen patients: the null distribution
    training_patients: int
    tail: TailRecord | None = None  # None: conformal p-values only
    identification: str  # what the family test can name at these sizes
    # 1 - P(same patient) of each scored image and each holdout image (the report's plot reads them)
    image_distances: list[float]
    holdout_distances: list[float]
    patients: list[ReidentifiedPatient]  # the re-identified training patients, by id
    # 2.11 on: patients drawing enough images that the count test could name them (Tarone's filter)
    count_tested: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _without_count_null(cls, data: Any) -> Any:
        """Early 2.11 results also wrote ``count_null`` (the count test's null, when it still ran on a model's
        images against the base's): read back without it, since the count test no longer takes a base."""
        if isinstance(data, dict) and "count_null" in data:
            return {key: value for key, value in data.items() if key != "count_null"}
        return data
