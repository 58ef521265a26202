"""Captions as the text encoder sees them: tokenized and cut at its maximum length (CLIP: 77 tokens,
start and end tokens included), so that captions which differ only past the cut are one prompt."""

from __future__ import annotations

from dataclasses import dataclass

TOKENIZE_CHUNK = 1024  # captions tokenized at once


@dataclass(frozen=True)
class TokenizedCaption:
    tokens: tuple[int, ...]  # the ids the encoder reads between its start and end tokens
    truncated: bool  # the caption is longer than that: its tail never reaches the model


def tokenize_captions(tokenizer, captions: list[str], *, max_length: int | None = None) -> list[TokenizedCaption]:
    """Each caption's tokens as ``sampling.text.encode_prompts`` feeds them to the encoder (the same cut:
    ``max_length``, default the tokenizer's ``model_max_length``, less the start and end tokens), and
    whether the cut dropped any."""
    room = (max_length or tokenizer.model_max_length) - tokenizer.num_special_tokens_to_add()
    tokenized = []
    for start in range(0, len(captions), TOKENIZE_CHUNK):
        # Untruncated, to see what the cut drops; verbose=False: a long caption is counted, not logged.
        ids = tokenizer(captions[start : start + TOKENIZE_CHUNK], add_special_tokens=False, verbose=False).input_ids
        tokenized += [TokenizedCaption(tokens=tuple(each[:room]), truncated=len(each) > room) for each in ids]
    return tokenized
