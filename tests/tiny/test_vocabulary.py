"""The locally trained CLIP vocabulary and the tiny pipeline builder."""

from __future__ import annotations

from memaudit.tiny.pipeline import TinySDConfig, build_tiny_pipeline
from memaudit.tiny.vocabulary import build_vocabulary, load_clip_tokenizer, write_vocabulary

WORDS = ["no", "acute", "cardiopulmonary", "process", "small", "left", "pleural", "effusion"]


def test_every_training_word_is_one_token(tmp_path):
    tokenizer = load_clip_tokenizer(*write_vocabulary(WORDS, tmp_path))
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("No acute cardiopulmonary process.").input_ids)
    assert tokens == [
        "<|startoftext|>",
        "no</w>",
        "acute</w>",
        "cardiopulmonary</w>",
        "process</w>",
        ".</w>",
        "<|endoftext|>",
    ]


def test_unknown_text_still_tokenizes_and_round_trips(tmp_path):
    tokenizer = load_clip_tokenizer(*write_vocabulary(WORDS, tmp_path))
    ids = tokenizer("Café 42 pneumothorax").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "café 4 2 pneumothorax"


def test_vocabulary_is_deterministic():
    assert build_vocabulary(WORDS) == build_vocabulary(list(reversed(WORDS)))


def test_tiny_pipeline_is_reproducible_from_its_seed():
    first, second = build_tiny_pipeline(seed=3), build_tiny_pipeline(seed=3)
    for key, value in first.unet.state_dict().items():
        assert value.equal(second.unet.state_dict()[key])
    assert TinySDConfig().image_size == 16


def test_vocabulary_is_the_same_in_every_process():
    """The tokenizers trainer broke ties by a per-process hash order: tiny models tokenized differently."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json; from memaudit.tiny.pipeline import DEFAULT_WORDS; "
        "from memaudit.tiny.vocabulary import build_vocabulary; print(json.dumps(build_vocabulary(DEFAULT_WORDS)))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(outputs) == 1
    vocab, merges = json.loads(outputs.pop())
    assert "effusion</w>" in vocab and len(merges) > 0
