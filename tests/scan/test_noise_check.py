"""The noise-magnitude check: one score per distinct training caption, flagged against a holdout quantile."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.policy import load_policy
from memaudit.results.scan_result import CaptionCount
from memaudit.sampling.scheduler import make_scheduler
from memaudit.sampling.seeds import sample_seed
from memaudit.sampling.text import encode_prompts
from memaudit.scan.context import ScanContext
from memaudit.scan.noise_check import run_noise_magnitude
from memaudit.scan.progress import SilentProgress
from memaudit.tiny.memorizer import build_memorizer
from tests.images import write_dataset
from tests.scan.recording_progress import RecordingProgress

POLICY = """
name: noise-test
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: {guidance}, batch_size: 3}}
# Confidence 0.5 makes the threshold for a 0.5 quantile of five holdout scores their median (k = 3).
calibration: {{small_holdout: warn, confidence: 0.5}}
checks:
  noise_magnitude: {{steps: {steps}, generations: 2, calibration_quantile: {quantile}, required: {required}{extra}}}
  nearest_neighbour: {{extractor: pixels}}
rules:
  noise-flags: {{metric: noise_magnitude.flagged_fraction, at_most: 0.5}}
"""

TRAIN_CAPTIONS = [
    "no acute cardiopulmonary process",
    "small left pleural effusion",
    "no acute cardiopulmonary process",
    "heart size normal",
    "small left pleural effusion",
    "large right pneumothorax",
    "stable cardiomegaly",
]
HOLDOUT_CAPTIONS = [
    "mild cardiomegaly",
    "left lower lobe consolidation",
    "no acute process",
    "support devices",
    "clear",
]


def _policy(folder, *, steps=1, quantile=0.5, required="true", guidance=7.5, schedule=None):
    path = folder / f"policy-{steps}-{quantile}-{required}-{guidance}-{schedule}.yaml"
    extra = f", num_inference_steps: {schedule}" if schedule else ""
    path.write_text(POLICY.format(steps=steps, quantile=quantile, required=required, guidance=guidance, extra=extra))
    return load_policy(path).policy


def _dataset(folder, captions: list[str], *, prefix: str) -> ImageCaptionDataset:
    rng = np.random.default_rng(len(captions))
    images = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in captions]
    write_dataset(folder, images, captions, prefix=prefix)
    return ImageCaptionDataset(folder)


@pytest.fixture(scope="module")
def context(tiny_pipeline, tmp_path_factory) -> ScanContext:
    root = tmp_path_factory.mktemp("noise")
    return ScanContext(
        policy=_policy(root),
        train=_dataset(root / "train", TRAIN_CAPTIONS, prefix="train"),
        holdout=_dataset(root / "holdout", HOLDOUT_CAPTIONS, prefix="holdout"),
        progress=SilentProgress(),
        pipeline=tiny_pipeline,
        image_side=16,
    )


@pytest.fixture(scope="module")
def scanned(context):
    return run_noise_magnitude(context)


def test_one_score_per_distinct_training_caption(scanned):
    outcome, scores = scanned
    evidence = outcome.noise_magnitude
    assert outcome.status == "ok" and outcome.required is True
    assert [p.item_ids for p in evidence.train] == [
        ["train-0", "train-2"],
        ["train-1", "train-4"],
        ["train-3"],
        ["train-5"],
        ["train-6"],
    ]
    assert len(evidence.holdout_scores) == len(HOLDOUT_CAPTIONS)
    assert scores.shape == (5,) and [p.score for p in evidence.train] == pytest.approx(scores.tolist(), abs=0)
    assert evidence.steps == 1 and evidence.generations == 2 and evidence.calibration_quantile == 0.5
    assert all(s > 0 for s in [p.score for p in evidence.train] + evidence.holdout_scores)


def test_threshold_is_the_order_statistic_the_binomial_bound_picks(scanned):
    from scipy.stats import binom

    evidence = scanned[0].noise_magnitude
    n = len(evidence.holdout_scores)
    k = max(k for k in range(1, n + 1) if binom.cdf(k - 1, n, 0.5) <= 1 - 0.5)  # reference: scipy
    assert (evidence.calibration.n, evidence.calibration.k, evidence.calibration.tail) == (n, k, "upper")
    assert evidence.threshold == pytest.approx(sorted(evidence.holdout_scores, reverse=True)[k - 1], rel=1e-12)
    assert evidence.threshold == pytest.approx(float(np.median(evidence.holdout_scores)), rel=1e-12)


def test_flagged_exactly_when_above_the_threshold(scanned):
    outcome, _ = scanned
    evidence = outcome.noise_magnitude
    flags = [p.flagged for p in evidence.train]
    assert any(flags) and not all(flags), "the fixture should flag some prompts and not others"
    assert flags == [p.score > evidence.threshold for p in evidence.train]
    assert evidence.flagged_item_ids == [item for p in evidence.train if p.flagged for item in p.item_ids]
    count = sum(flags)
    assert outcome.metrics == {
        "noise_magnitude.flagged_count": float(count),
        "noise_magnitude.flagged_fraction": pytest.approx(count / 5),
    }
    expected = (
        f"{count} of 5 distinct training prompts above the wen flag threshold (holdout score 3 from the top of "
        "5 distinct prompts)"
    )
    assert outcome.message == expected  # no caption is cut, so nothing is said of truncation
    assert evidence.holdout_captions == CaptionCount(captions=5, truncated=0, prompts=5, max_tokens=77)
    assert evidence.train_captions == CaptionCount(captions=5, truncated=0, prompts=5, max_tokens=77)


def test_scores_are_the_first_step_conditional_noise_magnitude(context, scanned, tiny_pipeline):
    """Recompute Wen et al.'s score from the UNet directly: mean over generations of ||eps(x, e_p) - eps(x, e_0)||."""
    assert scanned[0].noise_magnitude.schedule == 3  # the sampling's schedule: the policy sets no triage schedule
    _assert_first_step_scores(scanned[0].noise_magnitude, tiny_pipeline, schedule=3)


