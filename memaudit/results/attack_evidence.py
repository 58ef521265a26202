"""Evidence of the attacker's checks: membership inference and re-triggering (DESIGN 3.8)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from memaudit.results.frozen import Frozen


class ItemScore(Frozen):
    id: str
    score: float
    p_value: float | None = None  # how often an unseen study scores at least this (training studies only)


class MembershipEvidence(Frozen):
    attack: Literal["pia", "loss", "secmi"] = "pia"  # loss and secmi: 2.8 on
    timestep: int
    p: float
    train: list[ItemScore]  # by id only: a study's score says how exposed that patient is
    holdout: list[ItemScore]
    family_false_alarm: float | None = None
    identified_ids: list[str] = Field(default_factory=list)  # training studies singled out as members
    # 2.6 on: what a score is (minus the distance, or minus its ratio to the base's distance), the base it
    # was calibrated against, and what the family test can single out at these sizes.
    reference: Literal["base", "none"] = "none"
    reference_model: str | None = None  # the base's source path
    reference_digest: str | None = None  # the base's checkpoint digest
    identification: str | None = None  # the family test's power at these sizes, for a person


class RetriggerAttempt(Frozen):
    method: Literal["noise", "ascent"]
    scale: float  # x rms(embedding): the noise's standard deviation, or the rms shift the ascent achieved
    clique_size: int
    nearest_train_id: str | None
    distance: float | None
    extracted: bool
    p_value: float | None = None


class RetriggeredPrompt(Frozen):
    item_ids: list[str]
    source: Literal["extracted", "flagged", "given"]  # why it was tested (given: named by the caller)
    smallest_scale: float | None  # the smallest perturbation that re-extracted a training image; None: none did
    attempts: list[RetriggerAttempt]


class RetriggerEvidence(Frozen):
    generations: int
    prompts: list[RetriggeredPrompt]
