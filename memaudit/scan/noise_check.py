"""The noise-magnitude check: score every distinct training prompt, calibrate on distinct holdout prompts
(prompts as the text encoder reads them: captions that differ only past its cut are one)."""

from __future__ import annotations

import math

import torch

from memaudit.metrics.noise_magnitude import flagged
from memaudit.metrics.triage import DETECTORS
from memaudit.results.scan_result import CaptionCount, CheckOutcome, NoiseMagnitudeEvidence, PromptScore
from memaudit.sampling.triage import triage_scores
from memaudit.scan.calibration import calibrated_threshold
from memaudit.scan.chunks import chunked_scores
from memaudit.scan.context import ScanContext
from memaudit.scan.prompts import PromptGroup
from memaudit.scan.shard import batch_unit


def _scores(context: ScanContext, captions: list[str], label: str, *, unit: str) -> torch.Tensor:
    """Scores of ``captions``, embedded and scored a chunk at a time (the same scores as at once: seeds
    follow the position in the full list); each chunk is a unit of work a resumed scan reads back."""
    settings, sampling = context.policy.checks.noise_magnitude, context.policy.sampling
    advance = context.progress.stage(label, len(captions) * settings.generations)

    def score(first: int, last: int) -> torch.Tensor:
        return triage_scores(
            context.pipeline,
            context.embed(captions[first:last]),
            context.empty_embedding,
            detector=settings.detector,
            generations=settings.generations,
            steps=settings.steps,
            num_inference_steps=triage_schedule(context),
            guidance_scale=sampling.guidance_scale,
            latent_size=context.latent_side,
            seed=sampling.seed,
            scheduler=sampling.scheduler,
            batch_size=sampling.batch_size,
            first_prompt=first,
            progress=advance,
        )

    return chunked_scores(
        context,
        len(captions),
        unit=unit,
        align=_shard_unit(context),
        score=score,
        skipped=lambda n: advance(n * settings.generations),
    )


def triage_schedule(context: ScanContext) -> int:
    """The triage sampler's schedule length: the policy's triage setting, else the sampling's."""
    return context.policy.checks.noise_magnitude.num_inference_steps or context.policy.sampling.num_inference_steps


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


def caption_count(groups: list[PromptGroup], *, max_tokens: int) -> CaptionCount:
    """How many distinct captions ``groups`` stand for, how many were cut, and how many prompts they are."""
    return CaptionCount(
        captions=sum(group.captions for group in groups),
        truncated=sum(group.truncated for group in groups),
        prompts=len(groups),
        max_tokens=max_tokens,
    )


def truncation_note(count: CaptionCount, side: str) -> str:
    """The counts in a sentence: "12 of 300 distinct holdout captions are longer than ..."."""
    prompts = f"{count.prompts} distinct prompt{'s' if count.prompts != 1 else ''}"
    return (
        f"{count.truncated} of {count.captions} distinct {side} captions are longer than the text encoder's "
        f"{count.max_tokens} tokens and were truncated; the {count.captions} captions are {prompts} to the model"
    )


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
    max_tokens = context.tokenizer.model_max_length
    captions = {
        "training": caption_count(context.train_groups, max_tokens=max_tokens),
        "holdout": caption_count(context.holdout_groups, max_tokens=max_tokens),
    }
    notes = [
        truncation_note(counts, side)
        for side, counts in captions.items()
        if counts.truncated or counts.prompts < counts.captions
    ]
    outcome = CheckOutcome(
        status="ok",
        required=settings.required,
        message=(
            f"{count} of {len(prompts)} distinct training prompts above the {settings.detector} flag threshold "
            f"(holdout score {calibration.record.k} from the top of {calibration.record.n} distinct prompts)"
            + "".join(f"; {note}" for note in notes)
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
            schedule=triage_schedule(context),
            generations=settings.generations,
            train=prompts,
            holdout_scores=[float(s) for s in holdout_scores],
            flagged_item_ids=flagged_ids,
            train_captions=captions["training"],
            holdout_captions=captions["holdout"],
        ),
    )
    return outcome, train_scores