def test_a_triage_schedule_of_its_own_probes_at_its_first_timestep(context, scanned, tiny_pipeline, tmp_path):
    """``checks.noise_magnitude.num_inference_steps: 2`` probes at the 2-step schedule's first timestep (t ~ T/2),
    not the sampling's 3-step one (t ~ 2T/3): other scores, each recomputed from the UNet at that timestep."""
    first = [make_scheduler(tiny_pipeline, "ddim", n).timesteps[0] for n in (2, 3)]
    assert first[0] < first[1]
    outcome, _ = run_noise_magnitude(dataclasses.replace(context, policy=_policy(tmp_path, schedule=2)))
    assert outcome.noise_magnitude.schedule == 2
    _assert_first_step_scores(outcome.noise_magnitude, tiny_pipeline, schedule=2)
    assert [p.score for p in outcome.noise_magnitude.train] != [p.score for p in scanned[0].noise_magnitude.train]


def _assert_first_step_scores(evidence, tiny_pipeline, *, schedule: int) -> None:
    sampler = make_scheduler(tiny_pipeline, "ddim", schedule)
    timestep = sampler.timesteps[0]
    empty = encode_prompts(tiny_pipeline, [""]).tokens

    def score(caption: str, position: int) -> float:
        embedding = encode_prompts(tiny_pipeline, [caption]).tokens
        magnitudes = []
        for generation in range(2):
            seed = sample_seed(0, "noise-probe", position * 2 + generation)
            latent = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(seed)) * sampler.init_noise_sigma
            with torch.no_grad():
                conditional = tiny_pipeline.unet(latent, timestep, encoder_hidden_states=embedding).sample
                unconditional = tiny_pipeline.unet(latent, timestep, encoder_hidden_states=empty).sample
            magnitudes.append(float((conditional.double() - unconditional.double()).norm()))
        return sum(magnitudes) / 2

    distinct = list(dict.fromkeys(TRAIN_CAPTIONS))
    assert [p.score for p in evidence.train] == pytest.approx([score(c, i) for i, c in enumerate(distinct)], rel=1e-4)
    expected_holdout = [score(c, i) for i, c in enumerate(HOLDOUT_CAPTIONS)]
    assert evidence.holdout_scores == pytest.approx(expected_holdout, rel=1e-4)


