"""ScanContext: frozen and validated, prompt groups, lazily loaded inputs, and index-seeded generation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from memaudit.data import ImageCaptionDataset, conform
from memaudit.policy import load_policy
from memaudit.scan.context import PromptGroup, ScanContext, prompt_groups
from memaudit.scan.progress import SilentProgress
from tests.images import write_png
from tests.scan.recording_progress import RecordingProgress

POLICY = """
name: context-test
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 7.5, batch_size: 2}
calibration: {small_holdout: warn}
checks:
  nearest_neighbour: {extractor: pixels}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0}
"""


def _dataset(folder, images: list[np.ndarray], captions: list[str], *, prefix: str) -> ImageCaptionDataset:
    rows = []
    for index, (image, caption) in enumerate(zip(images, captions, strict=True)):
        name = f"{index:03d}.png"
        write_png(folder / name, image)
        rows.append({"id": f"{prefix}-{index}", "file_name": name, "text": caption})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return ImageCaptionDataset(folder)


def _random_images(count: int, *, seed: int, side: int = 16, channels: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (side, side, channels) if channels == 3 else (side, side)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]



def _context(tmp_path, captions, *, pipeline=None, image_side=16, images=None, progress=None, **extra) -> ScanContext:
    (tmp_path / "policy.yaml").write_text(POLICY)
    train = _dataset(tmp_path / "train", images or _random_images(len(captions), seed=1), captions, prefix="train")
    holdout = _dataset(
        tmp_path / "holdout", _random_images(3, seed=2), ["holdout a", "holdout b", "holdout c"], prefix="holdout"
    )
    return ScanContext(
        policy=load_policy(tmp_path / "policy.yaml").policy,
        train=train,
        holdout=holdout,
        progress=progress or SilentProgress(),
        pipeline=pipeline,
        image_side=image_side,
        **extra,
    )


def test_context_is_frozen(tmp_path):
    context = _context(tmp_path, ["a", "b"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.image_side = 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.include_evidence_images = True
    assert context.image_side == 16 and context.include_evidence_images is False


@pytest.mark.parametrize("side", [0, -3])
def test_image_side_below_one_is_refused(tmp_path, side):
    with pytest.raises(ValueError, match=rf"`image_side`.*{side}"):
        _context(tmp_path, ["a"], image_side=side)


def test_prompt_groups_gather_rows_by_distinct_caption_in_first_seen_order(tmp_path):
    captions = ["small effusion", "no acute process", "small effusion", "", "no acute process", "cardiomegaly", ""]
    context = _context(tmp_path, captions)
    expected = [
        PromptGroup(index=0, caption="small effusion", rows=[0, 2]),
        PromptGroup(index=1, caption="no acute process", rows=[1, 4]),
        PromptGroup(index=2, caption="", rows=[3, 6]),
        PromptGroup(index=3, caption="cardiomegaly", rows=[5]),
    ]
    assert prompt_groups(context.train) == expected
    assert context.train_groups == expected
    assert context.train_groups is context.train_groups  # computed once, even though the context is frozen
    assert [g.caption for g in context.holdout_groups] == ["holdout a", "holdout b", "holdout c"]
    assert context.ids(expected[1].rows) == ["train-1", "train-4"]


def test_with_the_models_tokenizer_captions_that_differ_past_its_cut_are_one_prompt(tmp_path, tiny_pipeline):
    long = " ".join(["no acute cardiopulmonary process"] * 20)  # 80 tokens: past the encoder's 75
    captions = [long + " small effusion", "cardiomegaly", long + " large pneumothorax", "Cardiomegaly", long + " clear"]
    context = _context(tmp_path, captions, pipeline=tiny_pipeline)
    assert context.tokenizer is tiny_pipeline.tokenizer
    assert context.train_groups == [
        PromptGroup(index=0, caption=long + " small effusion", rows=[0, 2, 4], captions=3, truncated=3),
        PromptGroup(index=1, caption="cardiomegaly", rows=[1, 3], captions=2, truncated=0),
    ]
    assert len(prompt_groups(context.train)) == 5  # without a tokenizer (a folder of images): each caption


def test_train_pixels_are_the_distinct_images_at_the_comparison_side_in_three_channels(tmp_path):
    gray = np.full((8, 8), 51, dtype=np.uint8)  # 51 / 255 = 0.2, a constant survives any resize
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 102, 0
    progress = RecordingProgress()
    context = _context(tmp_path, ["a", "b", "c"], images=[gray, rgb, gray], image_side=4, progress=progress)
    assert context.distinct_train_rows == [0, 1]  # the third row repeats the first image
    pixels = context.distinct_train_pixels
    assert pixels.shape == (2, 3, 4, 4) and len(pixels) == 2
    assert pixels[0:2].dtype == torch.float32
    assert torch.allclose(pixels[0], torch.full((3, 4, 4), 0.2), atol=1e-6)
    assert torch.allclose(pixels[1][0], torch.ones(4, 4)) and torch.allclose(pixels[1][1], torch.full((4, 4), 0.4))
    assert torch.allclose(pixels[1][2], torch.zeros(4, 4))
    assert progress.stages["loading training images"] == [2, 2]
    assert context.holdout_pixels.shape == (3, 3, 4, 4)
    assert torch.allclose(context.train_image(1), pixels[1])


def test_feature_cache_is_filled_once_and_reused(tmp_path):
    cache = tmp_path / "cache"
    context = _context(tmp_path, ["a", "b", "c"], feature_cache=cache)
    features = context.train_features
    assert context.extractor.name == "pixels"
    assert features.shape == (3, 32 * 32)
    entries = sorted((cache / "pixels" / "none").rglob("*.features"))
    assert len(entries) == 3
    # A second context reads the cache instead of recomputing: the entries are read back, not rewritten.
    written = [(path.stat().st_ino, path.stat().st_mtime_ns) for path in entries]
    assert torch.equal(dataclasses.replace(context).train_features, features)
    assert [(path.stat().st_ino, path.stat().st_mtime_ns) for path in entries] == written
    # An entry planted in the cache is not trusted: it fails its seal, is recomputed and replaced.
    header, _, _ = entries[0].read_bytes().partition(b"\n")
    entries[0].write_bytes(header + b"\n" + np.full(32 * 32, 7.0, dtype=np.float32).tobytes())
    assert torch.equal(dataclasses.replace(context).train_features, features)


@pytest.fixture(scope="module")
def generating_context(tiny_pipeline, tmp_path_factory):
    captions = ["small left pleural effusion", "no acute cardiopulmonary process", "heart size normal", "cardiomegaly"]
    return _context(tmp_path_factory.mktemp("generate"), captions, pipeline=tiny_pipeline, image_side=16)


def test_generate_gives_per_group_images_at_the_comparison_side(generating_context):
    groups = generating_context.train_groups
    images = generating_context.generate(groups[:2], per_group=3, stream="test", label="test")
    assert images.shape == (6, 3, 16, 16)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    # Different seeds per generation: no two images of a group are the same.
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])


def test_a_prompts_images_do_not_depend_on_what_else_is_generated(generating_context):
    groups = generating_context.train_groups
    alone = generating_context.generate([groups[2]], per_group=2, stream="test", label="alone")
    together = generating_context.generate(groups, per_group=2, stream="test", label="together")
    reordered = generating_context.generate([groups[3], groups[2]], per_group=2, stream="test", label="reordered")
    assert torch.allclose(together[4:6], alone, atol=1e-5)
    assert torch.allclose(reordered[2:4], alone, atol=1e-5)


def test_generation_seeds_follow_the_group_index_and_stream(generating_context):
    caption = generating_context.train_groups[0].caption
    first = generating_context.generate([PromptGroup(5, caption, [0])], per_group=1, stream="s", label="a")
    again = generating_context.generate([PromptGroup(5, caption, [0])], per_group=1, stream="s", label="b")
    other_index = generating_context.generate([PromptGroup(6, caption, [0])], per_group=1, stream="s", label="c")
    other_stream = generating_context.generate([PromptGroup(5, caption, [0])], per_group=1, stream="t", label="d")
    assert torch.equal(first, again)
    assert not torch.allclose(first, other_index, atol=1e-3)
    assert not torch.allclose(first, other_stream, atol=1e-3)


def test_generate_conforms_to_a_smaller_comparison_side(generating_context):
    small = dataclasses.replace(generating_context, image_side=8)
    group = generating_context.train_groups[0]
    images = small.generate([group], per_group=1, stream="test", label="small")
    full = generating_context.generate([group], per_group=1, stream="test", label="full")
    # The model still generates at its own resolution; its images are then resized for comparison.
    assert images.shape == (1, 3, 8, 8)
    assert torch.allclose(images[0], conform(full[0], size=8, channels=3), atol=1e-6)


def test_generate_groups_fills_batches_across_prompts_and_matches_one_prompt_at_a_time(generating_context):
    # batch_size 2, 3 generations per prompt: one prompt at a time needs batches of 2 + 1; streamed, the
    # 12 generations of 4 prompts go in 6 full batches, and each prompt's images are the same.
    groups = generating_context.train_groups
    batches: list[int] = []
    pipeline = generating_context.pipeline
    original = pipeline.vae.decode

    def counting_decode(latents, *args, **kwargs):
        batches.append(latents.shape[0])
        return original(latents, *args, **kwargs)

    pipeline.vae.decode = counting_decode
    try:
        streamed = list(generating_context.generate_groups(groups, per_group=3, stream="test", label="streamed"))
    finally:
        del pipeline.vae.decode
    assert batches == [2] * 6
    assert [group for group, _ in streamed] == groups
    for group, images in streamed:
        alone = generating_context.generate([group], per_group=3, stream="test", label="alone")
        assert images.shape == (3, 3, 16, 16)
        assert torch.allclose(images, alone, atol=1e-5)


def test_generate_groups_is_lazy(generating_context):
    progress = RecordingProgress()
    context = dataclasses.replace(generating_context, progress=progress)
    stream = context.generate_groups(context.train_groups, per_group=3, stream="test", label="lazy")
    next(stream)  # the first prompt's 3 images need two batches of 2, not all 12 generations
    assert progress.stages["lazy"] == [12, 4]
