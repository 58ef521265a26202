"""The extraction check: which prompts are attacked, the clique attack on a model, and release verification."""

from __future__ import annotations

import hashlib
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from memaudit.data import ImageCaptionDataset
from memaudit.policy import load_policy
from memaudit.scan.context import ScanContext
from memaudit.scan.extraction_check import choose_prompts, run_extraction, run_image_matching
from memaudit.scan.progress import SilentProgress
from memaudit.tiny.memorizer import build_memorizer
from tests.images import write_dataset, write_png

POLICY = """
name: extraction-test
sampling: {{seed: {seed}, scheduler: ddim, num_inference_steps: 10, guidance_scale: 1.0, batch_size: 8}}
calibration: {{small_holdout: warn}}
checks:
  extraction: {extraction}
  nearest_neighbour: {{extractor: pixels}}
rules:
  no-extracted-images: {{metric: extraction.extracted_count, at_most: 0}}
"""
SIDE = 32


def _policy(folder: Path, extraction: str = "{}", *, seed: int = 0):
    path = folder / f"policy-{hashlib.sha256(f'{extraction}{seed}'.encode()).hexdigest()[:12]}.yaml"
    path.write_text(POLICY.format(extraction=extraction, seed=seed))
    return load_policy(path).policy


def _uniform(rng, count: int) -> list[np.ndarray]:
    return [rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8) for _ in range(count)]


def _context(folder: Path, *, policy, train: Path, holdout: Path, pipeline=None, side=SIDE, evidence=False):
    return ScanContext(
        policy=policy,
        train=ImageCaptionDataset(train),
        holdout=ImageCaptionDataset(holdout),
        progress=SilentProgress(),
        pipeline=pipeline,
        image_side=side,
        include_evidence_images=evidence,
    )


def _tiled_l2(a: np.ndarray, b: np.ndarray, tiles: int = 4) -> float:
    """Carlini et al.'s distance of two [H, W, C] images in [0, 1]: the largest per-tile RMS difference."""
    bounds = np.round(np.linspace(0, a.shape[0], tiles + 1)).astype(int)
    return max(
        float(np.sqrt(np.mean((a[r0:r1, c0:c1] - b[r0:r1, c0:c1]) ** 2)))
        for r0, r1 in itertools.pairwise(bounds)
        for c0, c1 in itertools.pairwise(bounds)
    )


# --- which prompts are attacked ------------------------------------------------------------------------------

CAPTIONS = ["c0", "c1", "c2", "c3", "c4", "c5", "c1"]  # six distinct prompts; c1 is carried by rows 1 and 6
FLAGS = [False, True, False, True, True, False]
SCORES = torch.tensor([0.1, 0.2, 0.3, 0.9, 0.5, 0.0])


