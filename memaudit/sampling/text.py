"""Prompt conditioning from the model's own tokenizers and text encoders, batched."""

from __future__ import annotations

from memaudit.denoiser import Conditioning, denoiser_for


def encode_prompts(model, prompts: list[str], *, batch_size: int = 64) -> Conditioning:
    """The conditioning of ``prompts`` (rows in order) for a pipeline or denoiser of any family."""
    return denoiser_for(model).encode_prompts(prompts, batch_size=batch_size)
