"""Membership calibrated against the base (DESIGN 3.8): what is hard for any model must not hide a member.

Known answer on a designed confound, the failure an unseen memorizer showed: the studies the model
trained on are the hardest images (a large attack distance under any model), and the model halves their
distance. Uncalibrated, members score BELOW unseen studies (AUC near 0); divided by the base's distance,
they score above all of them (AUC 1) and are singled out by the family test.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import memaudit.scan.membership_check as membership_check
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.identification import identification_power
from memaudit.metrics.membership import reference_ratios
from memaudit.metrics.tail import fit_lower_tail
from memaudit.policy import load_policy
from memaudit.scan.context import ScanContext
from memaudit.scan.judge import judge
from memaudit.scan.progress import SilentProgress
from tests.images import write_dataset

POLICY = """
name: reference-test
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 1.0, batch_size: 4}}
calibration: {{small_holdout: warn}}
checks:
  membership: {{enabled: true, reference: {reference}}}
  nearest_neighbour: {{extractor: pixels}}
rules:
  no-identified: {{metric: membership.identified_count, at_most: 0}}
  auc: {{metric: membership.auc, at_most: 0.6}}
"""
MODEL, BASE = object(), object()


@pytest.fixture(scope="module")
def confounded(tmp_path_factory):
    """40 training and 300 holdout studies; each study's difficulty (its base distance) is drawn, and the
    training studies are the hardest: difficulty 7-8 (3.5-4 once learned) against the holdout's 1-3."""
    root = tmp_path_factory.mktemp("confound")
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (340, 8, 8), dtype=np.uint8))
    train = write_dataset(root / "train", images[:40], [f"train study {k}" for k in range(40)], prefix="t")
    holdout = write_dataset(root / "holdout", images[40:], [f"holdout study {k}" for k in range(300)], prefix="h")
    difficulty = {f"t-{k}": 7.0 + rng.random() for k in range(40)}
    difficulty |= {f"h-{k}": 1.0 + 2 * rng.random() for k in range(300)}
    return root, train, holdout, difficulty


def _context(confounded, monkeypatch, *, reference: str, base_given: bool) -> ScanContext:
    root, train, holdout, difficulty = confounded

    def scores(context, dataset, *, rows, label, pipeline=None):
        ids = [dataset.records[row].id for row in rows]
        learned = 0.5 if pipeline is None and dataset is context.train else 1.0  # the model halves members'
        return torch.tensor([-difficulty[item] * learned for item in ids], dtype=torch.float64)

    monkeypatch.setattr(membership_check, "_scores", scores)
    path = root / f"policy-{reference}.yaml"
    path.write_text(POLICY.format(reference=reference))
    base = SimpleNamespace(pipeline=BASE, source=root / "base", digest="b" * 64) if base_given else None
    return ScanContext(
        policy=load_policy(path).policy,
        train=ImageCaptionDataset(train),
        holdout=ImageCaptionDataset(holdout),
        progress=SilentProgress(),
        pipeline=MODEL,
        image_side=8,
        reference=base,
    )


def test_calibrated_against_the_base_members_are_found_where_the_raw_score_ranks_them_last(
    confounded, monkeypatch
):
    raw = membership_check.run_membership(_context(confounded, monkeypatch, reference="none", base_given=True))
    assert raw.metrics["membership.auc"] < 0.05 and raw.metrics["membership.identified_count"] == 0
    assert raw.membership.reference == "none" and raw.caveat is None

    context = _context(confounded, monkeypatch, reference="base", base_given=True)
    calibrated = membership_check.run_membership(context)
    assert calibrated.metrics["membership.auc"] == 1.0
    assert calibrated.metrics["membership.identified_count"] == 40  # every ratio 0.5 below every unseen 1.0
    assert calibrated.membership.reference == "base" and calibrated.membership.reference_digest == "b" * 64
    assert "calibrated against the base" in calibrated.message
    assert calibrated.membership.train[0].score == pytest.approx(-0.5)  # minus the distance ratio


