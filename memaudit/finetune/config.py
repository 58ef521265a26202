"""Fine-tuning settings: one validated, frozen record that is also written to method.json."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mitigation(Strict):
    kind: Literal["none", "rwa", "threshold"] = "none"
    rwa_words: int = Field(2, ge=1, description="RWA: words inserted per caption")
    rwa_probability: float = Field(0.5, ge=0.0, le=1.0, description="RWA: chance a caption is changed")
    threshold: float | None = Field(None, gt=0.0, description="drop samples with noise magnitude >= this")
    top_fraction: float | None = Field(None, gt=0.0, lt=1.0, description="or drop the batch's top fraction")

    @model_validator(mode="after")
    def _threshold_choice(self) -> Mitigation:
        if self.kind == "threshold" and self.threshold is not None and self.top_fraction is not None:
            raise ValueError("threshold mitigation takes a threshold or a top_fraction, not both")
        return self

    @property
    def effective_top_fraction(self) -> float | None:
        """The batch's top 10% unless an absolute threshold is given."""
        if self.kind != "threshold" or self.threshold is not None:
            return None
        return self.top_fraction if self.top_fraction is not None else 0.1


class TrainConfig(Strict):
    method: Literal["full", "svdiff", "difffit", "attention", "lora"]
    mask: str = "all"
    lora_rank: int = Field(4, ge=1)
    steps: int = Field(500, ge=0)
    batch_size: int = Field(8, ge=1)
    gradient_accumulation: int = Field(1, ge=1)
    learning_rate: float = Field(1e-4, gt=0.0)
    weight_decay: float = Field(1e-2, ge=0.0)
    seed: int = Field(0, ge=0)
    caption_dropout: float = Field(0.1, ge=0.0, le=1.0)
    checkpoint_every: int = Field(100, ge=1)
    mitigation: Mitigation = Mitigation()
