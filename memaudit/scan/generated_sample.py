"""The model's sample for the sample checks (nearest neighbour, FID, alignment), generated once.

Each batch of images is turned into what the checks read as it comes (extractor features, BioViL-T
embeddings) and then dropped, so memory holds one batch of images whatever the sample's size (at
512 px a float32 image is 3 MiB: a 10^4-image sample would be 30 GiB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from memaudit.errors import MemauditError
from memaudit.results.scan_result import CheckOutcome
from memaudit.sampling.seeds import sample_seed
from memaudit.scan.alignment_check import AlignmentEmbedder, has_report_text, not_applicable
from memaudit.scan.context import ScanContext
from memaudit.scan import neighbour_check
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


def generated_sample(context: ScanContext) -> GeneratedSample:
    """Images from the model (every distinct prompt, or a seeded sample) with the caption each was
    generated from; the extractor and the alignment model are built before the first image, so a
    missing one is named before the generation time is spent."""
    checks = context.policy.checks
    settings = checks.nearest_neighbour
    groups = context.train_groups
    if settings.max_prompts and settings.max_prompts < len(groups):
        generator = torch.Generator().manual_seed(sample_seed(context.policy.sampling.seed, "neighbour-sample", 0))
        groups = [groups[i] for i in sorted(torch.randperm(len(groups), generator=generator)[: settings.max_prompts])]
    per_group = settings.generations_per_prompt
    captions = [group.caption for group in groups for _ in range(per_group)]
    feature_error = None
    if settings.enabled:
        try:
            _ = context.extractor
        except (MemauditError, ValueError) as error:
            feature_error = str(error)
    extract = settings.enabled and feature_error is None
    mine = context.shard.part(
        groups, unit=math.lcm(max(1, context.policy.sampling.batch_size), batch_unit((neighbour_check.FEATURE_BATCH, per_group)))
    )
    alignment, embedder = _alignment_start(context, captions)  # embedded within the generation stage
    features, pending = [], torch.empty(0, 3, context.image_side, context.image_side)
    stream = context.generate_groups(
        mine, per_group=per_group, stream="nearest-neighbour", label="generating for distances"
    )
    for _, images in stream:
        if embedder is not None:
            embedder.add(images)
        if extract:
            pending = torch.cat([pending, images])
            while len(pending) >= (batch := neighbour_check.FEATURE_BATCH):
                features.append(generated_features(context, pending[:batch]))
                pending = pending[batch:]
    if extract and len(pending):
        features.append(generated_features(context, pending))
    features = context.shard.gather(features)  # in rank order
    if embedder is not None:
        alignment = embedder.outcome(torch.cat(context.shard.gather(embedder.parts)), captions)
    return GeneratedSample(
        captions=captions,
        features=torch.cat(features) if features else None,
        feature_error=feature_error,
        alignment=alignment,
    )


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
