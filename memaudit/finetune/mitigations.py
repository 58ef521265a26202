"""Memorization mitigations applied during training (as compared in the MemControl paper).

- Random Word Addition (RWA): with probability p, insert k words drawn from the tokenizer's whole-word
  vocabulary at random positions of the caption, freshly at every access; the dataset never changes.
- Threshold mitigation: drop from the loss the samples whose per-sample noise magnitude is at or above
  a threshold, or the top fraction q of the batch.
"""

from __future__ import annotations

import math

import torch

# How a tokenizer marks a whole word: CLIP's BPE ends it with "</w>"; SentencePiece (T5, Gemma) starts
# it with "▁", byte-level BPE with "Ġ"; WordPiece (BERT) marks the pieces that continue one ("##").
_WORD_END, _WORD_STARTS = "</w>", ("▁", "Ġ")


def whole_words(tokenizer) -> list[str]:
    """Alphabetic whole-word tokens of a text encoder's tokenizer, sorted (RWA's vocabulary)."""
    vocabulary = tokenizer.get_vocab()
    if any(token.endswith(_WORD_END) for token in vocabulary):
        words = {token[: -len(_WORD_END)] for token in vocabulary if token.endswith(_WORD_END)}
    elif any(token.startswith(_WORD_STARTS) for token in vocabulary):
        words = {token[1:] for token in vocabulary if token.startswith(_WORD_STARTS)}
    else:
        words = {token for token in vocabulary if not token.startswith("##")}
    found = sorted(word for word in words if word.isalpha() and len(word) > 1)
    if not found:
        raise ValueError(f"{type(tokenizer).__name__}: no whole words in its vocabulary for random word addition")
    return found


def random_word_addition(
    caption: str, vocabulary: list[str], *, words: int, probability: float, generator: torch.Generator
) -> str:
    """The caption with ``words`` random vocabulary words inserted at random positions (or unchanged)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"`probability` must be in [0, 1], got {probability}")
    if float(torch.rand(1, generator=generator)) >= probability or words == 0:
        return caption
    tokens = caption.split()
    for _ in range(words):
        word = vocabulary[int(torch.randint(len(vocabulary), (1,), generator=generator))]
        position = int(torch.randint(len(tokens) + 1, (1,), generator=generator))
        tokens.insert(position, word)
    return " ".join(tokens)


def threshold_keep(magnitudes: torch.Tensor, *, threshold: float | None = None, top_fraction: float | None = None):
    """Boolean mask of the samples that stay in the loss."""
    if (threshold is None) == (top_fraction is None):
        raise ValueError("give exactly one of `threshold` and `top_fraction`")
    if threshold is not None:
        return magnitudes < threshold
    if not 0.0 < top_fraction < 1.0:
        raise ValueError(f"`top_fraction` must be in (0, 1), got {top_fraction}")
    drop = math.ceil(top_fraction * magnitudes.numel())
    keep = torch.ones_like(magnitudes, dtype=torch.bool)
    keep[torch.argsort(magnitudes, descending=True, stable=True)[:drop]] = False
    return keep
