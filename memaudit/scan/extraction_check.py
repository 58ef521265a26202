"""The extraction check: attack chosen prompts (triage or all), or verify every image of a release."""

from __future__ import annotations

import torch

from memaudit.data import ImageCaptionDataset, conform
from memaudit.metrics.extraction import attack_prompt, distance_ratio, nearest_tiled_l2, two_nearest_tiled_l2
from memaudit.results.scan_result import (
    AttackedPrompt,
    CheckOutcome,
    CountTestRecord,
    EvidenceImage,
    ExtractionEvidence,
)
from memaudit.sampling.seeds import sample_seed
from memaudit.scan.context import PromptGroup, ScanContext
from memaudit.scan.evidence import evidence_image
from memaudit.scan.extraction_thresholds import Thresholds, extraction_thresholds


def choose_prompts(context: ScanContext, scores: torch.Tensor | None, flags: list[bool] | None):
    """(group, reason) pairs: flagged prompts by descending score, then the next highest-scoring unflagged
    ones (``ranked_prompts``; 'fill': as many as the cap leaves), then a seeded random sample of the rest.
    ``max_prompts`` caps the total; the random sample keeps its place under the cap and the lowest-scoring
    flagged or ranked prompts give way.

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
        ranked = [g for g in by_score if not flags[g.index]][: settings.ranked_budget(len(flagged))]
        taken = {g.index for g in flagged} | {g.index for g in ranked}
        rest = [g for g in groups if g.index not in taken]
        generator = torch.Generator().manual_seed(sample_seed(context.policy.sampling.seed, "extraction-sample", 0))
        picks = sorted(torch.randperm(len(rest), generator=generator)[: settings.random_prompts].tolist())
        top = [(g, "flagged") for g in flagged] + [(g, "ranked") for g in ranked]
        sampled = [(rest[i], "sampled") for i in picks]
        if settings.max_prompts:  # the cap keeps the random sample: it covers what triage misses
            sampled = sampled[: settings.max_prompts]
            top = top[: settings.max_prompts - len(sampled)]
        return top + sampled
    return chosen[: settings.max_prompts] if settings.max_prompts else chosen


def _outcome(
    context: ScanContext,
    attacked: list[AttackedPrompt],
    *,
    thresholds: Thresholds,
    count: CountTestRecord | None,
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
            criterion=settings.criterion if thresholds.combined else "separate",
            combined_threshold=thresholds.combined.threshold if thresholds.combined else None,
            combined_calibration=thresholds.combined.record if thresholds.combined else None,
            family_false_alarm=thresholds.family_false_alarm,
            tail=thresholds.tail_record(),
            count_test=count,
            attacked=attacked,
            extracted_train_ids=extracted_ids,
        ),
        evidence_images=evidence,
    )


def attack_candidate(context: ScanContext, images: torch.Tensor, *, thresholds: Thresholds, item_ids, reason: str):
    """The clique attack on one prompt's generations: (the record the scan keeps, before the family test;
    the attack; the nearest training row or None)."""
    settings = context.policy.checks.extraction
    attack = attack_prompt(
        context.for_comparison(images),
        context.distinct_train_pixels,
        edge_threshold=settings.edge_threshold,
        min_clique=settings.effective_min_clique,
        verify_threshold=thresholds.verify.threshold,
        ratio_threshold=thresholds.ratio.threshold if thresholds.ratio else None,
        tiles=settings.tiles,
        device=context.compare_device,
    )
    row = context.distinct_train_rows[attack.nearest_train] if attack.nearest_train is not None else None
    # The thresholds decide, as for a released image (attack_prompt's own verdict is the separate criterion's).
    meets = attack.distance is not None and thresholds.candidate(attack.distance, attack.distance_ratio)
    record = AttackedPrompt(
        item_ids=item_ids,
        reason=reason,
        clique_size=len(attack.clique),
        clique_exact=attack.clique_exact,
        nearest_train_id=context.train.records[row].id if row is not None else None,
        distance=attack.distance,
        extracted=meets,
        distance_ratio=attack.distance_ratio,
    )
    return record, attack, row


def run_extraction(context: ScanContext, chosen: list[tuple[PromptGroup, str]]) -> CheckOutcome:
    """The attack on every chosen prompt (each a unit of work a resumed scan reads back), then the family
    test over them all."""
    settings = context.policy.checks.extraction
    thresholds = extraction_thresholds(context)
    # Ranks split the prompts by position, whatever a killed run finished: each reads back only its own.
    mine = context.shard.part(chosen, unit=max(1, context.policy.sampling.batch_size))  # whole generation batches
    records = _finished_attacks(context, mine)
    todo = [(group, reason) for group, reason in mine if group.index not in records]
    pending = {}  # evidence of candidates that meet the per-candidate thresholds, by prompt index
    generated = context.generate_groups(
        [group for group, _ in todo], per_group=settings.generations, stream="extraction", label="extraction attack"
    )
    for (group, images), (_, reason) in zip(generated, todo, strict=True):
        record, attack, row = attack_candidate(
            context, images, thresholds=thresholds, item_ids=context.ids(group.rows), reason=reason
        )
        records[group.index] = record
        if context.work:
            context.work.put(f"attack-{group.index}", record.model_dump(mode="json"))
        if record.extracted and context.include_evidence_images:
            pending[group.index] = evidence_image(
                f"prompt of {context.ids(group.rows)[0]}: clique medoid vs {record.nearest_train_id}",
                record.nearest_train_id,
                generated=images[attack.candidate],
                train=context.train_image(row),
            )
    finished = [(index, record.model_dump(mode="json")) for index, record in records.items()]
    records = {index: AttackedPrompt.model_validate(record) for index, record in context.shard.gather(finished)}
    candidates = [records[group.index] for group, _ in chosen]
    attacked = thresholds.judge(candidates)
    evidence = [
        pending[group.index]
        for (group, _), item in zip(chosen, attacked, strict=True)
        if item.extracted and group.index in pending
    ]
    return _outcome(
        context,
        attacked,
        thresholds=thresholds,
        count=thresholds.count_test(candidates),
        generations=settings.generations,
        evidence=evidence,
    )


def _finished_attacks(context: ScanContext, chosen: list[tuple[PromptGroup, str]]) -> dict[int, AttackedPrompt]:
    """Attacks a killed run of this scan finished, by prompt index."""
    if context.work is None:
        return {}
    saved = {group.index: context.work.get(f"attack-{group.index}") for group, _ in chosen}
    return {index: AttackedPrompt.model_validate(value) for index, value in saved.items() if value is not None}


def run_image_matching(context: ScanContext, released: ImageCaptionDataset) -> CheckOutcome:
    """Release audit: each image is a candidate, a copy when it meets the calibrated thresholds and the
    family test over the whole release selects it. The release is compared from its own pixel store
    (at the comparison side, read a chunk at a time), as the training images are."""
    settings = context.policy.checks.extraction
    thresholds = extraction_thresholds(context)
    rows = context.distinct_train_rows
    references = context.distinct_train_pixels
    queries = context.pixel_store(released, list(range(len(released))), "released")
    image_ids = released.ids
    if thresholds.ratio is None:
        distances, nearest = nearest_tiled_l2(queries, references, tiles=settings.tiles, device=context.compare_device)
        ratios = [None] * len(distances)
    else:
        distances, nearest, second = two_nearest_tiled_l2(
            queries, references, tiles=settings.tiles, device=context.compare_device
        )
        ratios = [float(r) for r in distance_ratio(distances, second)]
    candidates = [
        AttackedPrompt(
            item_ids=[image_id],
            reason="image",
            clique_size=1,
            nearest_train_id=context.train.records[rows[int(index)]].id,
            distance=float(distance),
            extracted=thresholds.candidate(float(distance), ratio),
            distance_ratio=ratio,
        )
        for image_id, distance, index, ratio in zip(image_ids, distances, nearest, ratios, strict=True)
    ]
    attacked = thresholds.judge(candidates)
    evidence = [
        evidence_image(
            f"{item.item_ids[0]} vs {item.nearest_train_id}",
            item.nearest_train_id,
            generated=conform(released.load_image(position), size=context.image_side, channels=3),
            train=context.train_image(rows[int(nearest[position])]),
        )
        for position, item in enumerate(attacked)
        if item.extracted and context.include_evidence_images
    ]
    count = thresholds.count_test(candidates)
    return _outcome(context, attacked, thresholds=thresholds, count=count, generations=1, evidence=evidence)
