"""The membership check: which studies are scored, what the outcome and evidence say, and when it runs."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.errors import PolicyError
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.policy import load_policy
from memaudit.policy.checks import MembershipCheck
from memaudit.scan.battery import image_checks
from memaudit.scan.context import ScanContext
from memaudit.scan.judge import judge
from memaudit.scan.membership_check import patient_scores, patients_needed, run_membership
from memaudit.scan.progress import SilentProgress
from memaudit.tiny.memorizer import build_memorizer

POLICY = """
name: membership-test
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 1.0, batch_size: 4}}
calibration: {{small_holdout: warn{calibration}}}
checks:
  membership: {membership}
  nearest_neighbour: {{extractor: pixels}}
rules:
  membership-tpr: {{metric: membership.tpr_at_1pct_fpr, at_most: 0.05}}
{rules}"""
PATIENT_RULE = "  patient-auc: {metric: membership.patient_auc, at_most: 0.6}\n"


@pytest.fixture(scope="module")
def memorizer(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("membership")
    checkpoint, train, holdout, planted = build_memorizer(tiny_pipeline, root, planted=3, generic=6, holdout=8)
    return root, checkpoint, train, holdout, planted


def _context(memorizer, membership: str = "{enabled: true}", *, calibration: str = "", rules: str = ""):
    root, checkpoint, train, holdout, _ = memorizer
    path = root / f"policy-{abs(hash((membership, calibration, rules)))}.yaml"
    path.write_text(POLICY.format(membership=membership, calibration=calibration, rules=rules))
    return ScanContext(
        policy=load_policy(path).policy,
        train=ImageCaptionDataset(train),
        holdout=ImageCaptionDataset(holdout),
        progress=SilentProgress(),
        pipeline=checkpoint.pipeline,
        image_side=16,
    )


def test_every_distinct_training_and_holdout_study_is_scored_by_id(memorizer):
    context = _context(memorizer)
    outcome = run_membership(context)
    evidence = outcome.membership
    # The memorizer's training set lists "no acute cardiopulmonary process" three times, with three images.
    assert [item.id for item in evidence.train] == context.train.ids
    assert [item.id for item in evidence.holdout] == context.holdout.ids
    assert (evidence.attack, evidence.timestep) == ("loss", 200)  # the default attack
    train = [item.score for item in evidence.train]
    holdout = [item.score for item in evidence.holdout]
    assert outcome.metrics == {
        "membership.identified_count": float(len(evidence.identified_ids)),
        "membership.auc": roc_auc(train, holdout),
        "membership.tpr_at_1pct_fpr": tpr_at_fpr(train, holdout, 0.01),
        "membership.tpr_at_01pct_fpr": tpr_at_fpr(train, holdout, 0.001),
    }
    assert outcome.sample_sizes["membership.tpr_at_1pct_fpr"] == len(train)
    assert "separates 9 training from 8 holdout studies" in outcome.message
    assert all(0.0 <= item.p_value <= 1.0 for item in evidence.train) and evidence.family_false_alarm == 0.01


def test_identified_studies_are_exactly_those_the_step_up_selects(memorizer):
    """Benjamini-Hochberg keeps every study at or below its largest selected p-value, and only training ids."""
    outcome = run_membership(_context(memorizer))
    evidence = outcome.membership
    by_id = {item.id: item.p_value for item in evidence.train}
    cut = max((by_id[i] for i in evidence.identified_ids), default=None)
    assert set(evidence.identified_ids) <= set(by_id)
    if cut is not None:
        assert {i for i, p in by_id.items() if p <= cut} == set(evidence.identified_ids)


def test_a_sample_is_seeded_and_in_row_order(memorizer):
    first = run_membership(_context(memorizer, "{enabled: true, max_train: 4, max_holdout: 3}")).membership
    again = run_membership(_context(memorizer, "{enabled: true, max_train: 4, max_holdout: 3}")).membership
    assert first == again and len(first.train) == 4 and len(first.holdout) == 3
    ids = ImageCaptionDataset(memorizer[2]).ids
    assert [item.id for item in first.train] == sorted((item.id for item in first.train), key=ids.index)


def test_membership_is_off_unless_a_policy_asks_and_not_applicable_to_a_folder_of_images(memorizer):
    assert MembershipCheck().enabled is False
    with pytest.raises(PolicyError, match="judges membership.tpr_at_1pct_fpr, but checks.membership is disabled"):
        _context(memorizer, "{}")
    context = _context(memorizer)
    outcomes = image_checks(context, context.holdout)  # any folder of images stands for a release
    assert outcomes["membership"].status == "not_applicable"


def _records(*patients):
    return SimpleNamespace(records=[SimpleNamespace(patient_id=patient) for patient in patients])


def test_a_patient_scores_as_one_of_their_studies_drawn_by_a_seed_of_their_own():
    dataset = _records("p2", "p1", "p2", "p3")
    scores = patient_scores(dataset, [0, 1, 2], torch.tensor([-3.0, -1.0, -0.5]), seed=0)
    assert list(scores) == ["p1", "p2"] and scores["p1"] == -1.0  # row 3 was not scored
    assert scores["p2"] in (-3.0, -0.5)
    assert scores == patient_scores(dataset, [0, 1, 2], torch.tensor([-3.0, -1.0, -0.5]), seed=0)
    # A patient's draw does not depend on who else is scored.
    assert patient_scores(dataset, [0, 2], torch.tensor([-3.0, -0.5]), seed=0) == {"p2": scores["p2"]}
    assert patient_scores(_records("p1", None), [0, 1], torch.tensor([-1.0, -2.0]), seed=0) is None
    assert patient_scores(_records("p1"), [], torch.tensor([]), seed=0) is None


def test_patients_with_many_studies_do_not_win_by_count():
    """No membership signal at all: every study's score comes from one distribution. 400 training patients
    have one study each, 400 holdout patients 25 each. Scored by their maximum, the holdout patients
    would outrank the training ones (patient AUC near 0: an extreme-value effect, not membership); one
    drawn study each gives the chance answer, 0.5. Each patient's draw is uniform over their studies."""
    generator = torch.Generator().manual_seed(7)
    train_scores, holdout_scores = torch.randn(400, generator=generator), torch.randn(400 * 25, generator=generator)
    train = _records(*(f"t{k}" for k in range(400)))
    holdout = _records(*(f"h{k // 25}" for k in range(400 * 25)))
    members = patient_scores(train, list(range(400)), train_scores, seed=0)
    unseen = patient_scores(holdout, list(range(400 * 25)), holdout_scores, seed=0)
    assert len(members) == len(unseen) == 400
    assert roc_auc(list(members.values()), list(unseen.values())) == pytest.approx(0.5, abs=0.05)
    by_max = holdout_scores.view(400, 25).max(dim=1).values.tolist()
    assert roc_auc(list(members.values()), by_max) < 0.05  # what the maximum gave
    studies = holdout_scores.view(400, 25)
    ranks = [int((studies[k] < unseen[f"h{k}"]).sum()) for k in range(400)]  # the drawn study's rank, 0..24
    assert sum(ranks) / 400 == pytest.approx(12.0, abs=1.5)  # uniform over the ranks (the maximum's: 24)


