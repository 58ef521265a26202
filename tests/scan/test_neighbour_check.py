"""Nearest-neighbour distances, the near-copy rate and FID on the `pixels` extractor; the generated sample."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.policy import load_policy
from memaudit.policy.checks import AlignmentCheck
from memaudit.scan.context import ScanContext
from memaudit.scan.generated_sample import generated_sample
from memaudit.scan.neighbour_check import generated_features, run_fid, run_nearest_neighbour
from memaudit.scan.progress import SilentProgress
from tests.images import write_dataset

POLICY = """
name: neighbour-test
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 7.5, batch_size: 4}}
calibration: {{small_holdout: warn}}
checks:
  nearest_neighbour: {{extractor: pixels, near_copy_quantile: 0.1, {neighbour}}}
  fid: {fid}
rules:
  near-copy-rate: {{metric: nearest_neighbour.near_copy_rate, at_most: 0.5}}
"""
SIDE = 32  # the `pixels` extractor compares 32 x 32 grayscale images


def _policy(folder: Path, *, neighbour: str = "", fid: str = "{}"):
    text = POLICY.format(neighbour=neighbour, fid=fid)
    path = folder / f"policy-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    path.write_text(text)
    return load_policy(path).policy


def _centred(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float64)
    return flat - flat.mean(axis=1, keepdims=True)


def _min_cosine(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    r = references / np.linalg.norm(references, axis=1, keepdims=True)
    similarity = q @ r.T
    return 1.0 - similarity.max(axis=1), similarity.argmax(axis=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Grayscale uniform-noise training and holdout images, and four generated images: one copies train-3."""
    root = tmp_path_factory.mktemp("neighbours")
    rng = np.random.default_rng(3)
    train_arrays = rng.integers(0, 256, (6, SIDE, SIDE), dtype=np.uint8)
    holdout_arrays = rng.integers(0, 256, (10, SIDE, SIDE), dtype=np.uint8)
    train = write_dataset(root / "train", list(train_arrays), [f"case {k}" for k in range(6)], prefix="train")
    holdout = write_dataset(root / "holdout", list(holdout_arrays), [f"h {k}" for k in range(10)], prefix="holdout")
    generated_arrays = np.stack([train_arrays[3], *rng.integers(0, 256, (3, SIDE, SIDE), dtype=np.uint8)])
    generated = torch.from_numpy(generated_arrays / 255.0).float()[:, None].expand(-1, 3, -1, -1)  # RGB of gray
    context = ScanContext(
        policy=_policy(root),
        train=ImageCaptionDataset(train),
        holdout=ImageCaptionDataset(holdout),
        progress=SilentProgress(),
        pipeline=None,
        image_side=SIDE,
    )
    return context, generated, train_arrays / 255.0, holdout_arrays / 255.0, generated_arrays / 255.0


def test_a_copy_of_a_training_image_is_at_distance_zero_and_counted_as_a_near_copy(data):
    context, generated, *_ = data
    outcome = run_nearest_neighbour(context, generated_features(context, generated))
    evidence = outcome.nearest_neighbour
    assert outcome.status == "ok" and outcome.required is True
    assert evidence.generated_min_distances[0] == pytest.approx(0.0, abs=1e-6)
    assert all(d > evidence.tau for d in evidence.generated_min_distances[1:])
    assert evidence.near_copy_train_ids == ["train-3"]
    assert outcome.metrics["nearest_neighbour.near_copy_rate"] == 0.25
    assert evidence.extractor == "pixels" and evidence.extractor_weights_sha256 == "none"
    assert evidence.near_copy_quantile == 0.1
    assert "25.0% of 4 samples" in outcome.message


def test_distances_tau_and_amd_match_an_independent_computation(data):
    context, generated, train, holdout, generated_arrays = data
    generated_min, nearest = _min_cosine(_centred(generated_arrays), _centred(train))
    holdout_min, _ = _min_cosine(_centred(holdout), _centred(train))
    from scipy.stats import binom

    n = len(holdout_min)  # too few for 10% at 95%: the smallest value, with a warning
    k = max([k for k in range(1, n + 1) if binom.cdf(k - 1, n, 0.1) <= 0.05], default=1)
    tau = float(np.sort(holdout_min)[k - 1])
    outcome = run_nearest_neighbour(context, generated_features(context, generated))
    evidence = outcome.nearest_neighbour
    assert evidence.generated_min_distances == pytest.approx(generated_min.tolist(), abs=1e-5)
    assert evidence.holdout_min_distances == pytest.approx(holdout_min.tolist(), abs=1e-5)
    assert evidence.tau == pytest.approx(tau, abs=1e-5)
    assert outcome.metrics["nearest_neighbour.amd"] == pytest.approx(float(generated_min.mean()), abs=1e-5)
    assert outcome.metrics["nearest_neighbour.near_copy_rate"] == float(np.mean(generated_min < tau))
    assert nearest[0] == 3


