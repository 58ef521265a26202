"""Captions as the text encoder reads them: the tokens it gets, and which captions its cut truncates."""

from __future__ import annotations

import torch

from memaudit.sampling.prompts import tokenize_captions
from memaudit.sampling.text import encode_prompts

# 20 x 4 words, one token each with the tiny tokenizer: 80 tokens, past CLIP's 75 between start and end.
LONG = " ".join(["no acute cardiopulmonary process"] * 20)


def test_the_tokens_are_those_the_encoder_gets_and_a_long_caption_is_marked_truncated(tiny_pipeline):
    tokenizer = tiny_pipeline.tokenizer
    captions = ["heart size normal", LONG, LONG + " small left pleural effusion"]
    tokenized = tokenize_captions(tokenizer, captions)
    assert [len(t.tokens) for t in tokenized] == [3, 75, 75]
    assert [t.truncated for t in tokenized] == [False, True, True]
    fed = tokenizer(captions, padding="max_length", max_length=77, truncation=True).input_ids
    for ids, caption in zip(fed, tokenized, strict=True):
        assert ids[0] == tokenizer.bos_token_id and tuple(ids[1 : 1 + len(caption.tokens)]) == caption.tokens


def test_captions_that_differ_only_past_the_cut_are_one_prompt_to_the_model(tiny_pipeline):
    first, second = LONG + " small left pleural effusion", LONG + " large right pneumothorax"
    tokenized = tokenize_captions(tiny_pipeline.tokenizer, [first, second, "Heart  size NORMAL", "heart size normal"])
    assert tokenized[0].tokens == tokenized[1].tokens  # the encoder never sees where they differ
    assert tokenized[2].tokens == tokenized[3].tokens  # CLIP lowercases and folds white space
    embeddings = encode_prompts(tiny_pipeline, [first, second])
    assert torch.equal(embeddings.tokens[0], embeddings.tokens[1])


def test_a_caption_of_exactly_the_encoders_length_is_not_truncated(tiny_pipeline):
    exact = " ".join(LONG.split()[:75])
    assert tokenize_captions(tiny_pipeline.tokenizer, [exact])[0].truncated is False
    assert tokenize_captions(tiny_pipeline.tokenizer, [exact + " clear"])[0].truncated is True