def test_a_policy_that_asks_for_the_base_without_one_runs_uncalibrated_and_never_passes(confounded, monkeypatch):
    context = _context(confounded, monkeypatch, reference="base", base_given=False)
    outcome = membership_check.run_membership(context)
    assert outcome.membership.reference == "none" and "no --base given" in outcome.caveat
    assert outcome.caveat in outcome.warnings
    verdict, rules, summary = judge(context.policy, {"membership": outcome})
    assert verdict == "pass" and [rule.status for rule in rules] == ["warn", "warn"]
    assert all("only a warning: the membership scores are not calibrated" in rule.message for rule in rules)
    assert "no --base given" in summary


def test_a_count_rule_that_cannot_fail_at_these_sizes_is_not_applicable_naming_the_sizes(
    confounded, monkeypatch
):
    """Two holdout studies: no tail can be fitted and the floor 1/3 is far above what BH needs."""
    root = confounded[0]
    small = write_dataset(root / "small", [np.zeros((8, 8), np.uint8)] * 2, ["a", "b"], prefix="h")
    context = _context(confounded, monkeypatch, reference="base", base_given=True)
    context = dataclasses.replace(context, holdout=ImageCaptionDataset(small))
    outcome = membership_check.run_membership(context)
    assert "membership.identified_count" not in outcome.metrics
    reason = outcome.not_applicable["membership.identified_count"]
    assert "nothing can be singled out" in reason and "needs a holdout of 3,999" in reason
    _, rules, _ = judge(context.policy, {"membership": outcome})
    assert rules[0].status == "error" and rules[0].message.startswith("cannot fail at these sizes")


def test_identification_power_known_answers():
    """The issue's sizes: n = 300, m = 1,497, alpha = 1%: at the floor BH needs about 500 at once."""
    unseen = fit_lower_tail(torch.ones(300), confidence=0.95)  # equal values: no tail shape, no fit
    power = identification_power(unseen, candidates=1497, alpha=0.01)
    assert (power.conformal_floor, power.extrapolates, power.fewest_at_floor) == (1 / 301, False, 498)
    assert power.can_identify and "only 498 or more at a time" in power.statement()
    tiny = identification_power(fit_lower_tail(torch.ones(2), confidence=0.95), candidates=10, alpha=0.01)
    assert not tiny.can_identify and tiny.holdout_for_one == 999
    fitted = fit_lower_tail(torch.linspace(0.5, 2.0, 300), confidence=0.95)
    assert identification_power(fitted, candidates=1497, alpha=0.01).can_identify and fitted.k > 0
    with pytest.raises(ValueError, match="`alpha` must be in"):
        identification_power(fitted, candidates=3, alpha=1.0)


