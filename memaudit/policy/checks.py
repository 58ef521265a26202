"""The policy's checks: which run, with what budgets, and whether they are required."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from memaudit.policy.reidentification import ReidentificationCheck
from memaudit.policy.strict import CheckSettings, Probability, StrictModel


class NoiseMagnitudeCheck(CheckSettings):
    """Triage: a memorization score per training prompt, flagged against holdout captions. The default
    detector is Wen et al.'s text-conditional noise magnitude over the first ``steps`` sampler steps."""

    detector: str = Field("wen", description="a registered triage detector (DESIGN 3.7): wen, asthana, jeon, ...")
    steps: int = Field(1, ge=1, description="denoising steps averaged (wen only; the others use the first step)")
    num_inference_steps: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="length of the triage's own sampler schedule (default: the sampling's). The probe's first "
        "step is that schedule's first timestep: 2 or 3 steps start at t ~ T/2 or 2T/3, where a memorized "
        "caption's noise difference already shows its image, instead of t ~ T, where the latent is all noise",
    )
    generations: int = Field(4, ge=1)
    calibration_quantile: Probability = 0.99

    @field_validator("detector")
    @classmethod
    def _known_detector(cls, value: str) -> str:
        from memaudit.metrics.triage import DETECTORS

        if value not in DETECTORS:
            raise ValueError(f"unknown triage detector '{value}'; available: {', '.join(DETECTORS)}")
        return value

    @model_validator(mode="after")
    def _detector_budget(self) -> NoiseMagnitudeCheck:
        from memaudit.metrics.triage import DETECTORS

        spec = DETECTORS[self.detector]
        if self.generations < spec.min_generations:
            raise ValueError(f"detector '{self.detector}' needs generations >= {spec.min_generations}")
        if spec.first_step_only and self.steps != 1:
            raise ValueError(f"detector '{self.detector}' scores the first step only: steps must be 1")
        if self.num_inference_steps is not None and self.steps > self.num_inference_steps:
            raise ValueError(f"steps ({self.steps}) exceeds the triage schedule's num_inference_steps "
                             f"({self.num_inference_steps})")  # fmt: skip
        return self


class ExtractionCheck(CheckSettings):
    """Carlini et al.: generate many images per prompt, find a large clique of near-identical ones."""

    generations: int = Field(50, ge=2)
    tiles: int = Field(4, ge=1, description="the tiled L2 uses a tiles x tiles grid")
    comparison_side: int | None = Field(
        None,
        ge=1,
        description="side in px at which generated and training images are compared (tiled L2); default: the "
        "generation side. A copy stays a copy at 128 px, and each halving makes the search 4x cheaper",
    )
    edge_threshold: float = Field(0.1, gt=0.0, description="tiled L2 at or below which two generations are linked")
    min_clique: int | None = Field(
        None, ge=2, description="default: max(3, ceil(generations / 50)), i.e. 10 at Carlini's 500"
    )
    verify_quantile: Probability = 0.01
    specificity_quantile: Probability | None = Field(
        0.05,
        description="a candidate is a copy only if its nearest/second-nearest distinct training image distance "
        "ratio is below this quantile of the holdout images' ratios (DESIGN 3.6); null: off",
    )
    criterion: Literal["separate", "combined"] = Field(
        "separate",
        description="separate: closer than the verify threshold AND below the specificity one; combined: distance x "
        "distance ratio below the verify_quantile of the holdout's same product (a blurred but specific copy counts; "
        "the family test reads the product). Needs specificity_quantile",
    )
    family_false_alarm: Probability | None = Field(
        0.01,
        description="the chance that a model or release copying nothing shows any extracted image: candidates "
        "must also be significant together (Benjamini-Hochberg over every attacked prompt or released image, "
        "on holdout p-values; DESIGN 3.5); null: off",
    )
    prompts: Literal["triage", "all"] = "triage"
    ranked_prompts: Annotated[int, Field(ge=0)] | Literal["fill"] = Field(
        0,
        description="the highest-scoring unflagged prompts attacked too (triage ranks even when it flags none); "
        "'fill': as many as the max_prompts cap leaves after the flagged prompts and the random sample",
    )
    random_prompts: int = Field(20, ge=0, description="unflagged prompts attacked in addition to the flagged ones")
    max_prompts: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _tiles_fit(self) -> ExtractionCheck:
        if self.comparison_side is not None and self.comparison_side < self.tiles:
            raise ValueError(f"comparison_side {self.comparison_side} is smaller than the {self.tiles} tiles per side")
        return self

    @model_validator(mode="after")
    def _combined_needs_ratios(self) -> ExtractionCheck:
        if self.criterion == "combined" and self.specificity_quantile is None:
            raise ValueError("criterion 'combined' multiplies the distance by its ratio; set specificity_quantile")
        return self

    @model_validator(mode="after")
    def _fill_has_a_cap(self) -> ExtractionCheck:
        if self.ranked_prompts == "fill" and self.max_prompts is None:
            raise ValueError("ranked_prompts 'fill' spends what max_prompts leaves; set max_prompts")
        return self

    def ranked_budget(self, flagged: int) -> int:
        """How many unflagged prompts are attacked by score after ``flagged`` ones: as given, or with 'fill'
        every place of the cap that the flagged prompts and the random sample leave (the policy pays for
        the cap; the score decides what it buys)."""
        if self.ranked_prompts != "fill":
            return self.ranked_prompts
        return max(0, self.max_prompts - self.random_prompts - flagged)

    @property
    def effective_min_clique(self) -> int:
        return self.min_clique if self.min_clique is not None else max(3, math.ceil(self.generations / 50))


