"""Prompt embeddings from the pipeline's own tokenizer and text encoder, batched."""

from __future__ import annotations

import torch


@torch.no_grad()
def encode_prompts(pipeline, prompts: list[str], *, batch_size: int = 64) -> torch.Tensor:
    """``[P, L, D]`` last hidden states for ``prompts`` (padded to the tokenizer's max length)."""
    tokenizer, encoder = pipeline.tokenizer, pipeline.text_encoder
    device = next(encoder.parameters()).device
    chunks = []
    for start in range(0, len(prompts), batch_size):
        tokens = tokenizer(
            prompts[start : start + batch_size],
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        chunks.append(encoder(tokens.input_ids.to(device))[0])
    return torch.cat(chunks) if chunks else torch.empty(0)