def _with_patients(folder, out, *, per_patient: int):
    """A copy of an image folder's manifest where every ``per_patient`` consecutive studies share a patient."""
    out.mkdir()
    for entry in folder.iterdir():
        if entry.name != "metadata.jsonl":
            (out / entry.name).symlink_to(entry)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    lines = [json.dumps({**row, "patient_id": f"{out.name}-{k // per_patient}"}) for k, row in enumerate(rows)]
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return out


def _patient_context(memorizer, tmp_path, *, train_per_patient: int, holdout_per_patient: int, **policy):
    train, holdout = memorizer[2], memorizer[3]
    return dataclasses.replace(
        _context(memorizer, **policy),
        train=ImageCaptionDataset(_with_patients(train, tmp_path / "train", per_patient=train_per_patient)),
        holdout=ImageCaptionDataset(_with_patients(holdout, tmp_path / "holdout", per_patient=holdout_per_patient)),
    )


def test_patient_level_metrics_when_studies_name_their_patients(memorizer, tmp_path):
    # Confidence 0.02 asks for 3 patients a side (minimum_holdout(0.01, 0.02)); there are 3 and 4.
    context = _patient_context(
        memorizer, tmp_path, train_per_patient=3, holdout_per_patient=2, calibration=", confidence: 0.02"
    )
    assert patients_needed(0.02) == 3
    outcome = run_membership(context)
    seed = context.policy.sampling.seed
    train_scores = torch.tensor([i.score for i in outcome.membership.train])
    train_patients = patient_scores(context.train, list(range(9)), train_scores, seed=seed)
    holdout_scores = torch.tensor([i.score for i in outcome.membership.holdout])
    holdout_patients = patient_scores(context.holdout, list(range(8)), holdout_scores, seed=seed)
    assert len(train_patients) == 3 and len(holdout_patients) == 4
    assert outcome.metrics["membership.patient_auc"] == roc_auc(
        list(train_patients.values()), list(holdout_patients.values())
    )
    assert "membership.patient_tpr_at_1pct_fpr" in outcome.metrics
    assert outcome.sample_sizes["membership.patient_tpr_at_1pct_fpr"] == 3 and outcome.warnings == []
    assert "membership.patient_auc" not in run_membership(_context(memorizer)).metrics  # no patient ids


