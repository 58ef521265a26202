"""The model's sample for the sample checks (nearest neighbour, FID, alignment), generated once.

Each batch of images is turned into what the checks read as it comes (extractor features, BioViL-T
embeddings) and then dropped, so memory holds one batch of images whatever the sample's size (at
512 px a float32 image is 3 MiB: a 10^4-image sample would be 30 GiB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice

import torch

from memaudit.errors import MemauditError
from memaudit.results.scan_result import CheckOutcome
from memaudit.sampling.seeds import sample_seed
from memaudit.scan import neighbour_check
from memaudit.scan.alignment_check import AlignmentEmbedder, has_report_text, not_applicable
from memaudit.scan.context import ScanContext
from memaudit.scan.neighbour_check import generated_features
from memaudit.scan.shard import batch_unit


@dataclass(frozen=True)
class GeneratedSample:
    """Captions of the sample (one per image), its features (when nearest neighbour or FID run), and
    the alignment check's outcome (when it runs)."""

    captions: list[str]
    features: torch.Tensor | None
    feature_error: str | None = None  # why no features were extracted (e.g. the extractor has no weights)
    alignment: CheckOutcome | None = None


SAMPLE_CHUNK = 256  # images per unit of work a killed scan reads back


def generated_sample(context: ScanContext) -> GeneratedSample:
    """Images from the model (every distinct prompt, or a seeded sample) with the caption each was
    generated from; the extractor and the alignment model are built before the first image, so a
    missing one is named before the generation time is spent. The sample is made in chunks of whole
    generation and feature batches, each a unit of work a resumed scan reads back and a sharded scan
    gives to one rank; a chunk's features and embeddings are the same however it was reached."""
    checks = context.policy.checks
    settings = checks.nearest_neighbour
    groups = _sampled_groups(context)
    per_group = settings.generations_per_prompt
    captions = [group.caption for group in groups for _ in range(per_group)]
    feature_error = None
    if settings.enabled:
        try:
            _ = context.extractor
        except (MemauditError, ValueError) as error:
            feature_error = str(error)
    alignment, embedder = _alignment_start(context, captions)  # embedded within the generation stage
    extract = settings.enabled and feature_error is None
    unit = math.lcm(max(1, context.policy.sampling.batch_size), batch_unit((neighbour_check.FEATURE_BATCH, per_group)))
    size = unit * max(1, SAMPLE_CHUNK // (unit * per_group))  # groups per chunk
    chunks = {first: groups[first : first + size] for first in range(0, len(groups), size)}
    done = {first: context.work.get(f"sample-{first}") for first in chunks} if context.work else {}
    todo = context.shard.part([first for first in chunks if done.get(first) is None])  # whole chunks per rank
    stream = context.generate_groups(
        [group for first in todo for group in chunks[first]],
        per_group=per_group, stream="nearest-neighbour", label="generating for distances",
    )  # fmt: skip
    mine = []
    for first in todo:
        images = (images for _, images in islice(stream, len(chunks[first])))
        unit_value = _chunk_value(context, images, extract=extract, embedder=embedder)
        if context.work:
            context.work.put(f"sample-{first}", unit_value)
        mine.append((first, unit_value))
    done |= dict(context.shard.gather(mine))
    values = [done[first] for first in chunks]
    if embedder is not None:
        alignment = embedder.outcome(_stacked(values, "alignment"), captions)
    return GeneratedSample(
        captions=captions,
        features=_stacked(values, "features") if extract else None,
        feature_error=feature_error,
        alignment=alignment,
    )


def _sampled_groups(context: ScanContext):
    """Every distinct training prompt, or a seeded sample of ``max_prompts`` in their order."""
    groups = context.train_groups
    cap = context.policy.checks.nearest_neighbour.max_prompts
    if cap and cap < len(groups):
        generator = torch.Generator().manual_seed(sample_seed(context.policy.sampling.seed, "neighbour-sample", 0))
        groups = [groups[i] for i in sorted(torch.randperm(len(groups), generator=generator)[:cap])]
    return groups


def _chunk_value(context: ScanContext, groups_images, *, extract: bool, embedder) -> dict:
    """One chunk's features and alignment embeddings, as exact JSON (a chunk holds whole feature
    batches, so its images are batched as in the whole sample; memory holds one batch of them)."""
    features, embeddings, pending = [], [], torch.empty(0, 3, context.image_side, context.image_side)
    for images in groups_images:
        if embedder is not None:
            embeddings.append(embedder.embed(images))
        if extract:
            pending = torch.cat([pending, images])
            while len(pending) >= (batch := neighbour_check.FEATURE_BATCH):
                features.append(generated_features(context, pending[:batch]))
                pending = pending[batch:]
    if extract and len(pending):
        features.append(generated_features(context, pending))
    return {"features": _exact(features), "alignment": _exact(embeddings)}


def _exact(parts: list[torch.Tensor]) -> dict | None:
    if not parts:
        return None
    values = torch.cat(parts)
    return {"dtype": str(values.dtype).removeprefix("torch."), "values": values.double().tolist()}


def _stacked(values: list[dict], key: str) -> torch.Tensor | None:
    parts = [value[key] for value in values if value[key] is not None]
    if not parts:
        return None
    return torch.cat([torch.tensor(p["values"], dtype=torch.float64).to(getattr(torch, p["dtype"])) for p in parts])


def _alignment_start(context: ScanContext, captions: list[str]):
    """(the outcome when it is already known, or the embedder that will produce it)."""
    settings = context.policy.checks.alignment
    if not settings.enabled:
        return None, None
    if not has_report_text(captions):
        return not_applicable(), None
    try:
        return None, AlignmentEmbedder(context)
    except (MemauditError, ValueError) as error:
        return CheckOutcome(status="error", required=settings.required, message=str(error)), None
