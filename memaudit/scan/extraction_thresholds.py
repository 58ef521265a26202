"""What an extraction candidate must meet to count as a copy: close (the verify threshold), specific (the
distance ratio) and significant among all candidates (the family test), all calibrated on the holdout."""

from __future__ import annotations

from dataclasses import dataclass

from memaudit.metrics.extraction import distance_ratio, nearest_tiled_l2, two_nearest_tiled_l2
from memaudit.metrics.tail import LowerTail, benjamini_hochberg, fit_lower_tail
from memaudit.results.scan_result import AttackedPrompt, TailRecord
from memaudit.scan.calibration import Calibrated, calibrated_threshold
from memaudit.scan.context import ScanContext


@dataclass(frozen=True)
class Thresholds:
    """What a candidate must meet to count as extracted, all calibrated on the holdout images."""

    verify: Calibrated  # closer to its nearest training image than unseen images come
    ratio: Calibrated | None  # and specific to it: nearest/second-nearest distance ratio below this
    tail: LowerTail | None  # and significant among all candidates (None: the family test is off)
    family_false_alarm: float | None

    @property
    def warnings(self) -> list[str]:
        return self.verify.warnings + (self.ratio.warnings if self.ratio else [])

    def candidate(self, distance: float, ratio: float | None) -> bool:
        """Meets the per-candidate thresholds (the family test comes on top, over all candidates)."""
        specific = self.ratio is None or (ratio is not None and ratio < self.ratio.threshold)
        return distance < self.verify.threshold and specific

    def judge(self, attacked: list[AttackedPrompt]) -> list[AttackedPrompt]:
        """Each attacked prompt (or released image) with its p-value, extracted only if it meets the
        per-candidate thresholds and the Benjamini-Hochberg step-up over all of them selects it."""
        if self.tail is None:
            return attacked
        p_values = [self.tail.p_value(a.distance) if a.distance is not None else 1.0 for a in attacked]
        selected = benjamini_hochberg(p_values, self.family_false_alarm) if attacked else []
        return [
            a.model_copy(update={"p_value": p if a.distance is not None else None, "extracted": a.extracted and chosen})
            for a, p, chosen in zip(attacked, p_values, selected, strict=True)
        ]

    def tail_record(self) -> TailRecord | None:
        tail = self.tail
        if tail is None or tail.k == 0:
            return None
        return TailRecord(
            n=tail.n,
            k=tail.k,
            anchor=tail.anchor,
            anchor_bound=tail.anchor_bound,
            dimension=tail.dimension,
            dimension_low=tail.dimension_low,
        )


def extraction_thresholds(context: ScanContext) -> Thresholds:
    settings = context.policy.checks.extraction
    references = context.distinct_train_pixels
    specificity = settings.specificity_quantile is not None and references.shape[0] >= 2
    if not specificity:
        distances, _ = nearest_tiled_l2(
            context.holdout_pixels, references, tiles=settings.tiles, device=context.compare_device
        )
    else:
        distances, _, second = two_nearest_tiled_l2(
            context.holdout_pixels, references, tiles=settings.tiles, device=context.compare_device
        )
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
    family = settings.family_false_alarm
    tail = fit_lower_tail(distances, confidence=context.policy.calibration.confidence) if family else None
    return Thresholds(verify=verify, ratio=ratio, tail=tail, family_false_alarm=family)