@pytest.mark.parametrize(("required", "status"), [("true", "error"), ("false", "warn")])
def test_a_holdout_of_one_patient_leaves_the_patient_rule_unmeasured_never_a_silent_pass(
    memorizer, tmp_path, required, status
):
    """All 8 holdout studies are one patient's: a patient AUC would be 0 or 1 on one patient. With
    small_holdout: warn (preflight lets it through), the patient metrics are not measured, the outcome
    warns, and the rule on them is an error (required check) or a warning, not a pass."""
    context = _patient_context(
        memorizer, tmp_path, train_per_patient=1, holdout_per_patient=8,
        membership=f"{{enabled: true, required: {required}}}", rules=PATIENT_RULE,
    )  # fmt: skip
    outcome = run_membership(context)
    assert "membership.patient_auc" not in outcome.metrics and "membership.auc" in outcome.metrics
    reason = "patient metrics not measured: 9 training and 1 holdout patients scored; each side needs at least 299"
    assert reason in outcome.message and len(outcome.warnings) == 1 and reason in outcome.warnings[0]
    verdict, rules, summary = judge(context.policy, {"membership": outcome})
    patient_rule = next(rule for rule in rules if rule.id == "patient-auc")
    assert patient_rule.status == status and patient_rule.value is None
    assert patient_rule.message.startswith("not measured: ") and reason in patient_rule.message
    assert verdict == ("error" if required == "true" else "pass") and reason in summary


def test_a_patient_rule_without_patient_ids_says_why_it_is_not_measured(memorizer):
    outcome = run_membership(_context(memorizer, rules=PATIENT_RULE))
    assert "patient metrics not measured: not every scored training study names its patient" in outcome.message
    assert outcome.warnings == []


def test_studies_scored_in_chunks_get_the_scores_they_get_at_once(memorizer, monkeypatch):
    import memaudit.scan.chunks as chunks

    whole = run_membership(_context(memorizer)).membership
    monkeypatch.setattr(chunks, "PROMPT_CHUNK", 4)
    chunked = run_membership(_context(memorizer)).membership
    assert [item.score for item in chunked.train] == pytest.approx([item.score for item in whole.train], rel=1e-6)
    assert [item.score for item in chunked.holdout] == pytest.approx([item.score for item in whole.holdout], rel=1e-6)


def _ranks(memorizer, membership: str):
    planted = memorizer[4]
    outcome = run_membership(_context(memorizer, membership))
    scores = {item.id: item.score for item in outcome.membership.train}
    memorized = [scores[i] for i in scores if i in planted]
    others = [s for i, s in scores.items() if i not in planted] + [item.score for item in outcome.membership.holdout]
    return outcome, memorized, others


def test_secmi_ranks_the_memorized_studies_first(memorizer):
    """The memorizer retraces its planted studies exactly: SecMI's t-error is smallest on them."""
    outcome, memorized, others = _ranks(memorizer, "{enabled: true, attack: secmi, timestep: 100, interval: 20}")
    assert outcome.membership.attack == "secmi" and outcome.message.startswith("SecMI (uncalibrated)")
    assert memorized and min(memorized) > max(others)


def test_the_loss_attack_ranks_this_memorizers_studies_last(memorizer):
    """A known failure, kept as a known answer: the closed-form memorizer's denoiser is exact only at the
    planted latent itself, and a scan reads a study through the VAE, whose round trip moves the latent off
    it; the denoiser then pulls towards the planted latent and its noise error is amplified, so the
    denoising loss is *larger* on the memorized studies at every timestep (PIA and SecMI compare the model
    with itself and are not fooled). One reason the loss attack is not the default."""
    for timestep in (100, 500):
        membership = f"{{enabled: true, attack: loss, timestep: {timestep}, draws: 2}}"
        outcome, memorized, others = _ranks(memorizer, membership)
        assert outcome.membership.attack == "loss" and outcome.message.startswith("The loss attack (uncalibrated)")
        assert memorized and max(memorized) < min(others), timestep


def test_secmi_needs_a_timestep_on_its_inversion_grid(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(membership="{enabled: true, attack: secmi, timestep: 105}", calibration="", rules=""))
    with pytest.raises(PolicyError, match=r"timestep \(105\) must be a multiple of interval \(10\)"):
        load_policy(path)
