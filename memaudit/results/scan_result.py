"""ScanResult: the single source of truth of a scan. JSON is canonical; every report is a view of it.

It holds only what the same inputs and seed reproduce exactly (no clock times, no host names), so
result.json is byte-identical across reruns; when and where a run happened goes in run.json.
No training pixels and no captions: training items appear by id and digest only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from memaudit.checkpoint.files import AdapterFile, WeightFile
from memaudit.results.attack_evidence import MembershipEvidence, RetriggerEvidence
from memaudit.results.frozen import Frozen
from memaudit.results.identity_evidence import ReidentificationEvidence, TailRecord
from memaudit.results.prompt_evidence import CaptionCount, PromptScore

RESULT_SCHEMA_VERSION = "2.11"
CheckStatus = Literal["ok", "error", "not_applicable", "disabled"]
RuleStatus = Literal["pass", "warn", "fail", "error"]
Verdict = Literal["pass", "fail", "error"]


class CalibrationRecord(Frozen):
    """How a threshold was calibrated: the k-th smallest (lower tail) or largest (upper tail) of n
    holdout values, bounding the share of unseen items beyond it by ``bound`` at ``confidence``."""

    tail: Literal["lower", "upper"]
    n: int
    k: int
    false_alarm: float
    confidence: float
    bound: float
    sufficient: bool


class NoiseMagnitudeEvidence(Frozen):
    detector: str = "wen"
    unet_passes: int | None = None  # UNet sample evaluations per prompt-generation
    threshold: float
    calibration_quantile: float
    calibration: CalibrationRecord
    steps: int
    schedule: int | None = None  # the triage sampler's schedule length (None: a result before schema 2.5)
    generations: int
    train: list[PromptScore]
    holdout_scores: list[float]  # one per distinct holdout prompt: the calibration's n
    flagged_item_ids: list[str]
    # None: a result before schema 2.6, which counted distinct captions as prompts
    train_captions: CaptionCount | None = None
    holdout_captions: CaptionCount | None = None


class CountTestRecord(Frozen):
    """The count test of the family test (metrics/copy_count.py): of ``candidates``, ``below`` met the
    per-candidate thresholds (closer than the ``rank``-th smallest of ``holdout`` distances); at level
    ``level`` at least ``copies_at_least`` of them are copies."""

    rank: int
    holdout: int
    candidates: int
    below: int
    copies_at_least: int
    level: float


class AttackedPrompt(Frozen):
    item_ids: list[str]
    reason: Literal["flagged", "ranked", "sampled", "all", "image"]
    clique_size: int
    clique_exact: bool = True  # False: the clique search hit its budget; clique_size is a lower bound
    nearest_train_id: str | None
    distance: float | None
    extracted: bool
    distance_ratio: float | None = None  # nearest over second-nearest distinct training image distance
    p_value: float | None = None  # how often an unseen image comes this close (None: no candidate)


class ExtractionEvidence(Frozen):
    generations: int
    edge_threshold: float
    min_clique: int
    verify_threshold: float  # the holdout order statistic: closer than unseen real images come
    verify_quantile: float
    calibration: CalibrationRecord
    ratio_threshold: float | None = None  # a copy is specific: its distance ratio is below this
    specificity_quantile: float | None = None
    ratio_calibration: CalibrationRecord | None = None
    criterion: Literal["separate", "combined"] = "separate"  # 2.9 on; combined: distance x ratio decides
    combined_threshold: float | None = None
    combined_calibration: CalibrationRecord | None = None
    family_false_alarm: float | None = None  # family level over all candidates: half BH, half the count test
    tail: TailRecord | None = None  # None: conformal p-values only
    count_test: CountTestRecord | None = None  # None: family test off (or a result before schema 2.4)
    attacked: list[AttackedPrompt]
    extracted_train_ids: list[str]


class NearestNeighbourEvidence(Frozen):
    extractor: str
    extractor_weights_sha256: str
    tau: float
    near_copy_quantile: float
    calibration: CalibrationRecord
    generated_min_distances: list[float]
    holdout_min_distances: list[float]
    near_copy_train_ids: list[str]


class FidEvidence(Frozen):
    extractor: str
    real_samples: int
    generated_samples: int


class EvidenceImage(Frozen):
    """Internal use only (--include-evidence-images): a generated image beside the training image it copies.

    Pixels travel as lossless PNG bytes (base64 in JSON); the renderers decide how to show them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    label: str
    train_id: str
    generated_png: bytes
    train_png: bytes