def test_fid_of_a_set_against_itself_is_zero(data):
    context = data[0]
    outcome = run_fid(context, context.holdout_features.clone())
    assert outcome.status == "ok"
    # Ten samples in 1024 dimensions: the covariance is rank-deficient and the square root of its rounding
    # noise leaves a residue around 1e-4 (it comes out slightly negative), tiny beside the total variance.
    total_variance = float(context.holdout_features.double().var(0).sum())
    assert outcome.metrics["fid.fid"] == pytest.approx(0.0, abs=1e-5 * total_variance)
    assert outcome.fid.extractor == "pixels" and outcome.fid.real_samples == outcome.fid.generated_samples == 10


def test_fid_of_a_shifted_set_is_the_squared_shift(data):
    context = data[0]
    shift = torch.linspace(-0.1, 0.1, SIDE * SIDE)
    outcome = run_fid(context, context.holdout_features + shift)
    assert outcome.metrics["fid.fid"] == pytest.approx(float(shift.double().square().sum()), rel=1e-3)


def test_fid_refuses_too_few_samples(data, tmp_path):
    context, generated, *_ = data
    outcome = run_fid(context, generated_features(context, generated[:1]))
    assert outcome.status == "error" and outcome.required is True and outcome.metrics == {}
    assert outcome.message == "FID needs at least 2 real and generated samples (have 10 and 1)"
    strict = dataclasses.replace(context, policy=_policy(tmp_path, fid="{min_samples: 11, required: false}"))
    outcome = run_fid(strict, generated_features(strict, generated))
    assert outcome.status == "error" and outcome.required is False and "have 10 and 4" in outcome.message


@pytest.fixture(scope="module")
def sampling_context(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    captions = ["no acute cardiopulmonary process", "small left pleural effusion", "no acute cardiopulmonary process"]
    captions += ["heart size normal", "cardiomegaly", "large right pneumothorax"]
    rng = np.random.default_rng(5)
    train = write_dataset(root / "train", list(rng.integers(0, 256, (6, 16, 16), dtype=np.uint8)), captions, prefix="t")
    holdout = write_dataset(
        root / "holdout", list(rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)), ["a", "b", "c"], prefix="h"
    )
    return ScanContext(
        policy=_policy(root, neighbour="generations_per_prompt: 2"),
        train=ImageCaptionDataset(train),
        holdout=ImageCaptionDataset(holdout),
        progress=SilentProgress(),
        pipeline=tiny_pipeline,
        image_side=16,
    )


def test_the_generated_sample_covers_every_distinct_prompt(sampling_context):
    sample = generated_sample(sampling_context)
    distinct = ["no acute cardiopulmonary process", "small left pleural effusion", "heart size normal"]
    distinct += ["cardiomegaly", "large right pneumothorax"]
    assert sample.captions == [caption for caption in distinct for _ in range(2)]
    assert sample.alignment is None and sample.feature_error is None  # no images are kept
    # Features extracted as the images come equal those of the whole sample generated at once.
    images = sampling_context.generate(
        sampling_context.train_groups, per_group=2, stream="nearest-neighbour", label="at once"
    )
    assert torch.allclose(sample.features, generated_features(sampling_context, images), atol=1e-6)
    outcome = run_nearest_neighbour(sampling_context, sample.features)
    assert len(outcome.nearest_neighbour.generated_min_distances) == 10


def test_streamed_features_keep_the_batches_of_the_whole_sample(sampling_context, monkeypatch):
    import memaudit.scan.neighbour_check as neighbour_check

    monkeypatch.setattr(neighbour_check, "FEATURE_BATCH", 3)
    batches = []
    original = sampling_context.extractor.embed
    monkeypatch.setattr(
        sampling_context.extractor, "embed", lambda inputs: batches.append(len(inputs)) or original(inputs)
    )
    generated_sample(sampling_context)
    assert batches == [3, 3, 3, 1]  # 10 images, 2 per prompt, in batches of 3 across prompts