class NearestNeighbourCheck(CheckSettings):
    """AMD and the holdout-calibrated near-copy rate in a feature space."""

    extractor: str = "xrv-densenet121"
    extractor_weights: Path | None = None
    generations_per_prompt: int = Field(1, ge=1)
    max_prompts: int | None = Field(None, ge=1)
    near_copy_quantile: Probability = 0.05
    chunk_size: int = Field(4096, ge=1)

    @field_validator("extractor")
    @classmethod
    def _known_extractor(cls, value: str) -> str:
        from memaudit.features import extractor_names

        if value not in extractor_names():
            raise ValueError(f"unknown extractor '{value}'; available: {', '.join(extractor_names())}")
        return value


class FidCheck(CheckSettings):
    """FID between holdout and generated images, on the nearest-neighbour extractor's features."""

    min_samples: int = Field(2, ge=2)


class AlignmentCheck(CheckSettings):
    """BioViL-T image-text alignment; needs local hi-ml-multimodal weights."""

    enabled: bool = False
    required: bool = False
    weights: Path | None = None


class MembershipCheck(CheckSettings):
    """Can an attacker tell a training study from an unseen one? The loss attack by default (chosen on the
    bench: the one attack that ranked trained memorizers' planted studies first in both domains); PIA (Kong et
    al., ICLR 2024) and SecMI (Duan et al., ICML 2023) share the calibration and the family test."""

    enabled: bool = False
    attack: Literal["pia", "loss", "secmi"] = Field(
        "loss",
        description="pia: proximal initialization, 2 evaluations per study; loss: the denoising loss over `draws` "
        "seeded noises; secmi: the t-error after a deterministic inversion, timestep / interval + 2 evaluations",
    )
    timestep: int = Field(200, ge=1, description="the attack's timestep on the training schedule (of 1000)")
    p: float = Field(4.0, ge=1.0, description="pia: the L_p distance between the two noise predictions")
    draws: int = Field(4, ge=1, description="loss: seeded noise draws averaged per study")
    interval: int = Field(10, ge=1, description="secmi: the inversion's step; timestep must be a multiple of it")
    max_train: int | None = Field(None, ge=2, description="a seeded sample of distinct training items (default all)")
    max_holdout: int | None = Field(None, ge=2, description="a seeded sample of holdout items (default all)")
    reference: Literal["base", "none"] = Field(
        "none",
        description="base: score each study by the attack's distance under the model over its distance under the "
        "base the model was fine-tuned from (`--base`), so that what is hard for any model scores no higher; "
        "without --base the check runs uncalibrated and a passing rule on it is only a warning",
    )
    family_false_alarm: Probability = Field(
        0.01,
        description="a training study counts as identified when the Benjamini-Hochberg step-up over all scored "
        "training studies selects it on holdout p-values; if the model leaks no membership, the chance that any "
        "study is identified is at most this",
    )

    @model_validator(mode="after")
    def _secmi_steps(self) -> MembershipCheck:
        if self.attack == "secmi" and self.timestep % self.interval:
            raise ValueError(f"secmi: timestep ({self.timestep}) must be a multiple of interval ({self.interval})")
        return self


class RetriggerCheck(CheckSettings):
    """Finding Dori: do small perturbations of a formerly memorized prompt's embedding bring the copy back?"""

    enabled: bool = False
    when: Literal["always", "before"] = Field(
        "always", description="before: only when the scan is given a previous result (a remediation's after-scan)"
    )
    scales: list[float] = Field([0.02, 0.05, 0.1, 0.2], min_length=1, description="Gaussian noise, x rms(embedding)")
    ascent_radius: float | None = Field(0.1, gt=0.0, description="gradient-ascent budget, x rms(embedding); null: off")
    ascent_steps: int = Field(5, ge=1)
    generations: int | None = Field(None, ge=2, description="per perturbation (default: the extraction's)")
    max_prompts: int = Field(8, ge=1, description="the highest-scoring flagged or extracted prompts tested")

    @field_validator("scales")
    @classmethod
    def _positive_scales(cls, values: list[float]) -> list[float]:
        if any(not math.isfinite(v) or v <= 0 for v in values):
            raise ValueError(f"scales must be finite and positive, got {values}")
        return sorted(values)


class Checks(StrictModel):
    noise_magnitude: NoiseMagnitudeCheck = NoiseMagnitudeCheck()
    extraction: ExtractionCheck = ExtractionCheck()
    nearest_neighbour: NearestNeighbourCheck = NearestNeighbourCheck()
    fid: FidCheck = FidCheck()
    alignment: AlignmentCheck = AlignmentCheck()
    membership: MembershipCheck = MembershipCheck()
    retrigger: RetriggerCheck = RetriggerCheck()
    reidentification: ReidentificationCheck = ReidentificationCheck()
