"""The optional BioViL-T alignment check: fails closed without weights, never runs when disabled.

No BioViL-T weights ship with memaudit, so the scoring itself is checked with a stand-in model that
returns known embeddings; the missing-weights paths go through the battery, as in a scan.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.features import ExtractorOptions, ExtractorUnavailable
from memaudit.policy import load_policy
from memaudit.scan.alignment_check import run_alignment
from memaudit.scan.battery import sample_checks
from memaudit.scan.context import ScanContext
from memaudit.scan.image_set import ImageSet
from memaudit.scan.judge import judge
from memaudit.scan.progress import SilentProgress
from tests.images import write_dataset
from tests.scan.recording_progress import RecordingProgress

POLICY = """
name: alignment-test
calibration: {{small_holdout: warn}}
checks:
  nearest_neighbour: {{enabled: false}}
  fid: {{enabled: false}}
  alignment: {alignment}
rules:
  {rule}
"""
ALIGNMENT_RULE = "alignment: {metric: alignment.score, at_least: 0.5, severity: fail}"
CAPTIONS = ["Small left pleural effusion.", "No acute cardiopulmonary process."]


def _policy(folder: Path, alignment: str, rule: str = ALIGNMENT_RULE):
    text = POLICY.format(alignment=alignment, rule=rule)
    path = folder / f"policy-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    path.write_text(text)
    return load_policy(path).policy


def _dataset(folder: Path, *, prefix: str) -> ImageCaptionDataset:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in CAPTIONS]
    return ImageCaptionDataset(write_dataset(folder, images, CAPTIONS, prefix=prefix))


@pytest.fixture
def context(tmp_path) -> ScanContext:
    return ScanContext(
        policy=_policy(tmp_path, "{enabled: true, required: true}"),
        train=_dataset(tmp_path / "train", prefix="train"),
        holdout=_dataset(tmp_path / "holdout", prefix="holdout"),
        progress=SilentProgress(),
        pipeline=None,
        image_side=16,
    )


PIXELS = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
IMAGES = ImageSet.in_memory(PIXELS)


class NeverBuilt:
    def __init__(self, *args, **kwargs) -> None:
        raise AssertionError("the alignment model must not be built")


def test_without_weights_the_check_refuses_naming_the_setting(context):
    with pytest.raises(ExtractorUnavailable, match=r"checks\.alignment\.weights.*never downloads"):
        run_alignment(context, IMAGES, CAPTIONS)


def test_a_required_check_without_weights_fails_closed(context):
    outcomes = sample_checks(context, IMAGES, CAPTIONS)
    assert list(outcomes) == ["alignment"]
    outcome = outcomes["alignment"]
    assert outcome.status == "error" and outcome.required is True and outcome.metrics == {}
    assert "BioViL-T alignment needs local weights" in outcome.message
    assert "checks.alignment.weights" in outcome.message
    verdict, rules, summary = judge(context.policy, outcomes)
    assert verdict == "error" and rules[0].status == "error" and rules[0].value is None
    assert summary == "ERROR: required checks could not run for rule(s) alignment"


def test_an_optional_check_without_weights_only_warns(context, tmp_path):
    optional = dataclasses.replace(context, policy=_policy(tmp_path, "{enabled: true, required: false}"))
    outcome = sample_checks(optional, IMAGES, CAPTIONS)["alignment"]
    assert outcome.status == "error" and outcome.required is False
    verdict, rules, _ = judge(optional.policy, {"alignment": outcome})
    assert verdict == "pass" and rules[0].status == "warn" and rules[0].message.startswith("not measured:")


def test_an_incomplete_weights_folder_is_named_with_what_it_lacks(context, tmp_path):
    weights = tmp_path / "biovil"
    weights.mkdir()
    incomplete = dataclasses.replace(
        context, policy=_policy(tmp_path, f"{{enabled: true, required: true, weights: '{weights}'}}")
    )
    outcome = sample_checks(incomplete, IMAGES, CAPTIONS)["alignment"]
    assert outcome.status == "error" and outcome.required is True
    assert str(weights) in outcome.message and "text/config.json" in outcome.message
    assert "image.safetensors" in outcome.message


def test_pickled_image_weights_are_refused_without_allow_pickle(context, tmp_path):
    weights = tmp_path / "biovil"
    (weights / "text").mkdir(parents=True)
    (weights / "text" / "config.json").write_text("{}")
    (weights / "biovil_t_image_model_proj_size_128.pt").write_bytes(b"not loaded")
    pickled = dataclasses.replace(
        context, policy=_policy(tmp_path, f"{{enabled: true, required: true, weights: '{weights}'}}")
    )
    outcome = sample_checks(pickled, IMAGES, CAPTIONS)["alignment"]
    assert outcome.status == "error" and "refusing to load pickle" in outcome.message
    assert "--allow-pickle" in outcome.message


def test_a_disabled_check_does_not_run(context, tmp_path, monkeypatch):
    monkeypatch.setattr("memaudit.scan.alignment_check.BioViLT", NeverBuilt)
    rule = "extracted: {metric: extraction.extracted_count, at_most: 0}"
    for alignment in ("{}", "{enabled: false, required: true}"):
        disabled = dataclasses.replace(context, policy=_policy(tmp_path, alignment, rule))
        assert sample_checks(disabled, IMAGES, CAPTIONS) == {}


def test_images_without_report_text_are_not_applicable(context, monkeypatch):
    monkeypatch.setattr("memaudit.scan.alignment_check.BioViLT", NeverBuilt)
    outcome = run_alignment(context, IMAGES, ["", "  \n"])
    assert outcome.status == "not_applicable" and outcome.required is False
    assert outcome.message == "the images carry no report text"
    verdict, rules, _ = judge(context.policy, {"alignment": outcome})
    assert verdict == "pass" and rules[0].message.startswith("not applicable:")


def test_the_score_is_the_mean_image_report_cosine(context, monkeypatch):
    built = {}

    class StandIn:
        def __init__(self, weights, *, allow_pickle, device) -> None:
            built.update(weights=weights, allow_pickle=allow_pickle, device=device)

        def embed_images(self, images):
            assert torch.equal(images, PIXELS)  # one batch of both
            return torch.tensor([[1.0, 0.0], [0.0, 2.0]])

        def embed_reports(self, reports):
            assert reports == CAPTIONS
            return torch.tensor([[1.0, 1.0], [0.0, 1.0]])

    monkeypatch.setattr("memaudit.scan.alignment_check.BioViLT", StandIn)
    progress = RecordingProgress()
    weights = Path("/models/biovil-t")
    scored = dataclasses.replace(
        context,
        policy=_policy(Path(context.train.source).parent, f"{{enabled: true, required: true, weights: '{weights}'}}"),
        extractor_options=ExtractorOptions(allow_pickle=True, device="cpu"),
        progress=progress,
    )
    outcome = run_alignment(scored, IMAGES, CAPTIONS)
    expected = (2**-0.5 + 1.0) / 2  # cos 45 degrees for the first pair, 1 for the second
    assert outcome.status == "ok" and outcome.required is True
    assert outcome.metrics == {"alignment.score": pytest.approx(expected)}
    assert outcome.message == f"mean BioViL-T image-report cosine {expected:.4g} over 2 images"
    assert built == {"weights": weights, "allow_pickle": True, "device": "cpu"}
    assert progress.stages == {"BioViL-T alignment": [2, 2]}
    verdict, rules, _ = judge(scored.policy, {"alignment": outcome})
    assert verdict == "pass" and rules[0].value == pytest.approx(expected)