def test_reruns_give_identical_scores_and_report_progress(context, scanned):
    progress = RecordingProgress()
    outcome, _ = run_noise_magnitude(dataclasses.replace(context, progress=progress))
    assert outcome == scanned[0]
    assert progress.stages == {
        "noise magnitude: training prompts": [5 * 2, 5 * 2],
        "noise magnitude: holdout prompts": [5 * 2, 5 * 2],
    }


def test_required_follows_the_policy(context, tmp_path):
    outcome, _ = run_noise_magnitude(dataclasses.replace(context, policy=_policy(tmp_path, required="false")))
    assert outcome.status == "ok" and outcome.required is False


def test_more_probe_steps_than_the_triage_schedule_is_refused_with_the_policy(tmp_path):
    from memaudit.errors import PolicyError

    with pytest.raises(PolicyError, match=r"noise_magnitude.steps \(4\) exceeds sampling.num_inference_steps \(3\)"):
        _policy(tmp_path, steps=4)
    with pytest.raises(PolicyError, match=r"steps \(3\) exceeds the triage schedule's num_inference_steps \(2\)"):
        _policy(tmp_path, steps=3, schedule=2)
    assert _policy(tmp_path, steps=4, schedule=5).checks.noise_magnitude.steps == 4  # its own schedule is long enough


def test_flags_exactly_the_prompts_a_model_memorized(tiny_pipeline, tmp_path):
    """The closed-form memorizer's conditional noise differs from the unconditional only for planted prompts."""
    checkpoint, train, holdout, planted_ids = build_memorizer(tiny_pipeline, tmp_path, planted=2, generic=4, holdout=6)
    context = ScanContext(
        policy=_policy(tmp_path, quantile=0.99, guidance=1.0),
        train=ImageCaptionDataset(train),
        holdout=ImageCaptionDataset(holdout),
        progress=SilentProgress(),
        pipeline=checkpoint.pipeline,
        image_side=16,
    )
    outcome, _ = run_noise_magnitude(context)
    evidence = outcome.noise_magnitude
    assert evidence.holdout_scores == [0.0] * 6 and evidence.threshold == 0.0
    assert evidence.flagged_item_ids == planted_ids
    assert [p.item_ids for p in evidence.train if not p.flagged] == [
        ["train-002", "train-003"],
        ["train-004"],
        ["train-005"],
    ]
    assert outcome.metrics["noise_magnitude.flagged_fraction"] == pytest.approx(2 / 5)


def test_holdout_captions_cut_to_one_prompt_calibrate_as_one(context, tmp_path):
    """Six holdout captions that differ only past the encoder's cut are one prompt: one score, n = 1."""
    long = " ".join(["no acute cardiopulmonary process"] * 20)
    captions = [f"{long} {word}" for word in ("clear", "stable", "mild", "small", "large", "severe")]
    cut = dataclasses.replace(context, holdout=_dataset(tmp_path / "holdout", captions, prefix="holdout"))
    outcome, _ = run_noise_magnitude(cut)
    evidence = outcome.noise_magnitude
    assert evidence.holdout_captions == CaptionCount(captions=6, truncated=6, prompts=1, max_tokens=77)
    assert len(evidence.holdout_scores) == 1 and evidence.calibration.n == 1
    assert (
        "6 of 6 distinct holdout captions are longer than the text encoder's 77 tokens and were truncated; the 6 "
        "captions are 1 distinct prompt to the model"
    ) in outcome.message


def test_prompts_scored_in_chunks_get_the_scores_they_get_at_once(context, scanned, monkeypatch):
    # Memory holds one chunk of prompt embeddings; seeds follow the position in the full list.
    import memaudit.scan.chunks as chunks

    monkeypatch.setattr(chunks, "PROMPT_CHUNK", 2)
    outcome, scores = run_noise_magnitude(context)
    assert torch.allclose(scores, scanned[1], rtol=1e-6, atol=0)
    assert outcome.noise_magnitude.holdout_scores == pytest.approx(scanned[0].noise_magnitude.holdout_scores, rel=1e-6)
