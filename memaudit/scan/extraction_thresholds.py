"""What an extraction candidate must meet to count as a copy: close (the verify threshold), specific (the
distance ratio) and significant among all candidates (the family test), all calibrated on the holdout.
With ``criterion: combined`` close and specific are one statistic, the distance times its ratio (the
nearest distance squared over the second nearest), calibrated and tested like the distance alone."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memaudit.metrics.copy_count import copies_lower_bound
from memaudit.metrics.extraction import chunk_size_for, distance_ratio, nearest_tiled_l2, two_nearest_tiled_l2
from memaudit.metrics.tail import LowerTail, benjamini_hochberg, fit_lower_tail
from memaudit.results.scan_result import AttackedPrompt, CountTestRecord, TailRecord
from memaudit.scan.calibration import Calibrated, calibrated_threshold
from memaudit.scan.context import ScanContext


@dataclass(frozen=True)
class Thresholds:
    """What a candidate must meet to count as extracted, all calibrated on the holdout images."""

    verify: Calibrated  # closer to its nearest training image than unseen images come
    ratio: Calibrated | None  # and specific to it: nearest/second-nearest distance ratio below this
    tail: LowerTail | None  # and significant among all candidates (None: the family test is off)
    family_false_alarm: float | None
    combined: Calibrated | None = None  # criterion combined: distance x ratio below this, in place of both

    def statistic(self, distance: float | None, ratio: float | None) -> float | None:
        """What the thresholds and the family test read: the distance, or with the combined criterion the
        distance times its ratio (None when either is missing)."""
        if self.combined is None or distance is None:
            return distance
        return distance * ratio if ratio is not None else None

    @property
    def primary(self) -> Calibrated:
        """The calibrated threshold the statistic is compared with (the count test's order statistic)."""
        return self.combined or self.verify

    @property
    def warnings(self) -> list[str]:
        return self.primary.warnings + (self.ratio.warnings if self.ratio and not self.combined else [])

    def candidate(self, distance: float, ratio: float | None) -> bool:
        """Meets the per-candidate thresholds (the family test comes on top, over all candidates)."""
        if self.combined is not None:
            statistic = self.statistic(distance, ratio)
            return statistic is not None and statistic < self.combined.threshold
        specific = self.ratio is None or (ratio is not None and ratio < self.ratio.threshold)
        return distance < self.verify.threshold and specific

    def judge(self, attacked: list[AttackedPrompt], *, count: bool = True) -> list[AttackedPrompt]:
        """Each attacked prompt (or released image) with its p-value, extracted only if it meets the
        per-candidate thresholds and the family test selects it. The family's false-alarm budget is
        split in two (DESIGN 3.5): Benjamini-Hochberg on the tail p-values finds a few clear copies, the
        count test finds several that sit at the holdout's resolution; with the count test's bound of d
        copies the d closest candidates are marked. The count test assumes candidates independent of one
        another: ``count=False`` (e.g. several perturbations of one prompt) leaves BH the whole level."""
        if self.tail is None:
            return attacked
        statistics = [self.statistic(a.distance, a.distance_ratio) for a in attacked]
        p_values = [self.tail.p_value(value) if value is not None else 1.0 for value in statistics]
        level = self.family_false_alarm - (self.count_level if count else 0.0)
        selected = benjamini_hochberg(p_values, level) if attacked else []
        record = self.count_test(attacked) if count else None
        meeting = sorted((statistics[i], i) for i, a in enumerate(attacked) if a.extracted)
        closest = {i for _, i in meeting[: record.copies_at_least if record else 0]}
        return [
            a.model_copy(
                update={
                    "p_value": p if a.distance is not None else None,
                    "extracted": a.extracted and (chosen or i in closest),
                }
            )
            for i, (a, p, chosen) in enumerate(zip(attacked, p_values, selected, strict=True))
        ]

    @property
    def count_level(self) -> float:
        """The count test's share of the family level (Benjamini-Hochberg has the rest)."""
        return self.family_false_alarm / 2

    def count_test(self, attacked: list[AttackedPrompt]) -> CountTestRecord | None:
        """The count test over candidates as they come from the attack, before the family test: how
        many of those that meet the per-candidate thresholds (all below the verify threshold, the k-th
        smallest holdout distance, or the combined one) are copies at least (metrics/copy_count.py)."""
        if self.tail is None or not attacked:
            return None
        record, level = self.primary.record, self.count_level
        below = sum(a.extracted for a in attacked)
        copies = copies_lower_bound(below, candidates=len(attacked), holdout=record.n, rank=record.k, alpha=level)
        return CountTestRecord(
            rank=record.k, holdout=record.n, candidates=len(attacked), below=below, copies_at_least=copies, level=level
        )

    def tail_record(self) -> TailRecord | None:
        return TailRecord.of(self.tail)


def extraction_thresholds(context: ScanContext) -> Thresholds:
    """The scan's thresholds, computed once (the attack and the re-trigger check share them)."""
    if "extraction-thresholds" not in context.memo:
        context.memo["extraction-thresholds"] = _thresholds(context)
    return context.memo["extraction-thresholds"]


def _thresholds(context: ScanContext) -> Thresholds:
    settings = context.policy.checks.extraction
    distances, second = holdout_nearest(context)
    verify = calibrated_threshold(
        context, distances, false_alarm=settings.verify_quantile, tail="lower", what="the extraction verify threshold"
    )
    ratio = None
    if second is not None:
        ratio = calibrated_threshold(
            context,
            distance_ratio(distances, second),
            false_alarm=settings.specificity_quantile,
            tail="lower",
            what="the extraction specificity (distance ratio) threshold",
        )
    combined = None
    if settings.criterion == "combined" and second is not None:
        products = distances * distance_ratio(distances, second)
        combined = calibrated_threshold(
            context,
            products,
            false_alarm=settings.verify_quantile,
            tail="lower",
            what="the extraction combined (distance x ratio) threshold",
        )
    family = settings.family_false_alarm
    statistic = products if combined is not None else distances
    tail = fit_lower_tail(statistic, confidence=context.policy.calibration.confidence) if family else None
    return Thresholds(verify=verify, ratio=ratio, tail=tail, family_false_alarm=family, combined=combined)


def holdout_nearest(context: ScanContext) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each holdout image's nearest tiled L2 to a distinct training image, and its second nearest when
    the specificity test runs (else None). In a sharded scan each rank searches a block of whole query
    chunks (the single process's chunks); a resumed scan reads the distances back from the work log."""
    settings = context.policy.checks.extraction
    references = context.distinct_train_pixels
    k = 2 if settings.specificity_quantile is not None and references.shape[0] >= 2 else 1
    holdout = context.holdout_pixels
    start, stop = context.shard.bounds(len(holdout), unit=chunk_size_for(references))
    unit = f"calibration-{start}-{stop}"  # this rank's block: a rank reads back only its own
    mine = context.work.get(unit) if context.work else None
    if mine is None:
        mine = []
        if stop > start:
            search = two_nearest_tiled_l2 if k == 2 else nearest_tiled_l2
            found = search(_Rows(holdout, start, stop), references, tiles=settings.tiles, device=context.compare_device)
            mine = torch.stack([found[0], found[-1]] if k == 2 else [found[0]], dim=1).tolist()
        if context.work:
            context.work.put(unit, mine)
    saved = context.shard.gather(mine)
    values = torch.tensor(saved, dtype=torch.float64).reshape(len(saved), k)
    return values[:, 0], (values[:, 1] if k == 2 else None)


class _Rows:
    """Rows ``start:stop`` of an image tensor or store, sliced like one (read only when sliced)."""

    def __init__(self, images, start: int, stop: int) -> None:
        self.images, self.start, self.stop = images, start, stop

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.stop - self.start, *self.images.shape[1:])

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: slice) -> torch.Tensor:
        first, last, _ = index.indices(len(self))
        return self.images[self.start + first : self.start + max(first, last)]
