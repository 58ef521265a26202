"""The policy schema (pydantic): sampling settings, checks with their budgets, and rules with severities."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from memaudit.policy.checks import Checks
from memaudit.policy.metrics import METRICS
from memaudit.policy.strict import Probability, StrictModel

POLICY_SCHEMA_VERSION = 1
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class Severity(StrEnum):
    FAIL = "fail"
    WARN = "warn"


class Sampling(StrictModel):
    """How images are generated; every random choice derives from ``seed``."""

    seed: int = Field(0, ge=0)
    scheduler: Literal["ddim", "checkpoint"] = Field(
        "ddim", description="ddim: DDIM over the checkpoint's noise schedule; checkpoint: its own scheduler"
    )
    num_inference_steps: int = Field(50, ge=1, le=1000)
    guidance_scale: float = Field(7.5, ge=0.0)
    family_defaults: bool = Field(
        False,
        description="sample with the model family's own guidance scale (SD 1.x/2.x 7.5, SDXL 5, SD 3.x, PixArt "
        "and Sana 4.5, Lumina 2 4, Flux 3.5 embedded) instead of guidance_scale; the result records what ran",
    )
    resolution: int | None = Field(None, ge=8, description="image side in pixels; default: the model's own")
    batch_size: int = Field(8, ge=1)
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="model weights and sampling on CUDA; a CPU scan always runs in float32"
    )


class Remediation(StrictModel):
    """MemControl search settings (Dutt et al.): bi-level search over which blocks a PEFT method trains."""

    spaces: list[Literal["svdiff", "difffit", "attention", "lora"]] = Field(default_factory=lambda: ["svdiff"])
    trials: int = Field(20, ge=1)
    population_size: int = Field(10, ge=2)
    memorization_set_size: int = Field(100, ge=1, description="D_mem pairs: flagged/extracted, then unique captions")
    memorization_repeats: int = Field(50, ge=1)
    proxy_fraction: float = Field(0.01, gt=0.0, le=1.0, description="share of the training set in the proxy data")
    inner_steps: int = Field(200, ge=0)
    retrain_steps: int = Field(1000, ge=0)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(1e-4, gt=0.0)
    lora_rank: int = Field(4, ge=1)
    fid_prompts: int = Field(64, ge=2, description="holdout captions generated for the quality objective")
    max_memorization: float | None = Field(
        None, gt=0.0, description="optional constraint: mean D_mem noise magnitude must not exceed this"
    )
    selection: Literal["normalized-mean", "best-fid-within-constraint"] = "normalized-mean"


class DataSettings(StrictModel):
    """How the training and holdout sets must relate."""

    allow_train_holdout_overlap: bool = Field(
        False,
        description="calibrating on images the model was trained on makes every threshold too small; a scan "
        "refuses train/holdout overlap (by image digest or patient id) unless this is true",
    )


class CalibrationSettings(StrictModel):
    """How sure the holdout-calibrated thresholds and the rate rules must be (DESIGN 3.5)."""

    confidence: Probability = Field(
        0.95,
        description="each threshold keeps the share of unseen items beyond it within its quantile at this confidence",
    )
    small_holdout: Literal["error", "warn"] = Field(
        "error", description="a holdout too small for a quantile: an error naming the size needed, or a warning"
    )
    rate_confidence: Probability = Field(
        0.99, description="a rate rule fails when its sample exceeds the threshold at this one-sided confidence"
    )


class Rule(StrictModel):
    """value must be ``at_most`` or ``at_least`` the threshold; a breach fails or warns per severity."""

    metric: str
    at_most: float | None = None
    at_least: float | None = None
    severity: Severity = Severity.FAIL
    description: str = ""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            import difflib

            close = difflib.get_close_matches(value, METRICS, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(METRICS)}"
            raise ValueError(f"unknown metric '{value}'{hint}")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> Rule:
        if (self.at_most is None) == (self.at_least is None):
            raise ValueError("give exactly one of at_most or at_least")
        spec = METRICS[self.metric]
        if not spec.low <= self.threshold <= spec.high:
            raise ValueError(
                f"{self.direction} {self.threshold:g} is outside what {self.metric} can be "
                f"([{spec.low:g}, {spec.high:g}])"
            )
        return self

    @property
    def threshold(self) -> float:
        return self.at_most if self.at_most is not None else self.at_least  # type: ignore[return-value]

    @property
    def direction(self) -> Literal["at_most", "at_least"]:
        return "at_most" if self.at_most is not None else "at_least"

    def passes(self, value: float) -> bool:
        return value <= self.threshold if self.direction == "at_most" else value >= self.threshold


class Policy(StrictModel):
    """A complete audit policy. Its file's SHA-256 and its normalised content go into every report."""

    schema_version: Literal[1] = POLICY_SCHEMA_VERSION
    name: str = Field(min_length=1)
    description: str = ""
    sampling: Sampling = Sampling()
    data: DataSettings = DataSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    checks: Checks = Checks()
    rules: dict[str, Rule] = Field(min_length=1)
    remediation: Remediation = Remediation()

    @field_validator("rules")
    @classmethod
    def _rule_ids(cls, rules: dict[str, Rule]) -> dict[str, Rule]:
        for rule_id in rules:
            if not RULE_ID.match(rule_id):
                raise ValueError(f"rule id '{rule_id}' must be lower-case letters, digits and dashes")
        return rules

    @model_validator(mode="after")
    def _fid_uses_the_neighbour_features(self) -> Policy:
        if self.checks.fid.enabled and not self.checks.nearest_neighbour.enabled:
            raise ValueError("checks.fid needs checks.nearest_neighbour enabled (it uses its extractor and samples)")
        return self

    @model_validator(mode="after")
    def _triage_steps_fit_its_schedule(self) -> Policy:
        triage = self.checks.noise_magnitude
        if triage.num_inference_steps is None and triage.steps > self.sampling.num_inference_steps:
            raise ValueError(
                f"checks.noise_magnitude.steps ({triage.steps}) exceeds sampling.num_inference_steps "
                f"({self.sampling.num_inference_steps}), the schedule triage runs on"
            )
        return self

    @model_validator(mode="after")
    def _rules_use_enabled_checks(self) -> Policy:
        for rule_id, rule in self.rules.items():
            check = METRICS[rule.metric].check
            if not getattr(self.checks, check).enabled:
                raise ValueError(f"rule '{rule_id}' judges {rule.metric}, but checks.{check} is disabled")
        return self