def _aligned(sampling_context, tmp_path, *, extractor="pixels", weights=None):
    policy = _policy(tmp_path, neighbour="generations_per_prompt: 2")
    neighbour = policy.checks.nearest_neighbour.model_copy(update={"extractor": extractor})
    checks = policy.checks.model_copy(
        update={"alignment": AlignmentCheck(enabled=True, weights=weights), "nearest_neighbour": neighbour}
    )
    return dataclasses.replace(sampling_context, policy=policy.model_copy(update={"checks": checks}))


def test_a_missing_extractor_and_missing_alignment_weights_are_named(sampling_context, tmp_path):
    sample = generated_sample(_aligned(sampling_context, tmp_path, extractor="xrv-densenet121"))
    assert sample.features is None and "xrv-densenet121 has no weights" in sample.feature_error
    assert sample.alignment.status == "error" and "checks.alignment.weights" in sample.alignment.message


def test_alignment_embeds_the_sample_as_it_streams_past(sampling_context, tmp_path, monkeypatch):
    """BioViL-T sees one batch at a time, never the sample, and scores as on the whole."""
    import memaudit.scan.alignment_check as alignment_check
    import memaudit.scan.generated_sample as generated_sample_module
    from memaudit.scan.alignment_check import run_alignment
    from memaudit.scan.image_set import ImageSet

    seen = []

    class StandIn:  # a known embedding per image: its mean over a 2 x 2 grid of quadrants
        def __init__(self, weights, *, allow_pickle, device) -> None:
            pass

        def embed_images(self, images):
            seen.append(len(images))
            halves = images.mean(dim=1).unflatten(1, (2, -1)).unflatten(3, (2, -1))
            return torch.nn.functional.normalize(halves.mean(dim=(2, 4)).flatten(1).double(), dim=1)

        def embed_reports(self, reports):
            return torch.nn.functional.normalize(torch.tensor([[len(r), 1.0, 2.0, 3.0] for r in reports]).double())

    monkeypatch.setattr(alignment_check, "BioViLT", StandIn)
    monkeypatch.setattr(generated_sample_module, "ALIGNMENT_BATCH", 3)
    aligned = _aligned(sampling_context, tmp_path, weights=Path("/models/biovil-t"))
    sample = generated_sample(aligned)
    assert sample.alignment.status == "ok" and seen == [3, 3, 3, 1]  # 10 images, embedded as they come
    images = aligned.generate(aligned.train_groups, per_group=2, stream="nearest-neighbour", label="at once")
    whole = run_alignment(aligned, ImageSet.in_memory(images), sample.captions)
    assert sample.alignment.metrics["alignment.score"] == pytest.approx(whole.metrics["alignment.score"], abs=1e-6)
    assert sample.alignment.message == whole.message


def test_a_capped_sample_is_seeded_and_its_images_do_not_depend_on_the_cap(sampling_context, tmp_path):
    everything = generated_sample(sampling_context)
    capped = dataclasses.replace(
        sampling_context, policy=_policy(tmp_path, neighbour="generations_per_prompt: 2, max_prompts: 2")
    )
    sample = generated_sample(capped)
    again = generated_sample(dataclasses.replace(capped))
    captions = sample.captions
    assert sample.features.shape[0] == 4 and captions == again.captions
    assert torch.equal(sample.features, again.features)
    assert captions[0] == captions[1] and captions[2] == captions[3] and captions[0] != captions[2]
    distinct = list(dict.fromkeys(everything.captions))
    positions = [distinct.index(captions[0]), distinct.index(captions[2])]
    assert positions == sorted(positions)  # chosen prompts keep their order
    for k, position in enumerate(positions):
        expected = everything.features[2 * position : 2 * position + 2]
        assert torch.allclose(sample.features[2 * k : 2 * k + 2], expected, atol=1e-5)


def test_an_alignment_failure_fails_only_the_alignment_check(sampling_context, tmp_path, monkeypatch):
    import memaudit.scan.alignment_check as alignment_check

    class Broken:
        def __init__(self, weights, *, allow_pickle, device) -> None:
            pass

        def embed_images(self, images):
            raise ValueError("image 3: BioViL-T needs 3 channels")

    monkeypatch.setattr(alignment_check, "BioViLT", Broken)
    sample = generated_sample(_aligned(sampling_context, tmp_path, weights=Path("/models/biovil-t")))
    assert sample.alignment.status == "error" and sample.alignment.message == "image 3: BioViL-T needs 3 channels"
    assert sample.features.shape[0] == 10 and sample.feature_error is None  # nearest neighbour and FID go on
