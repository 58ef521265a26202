"""The extraction check: attack chosen prompts (triage or all), or verify every image of a release."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memaudit.metrics.extraction import attack_prompt, distance_ratio, nearest_tiled_l2, two_nearest_tiled_l2
from memaudit.results.scan_result import AttackedPrompt, CheckOutcome, EvidenceImage, ExtractionEvidence
from memaudit.sampling.seeds import sample_seed
from memaudit.scan.calibration import Calibrated, calibrated_threshold
from memaudit.scan.context import PromptGroup, ScanContext
from memaudit.scan.evidence import evidence_image


def choose_prompts(context: ScanContext, scores: torch.Tensor | None, flags: list[bool] | None):
    """(group, reason) pairs: flagged prompts by descending score, then the next ``ranked_prompts``
    highest-scoring ones whether flagged or not, then a seeded random sample of the rest.

    A threshold calibrated on holdout captions (novel to the model, so they score high) can flag no
    memorized prompt at all while the score still ranks them first: the ranked budget attacks them.
    """
    settings = context.policy.checks.extraction
    groups = context.train_groups
    if settings.prompts == "all":
        chosen = [(group, "all") for group in groups]
    else:
        flags = flags or [False] * len(groups)
        by_score = sorted(groups, key=lambda g: -float(scores[g.index])) if scores is not None else []
        flagged = [g for g in by_score if flags[g.index]] or [g for g, f in zip(groups, flags, strict=True) if f]
        ranked = [g for g in by_score if not flags[g.index]][: settings.ranked_prompts]
        taken = {g.index for g in flagged} | {g.index for g in ranked}
        rest = [g for g in groups if g.index not in taken]
        generator = torch.Generator().manual_seed(sample_seed(context.policy.sampling.seed, "extraction-sample", 0))
        picks = sorted(torch.randperm(len(rest), generator=generator)[: settings.random_prompts].tolist())
        chosen = [(g, "flagged") for g in flagged] + [(g, "ranked") for g in ranked]
        chosen += [(rest[i], "sampled") for i in picks]
    return chosen[: settings.max_prompts] if settings.max_prompts else chosen


@dataclass(frozen=True)
class Thresholds:
    """What a candidate must meet to count as extracted, both calibrated on the holdout images."""

    verify: Calibrated  # closer to its nearest training image than unseen images come
    ratio: Calibrated | None  # and specific to it: nearest/second-nearest distance ratio below this

    @property
    def warnings(self) -> list[str]:
        return self.verify.warnings + (self.ratio.warnings if self.ratio else [])

    def extracted(self, distance: float, ratio: float | None) -> bool:
        specific = self.ratio is None or (ratio is not None and ratio < self.ratio.threshold)
        return distance < self.verify.threshold and specific


def _thresholds(context: ScanContext) -> Thresholds:
    settings = context.policy.checks.extraction
    references = context.distinct_train_pixels
    specificity = settings.specificity_quantile is not None and references.shape[0] >= 2
    if not specificity:
        distances, _ = nearest_tiled_l2(context.holdout_pixels, references, tiles=settings.tiles)
    else:
        distances, _, second = two_nearest_tiled_l2(context.holdout_pixels, references, tiles=settings.tiles)
    verify = calibrated_threshold(
        context, distances, false_alarm=settings.verify_quantile, tail="lower", what="the extraction verify threshold"
    )
    ratio = None
    if specificity:
        ratio = calibrated_threshold(
            context,
            distance_ratio(distances, second),
            false_alarm=settings.specificity_quantile,
            tail="lower",
            what="the extraction specificity (distance ratio) threshold",
        )
    return Thresholds(verify=verify, ratio=ratio)


def _outcome(
    context: ScanContext,
    attacked: list[AttackedPrompt],
    *,
    thresholds: Thresholds,
    generations: int,
    evidence: list[EvidenceImage],
) -> CheckOutcome:
    settings = context.policy.checks.extraction
    extracted_ids = sorted({a.nearest_train_id for a in attacked if a.extracted and a.nearest_train_id})
    extracted_prompts = sum(a.extracted for a in attacked)
    ratio = thresholds.ratio
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=f"{len(extracted_ids)} training image(s) extracted from {len(attacked)} attacked prompt(s)",
        metrics={
            "extraction.extracted_count": float(len(extracted_ids)),
            "extraction.extraction_rate": extracted_prompts / len(attacked) if attacked else 0.0,
        },
        sample_sizes={"extraction.extraction_rate": len(attacked)},
        warnings=thresholds.warnings,
        extraction=ExtractionEvidence(
            generations=generations,
            edge_threshold=settings.edge_threshold,
            min_clique=settings.effective_min_clique,
            verify_threshold=thresholds.verify.threshold,
            verify_quantile=settings.verify_quantile,
            calibration=thresholds.verify.record,
            ratio_threshold=ratio.threshold if ratio else None,
            specificity_quantile=settings.specificity_quantile if ratio else None,
            ratio_calibration=ratio.record if ratio else None,
            attacked=attacked,
            extracted_train_ids=extracted_ids,
        ),
        evidence_images=evidence,
    )


def run_extraction(context: ScanContext, chosen: list[tuple[PromptGroup, str]]) -> CheckOutcome:
    settings = context.policy.checks.extraction
    thresholds = _thresholds(context)
    rows = context.distinct_train_rows
    attacked, evidence = [], []
    for group, reason in chosen:
        images = context.generate(
            [group], per_group=settings.generations, stream="extraction", label=f"extraction: prompt {group.index}"
        )
        attack = attack_prompt(
            images,
            context.distinct_train_pixels,
            edge_threshold=settings.edge_threshold,
            min_clique=settings.effective_min_clique,
            verify_threshold=thresholds.verify.threshold,
            ratio_threshold=thresholds.ratio.threshold if thresholds.ratio else None,
            tiles=settings.tiles,
        )
        row = rows[attack.nearest_train] if attack.nearest_train is not None else None
        nearest_id = context.train.records[row].id if row is not None else None
        attacked.append(
            AttackedPrompt(
                item_ids=context.ids(group.rows),
                reason=reason,
                clique_size=len(attack.clique),
                clique_exact=attack.clique_exact,
                nearest_train_id=nearest_id,
                distance=attack.distance,
                extracted=attack.extracted,
                distance_ratio=attack.distance_ratio,
            )
        )
        if attack.extracted and context.include_evidence_images:
            evidence.append(
                evidence_image(
                    f"prompt of {context.ids(group.rows)[0]}: clique medoid vs {nearest_id}",
                    nearest_id,
                    generated=images[attack.candidate],
                    train=context.train_pixels[row],
                )
            )
    return _outcome(context, attacked, thresholds=thresholds, generations=settings.generations, evidence=evidence)


def run_image_matching(context: ScanContext, images: torch.Tensor, image_ids: list[str]) -> CheckOutcome:
    """Release audit: each image is a candidate, a copy when it meets both calibrated thresholds."""
    settings = context.policy.checks.extraction
    thresholds = _thresholds(context)
    rows = context.distinct_train_rows
    references = context.distinct_train_pixels
    if thresholds.ratio is None:
        distances, nearest = nearest_tiled_l2(images, references, tiles=settings.tiles)
        ratios = [None] * len(distances)
    else:
        distances, nearest, second = two_nearest_tiled_l2(images, references, tiles=settings.tiles)
        ratios = [float(r) for r in distance_ratio(distances, second)]
    attacked = [
        AttackedPrompt(
            item_ids=[image_id],
            reason="image",
            clique_size=1,
            nearest_train_id=context.train.records[rows[int(index)]].id,
            distance=float(distance),
            extracted=thresholds.extracted(float(distance), ratio),
            distance_ratio=ratio,
        )
        for image_id, distance, index, ratio in zip(image_ids, distances, nearest, ratios, strict=True)
    ]
    evidence = [
        evidence_image(
            f"{item.item_ids[0]} vs {item.nearest_train_id}",
            item.nearest_train_id,
            generated=images[position],
            train=context.train_pixels[rows[int(nearest[position])]],
        )
        for position, item in enumerate(attacked)
        if item.extracted and context.include_evidence_images
    ]
    return _outcome(context, attacked, thresholds=thresholds, generations=1, evidence=evidence)
