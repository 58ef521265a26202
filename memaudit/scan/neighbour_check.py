"""Nearest-neighbour distances (AMD, near-copy rate) and FID, on one extractor's features."""

from __future__ import annotations

import torch

from memaudit.features import extract_features
from memaudit.metrics.fid import frechet_distance
from memaudit.metrics.nearest_neighbour import (
    average_min_distance,
    min_cosine_distance,
    near_copy_rate,
)
from memaudit.results.scan_result import CheckOutcome, FidEvidence, NearestNeighbourEvidence
from memaudit.scan.calibration import calibrated_threshold
from memaudit.scan.context import ScanContext

FEATURE_BATCH = 32


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