class CheckOutcome(Frozen):
    status: CheckStatus
    required: bool
    message: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    sample_sizes: dict[str, int] = Field(default_factory=dict)  # the n behind each rate metric
    warnings: list[str] = Field(default_factory=list)  # e.g. a holdout too small for its quantile
    # A rule on this check that holds is only a warning, for this reason (e.g. membership uncalibrated).
    caveat: str | None = None
    # Metrics the check could not make meaningful at these sizes, with the sizes needed: a rule on one is
    # not applicable (an error when the check is required: it could pass but never fail).
    not_applicable: dict[str, str] = Field(default_factory=dict)
    noise_magnitude: NoiseMagnitudeEvidence | None = None
    extraction: ExtractionEvidence | None = None
    nearest_neighbour: NearestNeighbourEvidence | None = None
    fid: FidEvidence | None = None
    membership: MembershipEvidence | None = None
    retrigger: RetriggerEvidence | None = None
    reidentification: ReidentificationEvidence | None = None  # 2.8 on
    # Thumbnails of copies, when the scan was asked for them; the result gathers them in `evidence_images`.
    evidence_images: list[EvidenceImage] = Field(default=[], exclude=True)


class RuleOutcome(Frozen):
    id: str
    metric: str
    description: str
    value: float | None
    threshold: float
    direction: Literal["at_most", "at_least"]
    severity: Literal["fail", "warn"]
    status: RuleStatus
    message: str
    samples: int | None = None  # rate rules: the sample size the verdict rests on
    p_value: float | None = None  # rate rules: one-sided binomial p-value of the excess over the threshold

    @property
    def shown_status(self) -> str:
        """The status as a person reads it beside the rule: a pass on a metric nothing measured (its check
        not applicable to this audit) is "n/a", never "pass"; the verdict counts it as status says."""
        return "n/a" if self.status == "pass" and self.value is None else self.status


class DatasetRecord(Frozen):
    source: str
    digest: str
    items: int


class ModelRecord(Frozen):
    source: str
    format: str
    weight_files: list[WeightFile]
    # Every other file that changes behaviour (model_index.json, configs, tokenizer; a single file's
    # --config folder's as config/...) and one digest over them and the weights; 2.6 on.
    config_files: list[WeightFile] = Field(default_factory=list)
    digest: str | None = None
    image_size: int
    transformer_blocks: int
    # What the denoiser predicts (epsilon, v_prediction, sample; flow: the velocity e - x0); 2.3 on.
    prediction_type: str | None = None
    family: str | None = None  # checkpoint.families (sd, sdxl, sd3, pixart, sana, flux, lumina2); 2.7 on
    adapters: list[AdapterFile] = Field(default_factory=list)  # LoRA files fused into the weights; 2.7 on
    guidance_scale: float | None = None  # what the model was sampled with (sampling.family_defaults); 2.7 on


class PolicyRecord(Frozen):
    name: str
    file: str
    sha256: str
    content: dict
    overrides: dict


class Environment(Frozen):
    memaudit: str
    python: str
    torch: str
    diffusers: str
    transformers: str
    device: str
    dtype: str | None = None  # the UNet's sampling precision (a model scan; the policy's dtype applies on CUDA only)


class RunRecord(BaseModel):
    """When and how a scan ran: kept beside result.json (run.json), because it is not reproducible."""

    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    stage_seconds: dict[str, float] = {}
    argv: list[str] = []
    platform: str | None = None


class ScanResult(Frozen):
    schema_version: str = RESULT_SCHEMA_VERSION
    mode: Literal["model", "images"]
    verdict: Verdict
    summary: str
    policy: PolicyRecord
    model: ModelRecord | None
    generated_images: DatasetRecord | None
    train: DatasetRecord
    holdout: DatasetRecord
    checks: dict[str, CheckOutcome]
    rules: list[RuleOutcome]
    environment: Environment
    evidence_images: list[EvidenceImage] | None = None

    def to_json(self) -> str:
        """Canonical bytes: sorted keys, two-space indent, trailing newline."""
        import json

        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
