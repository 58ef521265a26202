"""The re-identification check's settings (``checks.reidentification``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from memaudit.policy.strict import CheckSettings, Probability


class ReidentificationCheck(CheckSettings):
    """Could an image be linked to a training patient? A verification network (``memaudit reid train``)
    compares each generated (or released) image with its nearest training images; calibrated on holdout
    patients, a family test names the training patients an image re-identifies (by id only)."""

    enabled: bool = False
    weights: Path | None = Field(None, description="a verifier folder (config.json + model.safetensors)")
    top_k: int = Field(5, ge=1, description="nearest training images (by the verifier's embedding) scored per image")
    family_false_alarm: Probability = Field(
        0.01,
        description="the per-image test's level (Benjamini-Hochberg over all scored images on holdout p-values), "
        "halved with the patient count test on; if no image shows a training patient, the chance that any "
        "patient is named is at most this",
    )
    count_test: bool = Field(
        False,
        description="on an --images audit of real studies, also name a patient who draws more released images (as "
        "most likely patient) than the holdout's images give them, at half the family level (exact for real "
        "images). Never on a model's images: neither the holdout's real images, the base's images nor one shadow "
        "fine-tune's are a valid null for them (bench/reid_model.py, bench/reid_identity.py: each named patients a "
        "model never saw)",
    )
    batch_size: int = Field(64, ge=1, description="images per verifier batch")
