"""Nearest-neighbour distances (AMD, near-copy rate) and FID, on one extractor's features."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from memaudit.errors import MemauditError
from memaudit.features import extract_features
from memaudit.metrics.fid import frechet_distance
from memaudit.metrics.nearest_neighbour import (
    average_min_distance,
    min_cosine_distance,
    near_copy_rate,
)
from memaudit.results.scan_result import CheckOutcome, FidEvidence, NearestNeighbourEvidence
from memaudit.sampling.seeds import sample_seed
from memaudit.scan.calibration import calibrated_threshold
from memaudit.scan.context import ScanContext
from memaudit.scan.shard import batch_unit

FEATURE_BATCH = 32


@dataclass(frozen=True)
class GeneratedSample:
    """The model's sample for the sample checks: its captions, its features (when nearest neighbour or
    FID run) and its images (only when alignment runs: 3 MiB each at 512 px, so not kept otherwise)."""

    captions: list[str]
    features: torch.Tensor | None
    images: torch.Tensor | None
    feature_error: str | None = None  # why no features were extracted (e.g. the extractor has no weights)


def generated_sample(context: ScanContext) -> GeneratedSample:
    """Images from the model for nearest-neighbour, FID and alignment (every distinct prompt, or a
    seeded sample), with the caption each was generated from; features are extracted as the images
    come, ``FEATURE_BATCH`` at a time, so memory holds a batch of images, not the sample."""
    checks = context.policy.checks
    settings = checks.nearest_neighbour
    groups = context.train_groups
    if settings.max_prompts and settings.max_prompts < len(groups):
        generator = torch.Generator().manual_seed(sample_seed(context.policy.sampling.seed, "neighbour-sample", 0))
        groups = [groups[i] for i in sorted(torch.randperm(len(groups), generator=generator)[: settings.max_prompts])]
    per_group = settings.generations_per_prompt
    feature_error = None
    if settings.enabled:
        try:
            _ = context.extractor  # built before the images are generated: a missing extractor is named now
        except (MemauditError, ValueError) as error:
            feature_error = str(error)
    extract = settings.enabled and feature_error is None
    features, kept, pending = [], [], torch.empty(0, 3, context.image_side, context.image_side)
    stream = context.generate_groups(
        context.shard.part(
            groups, unit=math.lcm(max(1, context.policy.sampling.batch_size), batch_unit((FEATURE_BATCH, per_group)))
        ),
        per_group=per_group,
        stream="nearest-neighbour",
        label="generating for distances",
    )
    for _, images in stream:
        if checks.alignment.enabled:
            kept.append(images)
        if extract:
            pending = torch.cat([pending, images])
            while len(pending) >= FEATURE_BATCH:
                features.append(generated_features(context, pending[:FEATURE_BATCH]))
                pending = pending[FEATURE_BATCH:]
    if extract and len(pending):
        features.append(generated_features(context, pending))
    features, kept = context.shard.gather(features), context.shard.gather(kept)  # in rank order
    return GeneratedSample(
        captions=[group.caption for group in groups for _ in range(per_group)],
        features=torch.cat(features) if features else None,
        images=torch.cat(kept) if kept else None,
        feature_error=feature_error,
    )


def generated_features(context: ScanContext, images: torch.Tensor) -> torch.Tensor:
    return extract_features(context.extractor, images, batch_size=FEATURE_BATCH)


def run_nearest_neighbour(context: ScanContext, features: torch.Tensor) -> CheckOutcome:
    settings = context.policy.checks.nearest_neighbour
    chunk = settings.chunk_size
    generated_min, nearest = min_cosine_distance(features, context.train_features, chunk_size=chunk)
    holdout_min, _ = min_cosine_distance(context.holdout_features, context.train_features, chunk_size=chunk)
    calibration = calibrated_threshold(
        context, holdout_min, false_alarm=settings.near_copy_quantile, tail="lower", what="the near-copy tau"
    )
    tau = calibration.threshold
    rate = near_copy_rate(generated_min, tau)
    copies = sorted({context.train.records[int(i)].id for d, i in zip(generated_min, nearest, strict=True) if d < tau})
    amd = average_min_distance(generated_min)
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=f"AMD {amd:.4g}; {rate:.1%} of {len(generated_min)} samples closer than tau={tau:.4g}",
        metrics={"nearest_neighbour.amd": amd, "nearest_neighbour.near_copy_rate": rate},
        sample_sizes={"nearest_neighbour.near_copy_rate": len(generated_min)},
        warnings=calibration.warnings,
        nearest_neighbour=NearestNeighbourEvidence(
            extractor=context.extractor.name,
            extractor_weights_sha256=context.extractor.weights_digest,
            tau=tau,
            near_copy_quantile=settings.near_copy_quantile,
            calibration=calibration.record,
            generated_min_distances=[float(d) for d in generated_min],
            holdout_min_distances=[float(d) for d in holdout_min],
            near_copy_train_ids=copies,
        ),
    )


def run_fid(context: ScanContext, features: torch.Tensor) -> CheckOutcome:
    settings = context.policy.checks.fid
    real = context.holdout_features
    if min(len(real), len(features)) < settings.min_samples:
        return CheckOutcome(
            status="error",
            required=settings.required,
            message=f"FID needs at least {settings.min_samples} real and generated samples "
            f"(have {len(real)} and {len(features)})",
        )
    value = frechet_distance(real, features)
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=f"FID {value:.4g} ({context.extractor.name} features, {len(real)} real vs {len(features)} generated)",
        metrics={"fid.fid": value},
        fid=FidEvidence(extractor=context.extractor.name, real_samples=len(real), generated_samples=len(features)),
    )
