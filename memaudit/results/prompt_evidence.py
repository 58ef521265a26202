"""Evidence about prompts: a training prompt's triage score, and how captions became prompts to the model."""

from __future__ import annotations

from memaudit.results.frozen import Frozen


class PromptScore(Frozen):
    """One distinct training prompt (as the text encoder reads it), named by the ids of the items that carry it."""

    item_ids: list[str]
    score: float
    flagged: bool


class CaptionCount(Frozen):
    """One side's distinct captions as the text encoder reads them: ``truncated`` of ``captions`` are
    longer than its ``max_tokens`` and were cut, and the ``captions`` are ``prompts`` distinct prompts."""

    captions: int
    truncated: int
    prompts: int
    max_tokens: int  # the encoder's length, start and end tokens included