@pytest.fixture(scope="module")
def prompt_data(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("prompts")
    rng = np.random.default_rng(0)
    train = write_dataset(root / "train", _uniform(rng, len(CAPTIONS)), CAPTIONS, prefix="train")
    holdout = write_dataset(root / "holdout", _uniform(rng, 2), ["h0", "h1"], prefix="holdout")
    return root, train, holdout


def _choose(prompt_data, extraction: str, scores=SCORES, flags=FLAGS, *, seed: int = 0):
    root, train, holdout = prompt_data
    context = _context(root, policy=_policy(root, extraction, seed=seed), train=train, holdout=holdout)
    return [(group.caption, reason) for group, reason in choose_prompts(context, scores, flags)]


def test_flagged_prompts_come_first_by_descending_score_then_a_sample_of_the_rest(prompt_data):
    chosen = _choose(prompt_data, "{random_prompts: 2}")
    assert chosen[:3] == [("c3", "flagged"), ("c4", "flagged"), ("c1", "flagged")]
    sampled = [caption for caption, reason in chosen[3:]]
    assert [reason for _, reason in chosen[3:]] == ["sampled", "sampled"]
    assert set(sampled) < {"c0", "c2", "c5"} and sampled == sorted(sampled)  # unflagged, in caption order


def test_the_random_sample_is_seeded(prompt_data):
    first = _choose(prompt_data, "{random_prompts: 2}")
    assert _choose(prompt_data, "{random_prompts: 2}") == first
    others = {tuple(_choose(prompt_data, "{random_prompts: 2}", seed=seed)) for seed in range(1, 20)}
    assert len(others | {tuple(first)}) > 1  # the sample follows sampling.seed


def test_a_sample_larger_than_the_rest_takes_all_unflagged_prompts(prompt_data):
    chosen = _choose(prompt_data, "{random_prompts: 10}")
    assert chosen[3:] == [("c0", "sampled"), ("c2", "sampled"), ("c5", "sampled")]
    assert _choose(prompt_data, "{random_prompts: 0}") == [("c3", "flagged"), ("c4", "flagged"), ("c1", "flagged")]


def test_without_scores_flagged_prompts_keep_caption_order_and_without_flags_all_are_sampled(prompt_data):
    chosen = _choose(prompt_data, "{random_prompts: 0}", scores=None)
    assert chosen == [("c1", "flagged"), ("c3", "flagged"), ("c4", "flagged")]
    unflagged = _choose(prompt_data, "{random_prompts: 3}", scores=None, flags=None)
    assert len(unflagged) == 3 and {reason for _, reason in unflagged} == {"sampled"}


def test_max_prompts_caps_the_attack_keeping_the_highest_scores_and_the_random_sample(prompt_data):
    chosen = _choose(prompt_data, "{random_prompts: 1, max_prompts: 3}")
    assert chosen[:2] == [("c3", "flagged"), ("c4", "flagged")] and chosen[2][1] == "sampled"
    assert _choose(prompt_data, "{random_prompts: 0, max_prompts: 2}") == [("c3", "flagged"), ("c4", "flagged")]
    # A sample as large as the cap takes all of it: triage cannot crowd out the unbiased draw.
    assert [reason for _, reason in _choose(prompt_data, "{random_prompts: 5, max_prompts: 2}")] == ["sampled"] * 2


def test_prompts_all_attacks_every_distinct_prompt_in_order(prompt_data):
    chosen = _choose(prompt_data, "{prompts: all, random_prompts: 0}")
    assert chosen == [(f"c{k}", "all") for k in range(6)]
    assert _choose(prompt_data, "{prompts: all, max_prompts: 4}", scores=None, flags=None) == chosen[:4]


# --- release verification: every image against the training set ----------------------------------------------


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Training and holdout images of uniform noise; a release of four images, one a copy of train-2."""
    root = tmp_path_factory.mktemp("release")
    rng = np.random.default_rng(7)
    train_arrays = _uniform(rng, 5)
    train = write_dataset(root / "train", train_arrays, [f"case {k}" for k in range(5)], prefix="train")
    holdout_arrays = _uniform(rng, 12)
    holdout = write_dataset(root / "holdout", holdout_arrays, [f"h {k}" for k in range(12)], prefix="holdout")
    # Black-and-white noise sits farther from uniform noise than uniform noise does from itself.
    far = [(rng.integers(0, 2, (SIDE, SIDE, 3)) * 255).astype(np.uint8) for _ in range(3)]
    released_arrays = {"a.png": far[0], "b.png": train_arrays[2], "c.png": far[1], "d.png": far[2]}
    for name, array in released_arrays.items():
        write_png(root / "released" / name, array)
    released = ImageCaptionDataset(root / "released", images_only=True)
    images = released.load_images(size=SIDE, channels=3)
    return root, train, holdout, images, released, train_arrays, holdout_arrays, released_arrays


def _release_folder(folder: Path, images: torch.Tensor, names: list[str]) -> ImageCaptionDataset:
    """A release as its user hands it over: a folder of 8-bit PNGs (a release is read from its files)."""
    for image, name in zip(images, names, strict=True):
        write_png(folder / name, (image.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8))
    return ImageCaptionDataset(folder, images_only=True)


def _match(release, *, evidence: bool = False, released: ImageCaptionDataset | None = None):
    root, train, holdout, _, released_files, *_ = release
    context = _context(root, policy=_policy(root), train=train, holdout=holdout, evidence=evidence)
    return run_image_matching(context, released or released_files)


def test_the_verify_threshold_is_an_order_statistic_of_nearest_training_distances(release):
    *_, train_arrays, holdout_arrays, _ = release
    nearest = [min(_tiled_l2(h / 255.0, t / 255.0) for t in train_arrays) for h in holdout_arrays]
    outcome = _match(release)
    extraction = outcome.extraction
    # A handful of holdout images cannot bound a 1% false-alarm share at 95%: the smallest distance is
    # used, and the outcome says the bound it achieves instead (the policy accepts a warning).
    assert extraction.verify_threshold == pytest.approx(min(nearest), rel=1e-6)  # images are float32
    calibration = extraction.calibration
    assert (calibration.n, calibration.k, calibration.sufficient) == (len(nearest), 1, False)
    assert calibration.bound == pytest.approx(1 - 0.05 ** (1 / len(nearest)))
    assert "the extraction verify threshold rests on" in outcome.warnings[0]
    assert extraction.verify_quantile == 0.01 and extraction.generations == 1


def test_only_the_copied_image_is_extracted_and_named_by_its_training_id(release):
    *_, train_arrays, _, released_arrays = release
    outcome = _match(release)
    extraction = outcome.extraction
    assert outcome.status == "ok" and outcome.required is True
    assert [a.item_ids for a in extraction.attacked] == [["a.png"], ["b.png"], ["c.png"], ["d.png"]]
    assert [a.extracted for a in extraction.attacked] == [False, True, False, False]
    copy = extraction.attacked[1]
    assert copy.nearest_train_id == "train-2" and copy.distance == pytest.approx(0.0, abs=1e-6)
    assert copy.reason == "image" and copy.clique_size == 1
    assert extraction.extracted_train_ids == ["train-2"]
    assert outcome.metrics == {"extraction.extracted_count": 1.0, "extraction.extraction_rate": 0.25}
    assert outcome.message == "1 training image(s) extracted from 4 attacked prompt(s)"
    for attacked, name in zip(extraction.attacked, released_arrays, strict=True):
        distances = [_tiled_l2(released_arrays[name] / 255.0, t / 255.0) for t in train_arrays]
        assert attacked.nearest_train_id == f"train-{int(np.argmin(distances))}"
        assert attacked.distance == pytest.approx(min(distances), abs=1e-6)
        assert attacked.extracted == (min(distances) < extraction.verify_threshold)


def test_two_copies_of_one_training_image_count_once(release, tmp_path):
    images = release[3]
    twice = _release_folder(tmp_path, torch.stack([images[1], images[0], images[1]]), ["x.png", "y.png", "z.png"])
    outcome = _match(release, released=twice)
    assert [a.nearest_train_id for a in outcome.extraction.attacked if a.extracted] == ["train-2", "train-2"]
    assert outcome.extraction.extracted_train_ids == ["train-2"]
    assert outcome.metrics["extraction.extracted_count"] == 1.0
    assert outcome.metrics["extraction.extraction_rate"] == pytest.approx(2 / 3)


def test_a_near_twin_among_many_images_is_not_a_copy_but_a_byte_copy_is(release, tmp_path):
    """Per image, a near-twin just below every holdout distance meets the verify threshold; across a
    release of 24 it is what chance produces, and the family test keeps it out; a byte copy stays in."""
    root, train, holdout, images, *_ = release
    twin_of = images[1]  # train-2
    unseen = torch.rand(images[1].shape, generator=torch.Generator().manual_seed(3))
    context = _context(root, policy=_policy(root), train=train, holdout=holdout)
    threshold = _match(release).extraction.verify_threshold
    step = unseen - twin_of
    scale = 0.97 * threshold / _tiled_l2(step.permute(1, 2, 0).numpy(), np.zeros_like(step.permute(1, 2, 0).numpy()))
    twin = twin_of + scale * step  # tiled L2 is linear in the difference: 0.97 x the threshold from train-2
    far = [images[0], images[2], images[3]] * 8
    names = ["0-twin.png", "1-copy.png"] + [f"far-{k:02d}.png" for k in range(22)]  # files are read in name order
    released = _release_folder(tmp_path, torch.stack([twin, twin_of, *far[:22]]), names)

    def judged(extraction: str):
        policy = _policy(root, "{specificity_quantile: null, " + extraction + "}")
        context = _context(root, policy=policy, train=train, holdout=holdout)
        return run_image_matching(context, released).extraction

    alone = judged("family_false_alarm: null")
    assert [a.extracted for a in alone.attacked[:2]] == [True, True]  # both meet the per-image threshold
    assert all(a.p_value is None for a in alone.attacked) and alone.tail is None
    family = judged("family_false_alarm: 0.01")
    twin_outcome, copy_outcome = family.attacked[:2]
    assert (twin_outcome.extracted, copy_outcome.extracted) == (False, True)
    assert copy_outcome.p_value == 0.0 and 0.0 < twin_outcome.p_value <= 1 / 13
    assert family.extracted_train_ids == ["train-2"] and family.family_false_alarm == 0.01
    assert family.tail is not None and family.tail.n == 12 and family.tail.k == 3
    assert context.policy.checks.extraction.family_false_alarm == 0.01  # the default


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_evidence_images_only_when_asked_and_kept_out_of_json(release):
    *_, train_arrays, _, released_arrays = release
    assert _match(release).evidence_images == []
    outcome = _match(release, evidence=True)
    assert len(outcome.evidence_images) == 1
    evidence = outcome.evidence_images[0]
    assert evidence.train_id == "train-2" and evidence.label == "b.png vs train-2"
    generated, train = _decode(evidence.generated_png), _decode(evidence.train_png)
    assert generated.shape == train.shape == (SIDE, SIDE, 3)
    assert np.array_equal(train, train_arrays[2]) and np.array_equal(generated, released_arrays["b.png"])
    dumped = outcome.model_dump_json()
    assert "evidence_images" not in dumped and "train_png" not in dumped
    assert outcome.model_dump_json() == _match(release).model_dump_json()


# --- the clique attack on a model that memorized one prompt ---------------------------------------------------

ATTACK = "{generations: 4, min_clique: 3, edge_threshold: 0.1, verify_quantile: 0.01}"


@pytest.fixture(scope="module")
def memorizer(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("memorizer")
    checkpoint, train, holdout, planted_ids = build_memorizer(tiny_pipeline, root, planted=1, generic=2, holdout=8)
    return root, checkpoint, train, holdout, planted_ids


def _attack(memorizer, *, evidence: bool = False, which=(0, 2)):
    root, checkpoint, train, holdout, _ = memorizer
    context = _context(
        root,
        policy=_policy(root, ATTACK),
        train=train,
        holdout=holdout,
        pipeline=checkpoint.pipeline,
        side=16,
        evidence=evidence,
    )
    groups = context.train_groups
    reasons = {0: "flagged", 1: "sampled", 2: "sampled"}
    return run_extraction(context, [(groups[k], reasons[k]) for k in which])


def test_the_memorized_prompt_is_extracted_and_a_generic_one_is_not(memorizer):
    planted_ids = memorizer[4]
    outcome = _attack(memorizer)
    extraction = outcome.extraction
    planted, generic = extraction.attacked
    assert planted.item_ids == planted_ids and planted.reason == "flagged"
    assert planted.extracted and planted.clique_size == 4 and planted.nearest_train_id == planted_ids[0]
    assert planted.distance < extraction.verify_threshold
    assert generic.item_ids == ["train-002"] and generic.reason == "sampled" and not generic.extracted
    assert extraction.extracted_train_ids == planted_ids and extraction.generations == 4
    assert extraction.min_clique == 3 and extraction.edge_threshold == 0.1
    assert outcome.metrics == {"extraction.extracted_count": 1.0, "extraction.extraction_rate": 0.5}
    assert outcome.evidence_images == []


def test_an_attack_does_not_depend_on_what_else_is_attacked(memorizer):
    both = _attack(memorizer).extraction.attacked
    assert _attack(memorizer, which=(0,)).extraction.attacked == both[:1]
    assert _attack(memorizer, which=(2,)).extraction.attacked == both[1:]


def test_attack_evidence_shows_the_clique_medoid_beside_the_training_image(memorizer):
    planted_ids = memorizer[4]
    outcome = _attack(memorizer, evidence=True)
    assert [e.train_id for e in outcome.evidence_images] == planted_ids
    evidence = outcome.evidence_images[0]
    assert evidence.label == f"prompt of {planted_ids[0]}: clique medoid vs {planted_ids[0]}"
    generated, train = _decode(evidence.generated_png), _decode(evidence.train_png)
    assert generated.shape == train.shape == (16, 16, 3)
    # The thumbnails are the copy and its original: as close as the attack measured (to 8-bit rounding).
    distance = outcome.extraction.attacked[0].distance
    assert _tiled_l2(generated / 255.0, train / 255.0) == pytest.approx(distance, abs=1 / 255)
    assert "generated_png" not in outcome.model_dump_json()


def test_the_ranked_budget_attacks_the_top_scores_even_when_nothing_is_flagged(prompt_data):
    nothing_flagged = [False] * len(FLAGS)
    chosen = _choose(prompt_data, "{ranked_prompts: 2, random_prompts: 1}", flags=nothing_flagged)
    by_score = [f"c{i}" for i in sorted(range(len(SCORES)), key=lambda i: -float(SCORES[i]))]
    assert chosen[:2] == [(by_score[0], "ranked"), (by_score[1], "ranked")]
    assert [reason for _, reason in chosen[2:]] == ["sampled"] and chosen[2][0] not in by_score[:2]


def test_ranked_prompts_follow_the_flagged_ones_without_repeating_them(prompt_data):
    chosen = _choose(prompt_data, "{ranked_prompts: 2, random_prompts: 0}")
    flagged = [caption for caption, reason in chosen if reason == "flagged"]
    ranked = [caption for caption, reason in chosen if reason == "ranked"]
    assert flagged == ["c3", "c4", "c1"] and len(ranked) == 2 and not set(ranked) & set(flagged)
    unflagged_by_score = sorted((i for i in range(len(FLAGS)) if not FLAGS[i]), key=lambda i: -float(SCORES[i]))
    assert ranked == [f"c{i}" for i in unflagged_by_score[:2]]


def test_fill_spends_the_cap_by_score_after_the_flagged_prompts_and_the_random_sample(prompt_data):
    # Cap 5: the 3 flagged, 1 sampled at random, and the 1 place left goes to the best unflagged score.
    chosen = _choose(prompt_data, "{ranked_prompts: fill, random_prompts: 1, max_prompts: 5}")
    unflagged_by_score = sorted((i for i in range(len(FLAGS)) if not FLAGS[i]), key=lambda i: -float(SCORES[i]))
    assert chosen[:4] == [
        ("c3", "flagged"),
        ("c4", "flagged"),
        ("c1", "flagged"),
        (f"c{unflagged_by_score[0]}", "ranked"),
    ]
    assert [reason for _, reason in chosen[4:]] == ["sampled"] and len(chosen) == 5
    # Nothing flagged: the whole cap less the sample goes by score.
    nothing_flagged = [False] * len(FLAGS)
    chosen = _choose(prompt_data, "{ranked_prompts: fill, random_prompts: 1, max_prompts: 4}", flags=nothing_flagged)
    by_score = [f"c{i}" for i in sorted(range(len(SCORES)), key=lambda i: -float(SCORES[i]))]
    assert chosen[:3] == [(caption, "ranked") for caption in by_score[:3]]
    assert chosen[3][1] == "sampled" and chosen[3][0] not in by_score[:3]
    # A cap above the prompt count attacks every prompt once.
    everything = _choose(prompt_data, "{ranked_prompts: fill, random_prompts: 2, max_prompts: 50}")
    assert sorted(caption for caption, _ in everything) == ["c0", "c1", "c2", "c3", "c4", "c5"]


# --- the calibration distances: computed once, split among ranks like the single process's chunks --------


class _OneRankOf:
    """Rank ``rank`` of ``world`` without a process group: gather returns this rank's part only."""

    def __init__(self, rank: int, world: int) -> None:
        from memaudit.scan.shard import Shard

        self.shard, self.rank, self.world = Shard(rank=rank, world=world), rank, world

    def bounds(self, count: int, *, unit: int = 1):
        return self.shard.bounds(count, unit=unit)

    def gather(self, values):
        return list(values)


def test_holdout_distances_are_searched_once_and_split_among_ranks_as_whole_chunks(release, monkeypatch):
    import dataclasses

    import memaudit.scan.extraction_thresholds as module

    root, train, holdout, *_, train_arrays, holdout_arrays, _ = release
    context = _context(root, policy=_policy(root), train=train, holdout=holdout)
    searches = []
    original = module.two_nearest_tiled_l2
    monkeypatch.setattr(module, "two_nearest_tiled_l2", lambda *a, **k: searches.append(1) or original(*a, **k))
    assert module.extraction_thresholds(context) is module.extraction_thresholds(context) and len(searches) == 1
    whole_nearest, whole_second = module.holdout_nearest(context)
    expected = [sorted(_tiled_l2(h / 255.0, t / 255.0) for t in train_arrays)[:2] for h in holdout_arrays]
    assert torch.allclose(torch.stack([whole_nearest, whole_second], 1), torch.tensor(expected, dtype=torch.float64))
    monkeypatch.setattr(module, "chunk_size_for", lambda images: 5)  # 12 holdout images: chunks of 5, 5, 2
    parts = []
    for rank in range(2):
        ranked = dataclasses.replace(context, shard=_OneRankOf(rank, 2))
        parts.append(module.holdout_nearest(ranked))
    assert [len(nearest) for nearest, _ in parts] == [5, 7]  # whole chunks: 1 of the 3 blocks, then 2
    assert torch.equal(torch.cat([nearest for nearest, _ in parts]), whole_nearest)
    assert torch.equal(torch.cat([second for _, second in parts]), whole_second)
