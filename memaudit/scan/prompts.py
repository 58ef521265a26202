"""Prompt groups: the distinct prompts of a dataset as the model's text encoder reads them, each with
the rows that carry it."""

from __future__ import annotations

from dataclasses import dataclass

from memaudit.data import ImageCaptionDataset
from memaudit.sampling.prompts import tokenize_captions


@dataclass(frozen=True)
class PromptGroup:
    """One distinct prompt and the dataset rows that carry it. Captions never leave this object."""

    index: int
    caption: str  # the first of its captions: each is the same prompt to the model
    rows: list[int]
    captions: int = 1  # distinct captions that are this prompt
    truncated: int = 0  # of them, longer than the text encoder reads


def prompt_groups(dataset: ImageCaptionDataset, tokenizer=None, *, max_length: int | None = None) -> list[PromptGroup]:
    """Distinct prompts in first-seen order; many images often share one (MIMIC-CXR's "no acute ...").

    With the model's ``tokenizer``, a prompt is what the text encoder reads: captions that tokenize the
    same up to its cut (CLIP: 77 tokens), e.g. differ only past it or only in case, are one prompt, with
    one embedding and one score, and count once where a calibration counts prompts. Without it, each
    distinct caption is a prompt (a folder of images has no tokenizer). ``max_length``: the tokens the
    pipeline reads where it reads fewer than the tokenizer's maximum (T5's 256 of 512 in SD 3.x).
    """
    distinct = list(dict.fromkeys(dataset.captions))
    if tokenizer is None:
        keys: list = distinct
        truncated = [False] * len(distinct)
    else:
        tokenized = tokenize_captions(tokenizer, distinct, max_length=max_length)
        keys, truncated = [t.tokens for t in tokenized], [t.truncated for t in tokenized]
    key_of = dict(zip(distinct, keys, strict=True))
    members: dict = {}  # prompt key -> its distinct captions, in first-seen order
    for caption, key in zip(distinct, keys, strict=True):
        members.setdefault(key, []).append(caption)
    cut = {caption for caption, was_cut in zip(distinct, truncated, strict=True) if was_cut}
    rows: dict = {key: [] for key in members}
    for row, caption in enumerate(dataset.captions):
        rows[key_of[caption]].append(row)
    return [
        PromptGroup(
            index=i,
            caption=captions[0],
            rows=rows[key],
            captions=len(captions),
            truncated=sum(caption in cut for caption in captions),
        )
        for i, (key, captions) in enumerate(members.items())
    ]
