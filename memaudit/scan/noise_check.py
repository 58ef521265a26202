"""The noise-magnitude check: score every distinct training caption, calibrate on holdout captions."""

from __future__ import annotations

import math

import torch

from memaudit.metrics.noise_magnitude import flagged
from memaudit.metrics.triage import DETECTORS
from memaudit.results.scan_result import CheckOutcome, NoiseMagnitudeEvidence, PromptScore
from memaudit.sampling.triage import triage_scores
from memaudit.scan.calibration import calibrated_threshold
from memaudit.scan.context import PROMPT_CHUNK, ScanContext
from memaudit.scan.shard import batch_unit


def _scores(context: ScanContext, captions: list[str], label: str, *, unit: str) -> torch.Tensor:
    """Scores of ``captions``, embedded and scored ``PROMPT_CHUNK`` at a time (the same scores as at once);
    each chunk is a unit of work a resumed scan reads back."""
    settings, sampling = context.policy.checks.noise_magnitude, context.policy.sampling
    advance = context.progress.stage(label, len(captions) * settings.generations)
    scores = []
    for start in range(0, len(captions), PROMPT_CHUNK):
        saved = context.work.get(f"{unit}-{start}") if context.work else None
        if saved is not None:
            scores.append(torch.tensor(saved, dtype=torch.float64))
            advance(len(saved) * settings.generations)
            continue
        count = len(captions[start : start + PROMPT_CHUNK])
        first, last = (start + bound for bound in context.shard.bounds(count, unit=_shard_unit(context)))
        mine = torch.empty(0, dtype=torch.float64)
        if last > first:
            mine = triage_scores(
                context.pipeline,
                context.embed(captions[first:last]),
                context.empty_embedding,
                detector=settings.detector,
                generations=settings.generations,
                steps=settings.steps,
                num_inference_steps=sampling.num_inference_steps,
                guidance_scale=sampling.guidance_scale,
                latent_size=context.latent_side,
                seed=sampling.seed,
                scheduler=sampling.scheduler,
                batch_size=sampling.batch_size,
                first_prompt=first,
                progress=advance,
            )
        scores.append(torch.tensor(context.shard.gather(mine.tolist()), dtype=torch.float64))
        if context.work:
            context.work.put(f"{unit}-{start}", scores[-1].tolist())
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)


def _shard_unit(context: ScanContext) -> int:
    """Prompts per shard block so that every rank's probe and text-encoder batches are the single
    process's: Wen batches prompt-generations, the first-step detectors whole prompts."""
    settings, batch = context.policy.checks.noise_magnitude, max(1, context.policy.sampling.batch_size)
    probe = (
        batch_unit((batch, settings.generations))
        if settings.detector == "wen"
        else max(1, batch // settings.generations)
    )
    return math.lcm(probe, batch)


def run_noise_magnitude(context: ScanContext) -> tuple[CheckOutcome, torch.Tensor]:
    """The outcome, and the per-group scores (extraction triage uses them)."""
    settings = context.policy.checks.noise_magnitude
    train_scores = _scores(
        context, [g.caption for g in context.train_groups], "noise magnitude: training prompts", unit="triage-train"
    )
    holdout_scores = _scores(
        context, [g.caption for g in context.holdout_groups], "noise magnitude: holdout prompts", unit="triage-holdout"
    )
    calibration = calibrated_threshold(
        context,
        holdout_scores,
        false_alarm=1.0 - settings.calibration_quantile,
        tail="upper",
        what="the noise-magnitude flag threshold",
    )
    threshold = calibration.threshold
    is_flagged = flagged(train_scores, threshold)
    prompts = [
        PromptScore(item_ids=context.ids(group.rows), score=float(score), flagged=bool(flag))
        for group, score, flag in zip(context.train_groups, train_scores, is_flagged, strict=True)
    ]
    flagged_ids = [item for prompt in prompts if prompt.flagged for item in prompt.item_ids]
    count = int(is_flagged.sum())
    outcome = CheckOutcome(
        status="ok",
        required=settings.required,
        message=(
            f"{count} of {len(prompts)} distinct training prompts above the {settings.detector} flag threshold "
            "(holdout score "
            f"{calibration.record.k} from the top of {calibration.record.n})"
        ),
        sample_sizes={"noise_magnitude.flagged_fraction": len(prompts)},
        warnings=calibration.warnings,
        metrics={
            "noise_magnitude.flagged_count": float(count),
            "noise_magnitude.flagged_fraction": count / len(prompts),
        },
        noise_magnitude=NoiseMagnitudeEvidence(
            detector=settings.detector,
            unet_passes=DETECTORS[settings.detector].unet_passes(settings.steps),
            threshold=threshold,
            calibration_quantile=settings.calibration_quantile,
            calibration=calibration.record,
            steps=settings.steps,
            generations=settings.generations,
            train=prompts,
            holdout_scores=[float(s) for s in holdout_scores],
            flagged_item_ids=flagged_ids,
        ),
    )
    return outcome, train_scores
