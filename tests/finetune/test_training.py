"""The training loop: it learns, resumes exactly, trains nothing under a zero mask, and mitigates."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from memaudit.checkpoint import load_checkpoint
from memaudit.cli import run
from memaudit.finetune.config import Mitigation, TrainConfig
from memaudit.finetune.mitigations import random_word_addition, threshold_keep, whole_words
from memaudit.finetune.run import finetune
from memaudit.tiny.memorizer import build_memorizer


@pytest.fixture(scope="module")
def data(tiny_pipeline, tmp_path_factory):
    _, train, _, _ = build_memorizer(tiny_pipeline, tmp_path_factory.mktemp("ft-data"), planted=2, generic=6, holdout=2)
    return train


def _state(folder):
    return load_checkpoint(folder).pipeline.unet.state_dict()


def test_a_few_hundred_steps_lower_the_loss(tiny_folder, data, tmp_path):
    config = TrainConfig(method="full", steps=200, batch_size=4, learning_rate=2e-3, checkpoint_every=100)
    result = finetune(tiny_folder, data, config, out=tmp_path / "run")
    losses = result.log.losses
    assert len(losses) == 200
    assert sum(losses[-40:]) / 40 < 0.8 * sum(losses[:40]) / 40


def test_killed_and_resumed_run_ends_with_the_same_weights(tiny_folder, data, tmp_path):
    config = TrainConfig(
        method="svdiff",
        steps=12,
        batch_size=4,
        learning_rate=1e-2,
        checkpoint_every=5,
        mitigation=Mitigation(kind="rwa", rwa_probability=1.0),
    )
    whole = finetune(tiny_folder, data, config, out=tmp_path / "whole")
    assert finetune(tiny_folder, data, config, out=tmp_path / "split", stop_after=7) is None  # "killed" after step 7
    assert sorted(p.name for p in (tmp_path / "split" / "checkpoints").glob("*.pt")) == [
        "step-00000005.pt",
        "step-00000007.pt",
    ]
    resumed = finetune(tiny_folder, data, config, out=tmp_path / "split")
    assert resumed.log.resumed_from == 7 and resumed.log.losses == whole.log.losses
    first, second = (
        load_file(tmp_path / "whole" / "adapter.safetensors"),
        load_file(tmp_path / "split" / "adapter.safetensors"),
    )
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("method", ["full", "svdiff", "difffit", "attention", "lora"])
def test_an_all_zero_mask_trains_nothing(tiny_folder, data, tmp_path, method):
    config = TrainConfig(method=method, mask="none", steps=3, batch_size=2, learning_rate=1e-1)
    result = finetune(tiny_folder, data, config, out=tmp_path / method)
    assert result.trainable == 0 and len(result.log.losses) == 3
    before, after = _state(tiny_folder), _state(result.model_dir)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_outputs_are_a_loadable_model_and_a_method_record(tiny_folder, data, tmp_path, capsys):
    code = run(
        [
            "finetune",
            str(tiny_folder),
            "--train",
            str(data),
            "--method",
            "lora",
            "--mask",
            "0100001",
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    record = json.loads((tmp_path / "out" / "method.json").read_text())
    assert record["method"] == "lora" and record["mask"]["bits"] == "0100001"
    assert record["trainable_parameters"] == 4 * (14 * 64 + 64) + 4 * (14 * 32 + 64)
    assert record["steps"] == 4 and len(record["data_digest"]) == 64
    assert load_checkpoint(tmp_path / "out" / "model").format == "diffusers"
    assert set(load_file(tmp_path / "out" / "adapter.safetensors")) and not (tmp_path / "out" / "checkpoints").exists()
    assert "trainable of 1,466,500 UNet parameters" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "dora"], "unknown method 'dora'"),
        (["--method", "svdiff", "--mask", "11"], "has 2 bits; this UNet has 7"),
        (["--method", "svdiff", "--mitigation", "magic"], "unknown mitigation 'magic'"),
        (["--method", "svdiff", "--mitigation", "threshold", "--threshold", "1", "--top-fraction", "0.1"], "not both"),
    ],
)
def test_finetune_errors_exit_2(tiny_folder, data, tmp_path, capsys, argv, message):
    code = run(
        ["finetune", str(tiny_folder), "--train", str(data), "--out", str(tmp_path / "o"), "--steps", "1", *argv]
    )
    assert code == 2 and message in capsys.readouterr().err


def test_rwa_changes_captions_per_access_and_never_the_dataset(tiny_pipeline):
    vocabulary = whole_words(tiny_pipeline.tokenizer)
    assert "effusion" in vocabulary and all(w.isalpha() for w in vocabulary)
    captions = ["no acute cardiopulmonary process"]
    generator = torch.Generator().manual_seed(0)
    seen = {
        random_word_addition(captions[0], vocabulary, words=2, probability=1.0, generator=generator) for _ in range(20)
    }
    assert len(seen) > 15  # fresh words at every access
    for caption in seen:
        words = caption.split()
        assert len(words) == 6 and all(word in words for word in captions[0].split())
    assert captions == ["no acute cardiopulmonary process"]
    assert random_word_addition("x y", vocabulary, words=2, probability=0.0, generator=generator) == "x y"


def test_threshold_mitigation_drops_exactly_the_samples_above():
    magnitudes = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.9])
    assert threshold_keep(magnitudes, threshold=1.0).tolist() == [True, False, False, False, True]
    assert threshold_keep(magnitudes, top_fraction=0.4).tolist() == [True, False, True, False, True]
    with pytest.raises(ValueError, match="exactly one"):
        threshold_keep(magnitudes)


def test_threshold_mitigation_in_the_loop_drops_the_batch_top(tiny_folder, data, tmp_path):
    config = TrainConfig(
        method="svdiff", steps=5, batch_size=4, mitigation=Mitigation(kind="threshold", top_fraction=0.25)
    )
    result = finetune(tiny_folder, data, config, out=tmp_path / "t")
    assert result.log.dropped_samples == 5  # one of four per step
