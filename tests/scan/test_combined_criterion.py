"""Distance and specificity judged together (`checks.extraction.criterion: combined`, DESIGN 3.6).

Known answers on hand-made holdout statistics: the blurred copy a held-out model left (tiled L2 0.068
against a verify threshold of 0.062, distance ratio 0.44 against a ratio threshold of 0.64) is missed
by the two thresholds one by one and counted by their product; a look-alike of many typical studies
(close, but no more specific than unseen images) is counted by neither. Then through `scan --images`:
a leaked training image is found and an unseen one is not, with the criterion recorded.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from pydantic import ValidationError

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.metrics.tail import fit_lower_tail
from memaudit.policy.checks import ExtractionCheck
from memaudit.results.scan_result import AttackedPrompt, CalibrationRecord
from memaudit.scan.calibration import Calibrated
from memaudit.scan.extraction_thresholds import Thresholds


def _calibrated(values: torch.Tensor) -> Calibrated:
    """The smallest of ``values`` as the threshold (a 100-image holdout at its first order statistic)."""
    record = CalibrationRecord(
        tail="lower", n=len(values), k=1, false_alarm=0.01, confidence=0.95, bound=0.03, sufficient=False
    )
    return Calibrated(threshold=float(values.min()), record=record, warnings=[])


@pytest.fixture(scope="module")
def holdout():
    """100 holdout images: nearest distances 0.062-0.15, distance ratios 0.64-0.98 (unseen images are close
    to several training images alike)."""
    generator = torch.Generator().manual_seed(0)
    distances = 0.062 + 0.088 * torch.rand(100, generator=generator, dtype=torch.float64)
    ratios = 0.64 + 0.34 * torch.rand(100, generator=generator, dtype=torch.float64)
    distances[0], ratios[1] = 0.062, 0.64  # the thresholds of the measurement
    return distances, ratios


def _thresholds(holdout, *, combined: bool) -> Thresholds:
    distances, ratios = holdout
    products = distances * ratios
    return Thresholds(
        verify=_calibrated(distances),
        ratio=_calibrated(ratios),
        tail=fit_lower_tail(products if combined else distances, confidence=0.95),
        family_false_alarm=0.03,
        combined=_calibrated(products) if combined else None,
    )


def test_a_blurred_but_specific_copy_counts_only_when_both_are_judged_together(holdout):
    separate, combined = _thresholds(holdout, combined=False), _thresholds(holdout, combined=True)
    assert (separate.verify.threshold, separate.ratio.threshold) == (0.062, 0.64)
    smallest_product = float((holdout[0] * holdout[1]).min())
    assert combined.combined.threshold == smallest_product and smallest_product >= 0.062 * 0.64
    blurred, look_alike, copy = (0.068, 0.44), (0.05, 0.95), (0.0, 0.0)
    assert not separate.candidate(*blurred) and combined.candidate(*blurred)  # 0.068 x 0.44 = 0.030
    assert not separate.candidate(*look_alike) and not combined.candidate(*look_alike)  # 0.0475: unseen-like
    assert separate.candidate(*copy) and combined.candidate(*copy)
    assert combined.statistic(0.068, 0.44) == pytest.approx(0.02992) and separate.statistic(0.068, 0.44) == 0.068
    assert combined.statistic(0.068, None) is None and not combined.candidate(0.068, None)


def test_the_family_test_reads_the_product_and_counts_against_the_combined_threshold(holdout):
    """Seven blurred copies among 30 candidates (the full + threshold row's situation): each alone sits at
    the holdout's resolution (p = 1/101), so the count test finds them; the two thresholds one by one
    count none of them."""
    judges = {name: _thresholds(holdout, combined=name == "combined") for name in ("separate", "combined")}

    def candidates(thresholds):
        shape = [(0.068 + 0.001 * k, 0.44) for k in range(7)] + [(0.05, 0.95)] + [(0.1, 0.9)] * 22
        return [
            AttackedPrompt(
                item_ids=[f"p-{i}"], reason="ranked", clique_size=5, nearest_train_id=f"t-{i}", distance=d,
                distance_ratio=r, extracted=thresholds.candidate(d, r),
            )
            for i, (d, r) in enumerate(shape)
        ]  # fmt: skip

    combined = judges["combined"]
    judged = combined.judge(candidates(combined))
    assert [a.p_value for a in judged] == [combined.tail.p_value(a.distance * a.distance_ratio) for a in judged]
    count = combined.count_test(candidates(combined))
    assert (count.rank, count.holdout, count.candidates, count.below) == (1, 100, 30, 7)  # the product's record
    found = [i for i, a in enumerate(judged) if a.extracted]
    assert found and set(found) <= set(range(7)) and len(found) == count.copies_at_least
    assert not any(a.extracted for a in judges["separate"].judge(candidates(judges["separate"])))


def test_the_combined_criterion_needs_the_ratios():
    with pytest.raises(ValidationError, match="criterion 'combined' multiplies the distance by its ratio"):
        ExtractionCheck(criterion="combined", specificity_quantile=None)
    assert ExtractionCheck().criterion == "separate"


def test_a_release_audit_with_the_combined_criterion_finds_the_leaked_image_and_records_how(
    tiny_pipeline, tmp_path, capsys
):
    from memaudit.tiny.memorizer import build_memorizer
    from tests.scan.test_ground_truth import POLICY

    _, train, holdout, planted_ids = build_memorizer(tiny_pipeline, tmp_path / "data")
    assert "specificity_quantile" not in POLICY  # the default ratio quantile applies
    policy = tmp_path / "combined.yaml"
    policy.write_text(POLICY.replace("extraction: {", "extraction: {criterion: combined, ", 1))
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(train / "000.png", release / "leaked.png")
    for index in range(4):
        shutil.copy(holdout / f"{index:03d}.png", release / f"fresh{index}.png")
    argv = ["scan", "--images", str(release), "--train", str(train), "--holdout", str(holdout), "--policy", str(policy)]
    assert run([*argv, "--out", str(tmp_path / "out")]) == ExitCode.FINDING
    evidence = json.loads((tmp_path / "out" / "result.json").read_text())["checks"]["extraction"]["extraction"]
    assert evidence["criterion"] == "combined" and evidence["combined_calibration"]["n"] > 0
    assert evidence["extracted_train_ids"] == planted_ids[:1]
    html = (tmp_path / "out" / "report.html").read_text()
    assert "judges closeness and specificity together" in html
    assert "smallest holdout product" in html and "smallest holdout distance" not in html  # what the tail reads
    capsys.readouterr()
