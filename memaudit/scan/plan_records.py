"""What a scan plan holds: the inputs' sizes, the unit costs measured on a device, and per stage the
counts of work and their time (``memaudit.scan.plan`` fills them)."""

from __future__ import annotations

from pydantic import BaseModel


class PlanSizes(BaseModel):
    """The inputs' sizes a plan needs (read from the data, or given to plan a hypothetical scan)."""

    train_prompts: int  # distinct training captions
    train_rows: int
    train_images: int  # distinct training image files
    train_items: int  # distinct (image, caption) pairs
    holdout_prompts: int
    holdout_rows: int
    holdout_items: int
    comparison_side: int  # tiled-L2 side: the policy's comparison_side, else the images' side
    released_images: int = 0  # --images: the release audited instead of a model


class UnitCosts(BaseModel):
    """Seconds per unit of work, measured on ``device``; None where it could not be measured."""

    device: str
    unet_evaluation: float  # per sample, at the policy's batch size
    vae_decode: float
    vae_encode: float
    feature_extraction: float | None
    tiled_l2_comparison: float
    image_load: float
    device_memory_bytes: int | None = None  # peak allocated while timing (CUDA only)


class StagePlan(BaseModel):
    stage: str
    unet_evaluations: int = 0
    vae_decodes: int = 0
    vae_encodes: int = 0
    feature_extractions: int = 0
    tiled_l2_comparisons: int = 0
    image_loads: int = 0
    note: str = ""
    seconds: float | None = None


class ScanPlan(BaseModel):
    policy: str
    sizes: PlanSizes
    stages: list[StagePlan]
    disk_bytes: int  # caches the scan fills (comparison pixels, features)
    host_memory_bytes: int  # estimated peak: model weights plus the largest stage's buffers
    costs: UnitCosts | None
    seconds: float | None

    @property
    def unet_evaluations(self) -> int:
        return sum(stage.unet_evaluations for stage in self.stages)