def test_reference_ratios_known_answers():
    ratios = reference_ratios(torch.tensor([1.0, 2.0, 0.0]), torch.tensor([2.0, 2.0, 0.0]))
    assert ratios.dtype == torch.float64 and ratios.tolist() == [0.5, 1.0, 0.0]
    with pytest.raises(ValueError, match="must be \\[N\\]"):
        reference_ratios(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        reference_ratios(torch.tensor([-1.0]), torch.ones(1))


CLI_POLICY = """
name: reference-cli
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 1.0, batch_size: 8}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {enabled: false}
  extraction: {enabled: false}
  nearest_neighbour: {enabled: false}
  fid: {enabled: false}
  membership: {enabled: true, reference: base}
rules:
  membership-auc: {metric: membership.auc, at_most: 0.9}
"""


@pytest.fixture(scope="module")
def cli_inputs(tiny_pipeline, tmp_path_factory):
    from memaudit.tiny.memorizer import build_memorizer

    root = tmp_path_factory.mktemp("reference-cli")
    _, train, holdout, _ = build_memorizer(tiny_pipeline, root / "data", planted=2, generic=4, holdout=6)
    (root / "policy.yaml").write_text(CLI_POLICY)
    return root, train, holdout


def _scan_argv(cli_inputs, model, out, *extra):
    root, train, holdout = cli_inputs
    return ["scan", str(model), "--train", str(train), "--holdout", str(holdout), "--policy", str(root / "policy.yaml"),
            "--out", str(out), *map(str, extra)]  # fmt: skip


def test_a_plain_scan_with_base_calibrates_against_it(cli_inputs, tiny_folder, tmp_path, capsys):
    """A model calibrated against itself: every study's ratio is 1, so the attack cannot tell (AUC 0.5)."""
    import json

    from memaudit.cli import run

    assert run(_scan_argv(cli_inputs, tiny_folder, tmp_path / "out", "--base", tiny_folder)) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    evidence = result["checks"]["membership"]["membership"]
    assert evidence["reference"] == "base" and evidence["reference_model"] == str(tiny_folder)
    assert {item["score"] for item in evidence["train"] + evidence["holdout"]} == {-1.0}
    assert result["checks"]["membership"]["metrics"]["membership.auc"] == 0.5
    assert result["rules"][0]["status"] == "pass"
    assert run(_scan_argv(cli_inputs, tiny_folder, tmp_path / "plain")) == 0  # no --base: uncalibrated, warned
    warned = json.loads((tmp_path / "plain" / "result.json").read_text())
    assert warned["rules"][0]["status"] == "warn" and "no --base given" in warned["summary"]
    capsys.readouterr()


@pytest.mark.parametrize("base", ["missing", "images"])
def test_a_bad_base_exits_2_naming_it_before_model_work(cli_inputs, tiny_folder, tmp_path, capsys, monkeypatch, base):
    from memaudit.cli import run

    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", lambda *a, **k: pytest.fail("the model was loaded"))
    if base == "missing":
        argv = _scan_argv(cli_inputs, tiny_folder, tmp_path / "out", "--base", tmp_path / "gone")
        expected = f"--base {tmp_path / 'gone'}: no such file or folder"
    else:
        argv = _scan_argv(cli_inputs, tiny_folder, tmp_path / "out", "--base", tiny_folder)
        argv = ["scan", "--images", argv[3], *argv[2:]]
        expected = "--images audits images, not a model"
    assert run(argv) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_plan_counts_the_base_scoring_every_study_again():
    from memaudit.scan.plan import plan_scan
    from memaudit.scan.plan_records import PlanSizes

    policy = load_policy("hospital-release").policy
    sizes = PlanSizes(train_rows=1000, train_items=1000, train_images=1000, train_prompts=900, holdout_rows=300,
                      holdout_items=300, holdout_prompts=300, comparison_side=128)  # fmt: skip
    plans = {reference: plan_scan(policy, sizes, costs=None, with_reference=reference) for reference in (False, True)}
    plain, calibrated = ({s.stage: s for s in plans[r].stages}["membership"] for r in (False, True))
    draws = policy.checks.membership.draws  # the loss attack: one evaluation per seeded noise and study
    assert policy.checks.membership.attack == "loss" and draws == 4
    assert plain.unet_evaluations == draws * 1300 and plain.vae_encodes == 1300
    assert calibrated.unet_evaluations == 2 * draws * 1300 and "by its base" in calibrated.note


def test_a_base_the_policy_does_not_calibrate_against_is_said_and_not_loaded(tmp_path, monkeypatch):
    from memaudit.scan.reference import load_reference

    monkeypatch.setattr("memaudit.scan.reference.check_base", lambda *a, **k: pytest.fail("the base was loaded"))
    notes = []
    progress = SimpleNamespace(note=notes.append)
    path = tmp_path / "policy.yaml"
    path.write_text(CLI_POLICY.replace("membership: {enabled: true, reference: base}", "membership: {enabled: true}"))
    request = SimpleNamespace(base=tmp_path / "base", adapters=(), model=tmp_path / "model")
    assert load_reference(request, object(), policy=load_policy(path).policy, progress=progress) is None
    assert notes == [
        f"note: --base {tmp_path / 'base'} is not this scan's membership reference: the policy's membership check "
        "does not calibrate against a base"
    ]
