"""The re-identification check, end to end through `memaudit scan --images`, on patients whose identity is
unmistakable (tests/reid/strong_identities.py): a release of new studies of training patients names
them, by id only; new studies of unseen patients name nobody; bad inputs are named before image work."""

from __future__ import annotations

import json
import shutil

import pytest

from memaudit.cli import run
from memaudit.data import ImageCaptionDataset
from memaudit.errors import ExitCode
from memaudit.reid.training import ReidTraining, train_verifier
from tests.reid.strong_identities import SIDE, write_patients

POLICY = """
name: reid-test
calibration: {{small_holdout: warn}}
checks:
  noise_magnitude: {{enabled: false}}
  extraction: {{enabled: false}}
  nearest_neighbour: {{enabled: false}}
  fid: {{enabled: false}}
  alignment: {{enabled: false}}
  reidentification: {{enabled: true, weights: {weights}, family_false_alarm: 0.05, count_test: {count_test}}}
rules:
  no-reidentified-patients: {{metric: reidentification.reidentified_patients, at_most: 0}}
"""
KNOWN = range(12)  # training patients whose new studies are released


@pytest.fixture(scope="module")
def identities(tmp_path_factory):
    root = tmp_path_factory.mktemp("reid")
    train = write_patients(root / "train", range(40), range(3))
    holdout = write_patients(root / "holdout", range(500, 540), range(3))
    settings = ReidTraining(input_side=SIDE, embedding_dim=16, width=8, steps=300, batch_size=32, evaluate_every=50)
    train_verifier(ImageCaptionDataset(train), ImageCaptionDataset(holdout), settings, out=root / "verifier")
    # The releases are real new studies, where the count test's null holds (the policy turns it on).
    (root / "policy.yaml").write_text(POLICY.format(weights=root / "verifier", count_test="true"))
    (root / "per-image.yaml").write_text(POLICY.format(weights=root / "verifier", count_test="false"))
    releases = {
        "known": write_patients(root / "known", KNOWN, range(7, 8)),
        "unseen": write_patients(root / "unseen", range(900, 912), range(7, 8)),
    }
    return root, train, holdout, releases


def _audit(capsys, release, out, *, train, holdout, policy):
    images = out.parent / f"{out.name}-images"
    shutil.copytree(release / "images", images)  # a release is a folder of images, no manifest
    argv = ["scan", "--images", str(images), "--train", str(train), "--holdout", str(holdout), "--out", str(out)]
    code = run([*argv, "--policy", str(policy)])
    return code, capsys.readouterr()


def test_new_studies_of_training_patients_are_named_by_id(identities, tmp_path, capsys):
    root, train, holdout, releases = identities
    out = tmp_path / "known"
    code, said = _audit(capsys, releases["known"], out, train=train, holdout=holdout, policy=root / "policy.yaml")
    check = json.loads((out / "result.json").read_text())["checks"]["reidentification"]
    evidence = check["reidentification"]
    named = [patient["patient_id"] for patient in evidence["patients"]]
    assert code == ExitCode.FINDING, said.err
    assert len(named) >= len(KNOWN) // 2 and set(named) <= {f"p{p:04d}" for p in KNOWN}
    assert check["metrics"]["reidentification.reidentified_patients"] == len(named)
    assert (evidence["images_scored"], evidence["holdout_images"], evidence["training_patients"]) == (12, 120, 40)
    assert all(patient["p_value"] <= 0.05 and patient["probability"] > 0.5 for patient in evidence["patients"])
    report = (out / "report.html").read_text()
    assert named[0] in report and f"The count test examined {evidence['count_tested']} patient" in report


def test_new_studies_of_unseen_patients_name_nobody(identities, tmp_path, capsys):
    root, train, holdout, releases = identities
    out = tmp_path / "unseen"
    code, said = _audit(capsys, releases["unseen"], out, train=train, holdout=holdout, policy=root / "policy.yaml")
    assert code == ExitCode.OK, said.err
    check = json.loads((out / "result.json").read_text())["checks"]["reidentification"]
    assert check["reidentification"]["patients"] == []


def test_no_verifier_and_a_holdout_of_training_patients_are_named_before_image_work(identities, tmp_path, capsys):
    root, train, holdout, releases = identities
    unverified = tmp_path / "unverified.yaml"
    unverified.write_text(POLICY.format(weights="null", count_test="false"))
    known_patients = write_patients(tmp_path / "other-studies", KNOWN, range(5, 6))  # no image shared, patients are
    cases = [
        (unverified, holdout, "checks.reidentification.weights names no verifier folder"),
        (root / "policy.yaml", known_patients, "overlap: 12 patient(s) are in both"),
    ]
    for index, (policy, given_holdout, message) in enumerate(cases):
        out = tmp_path / f"out{index}"
        code, said = _audit(capsys, releases["unseen"], out, train=train, holdout=given_holdout, policy=policy)
        assert code == ExitCode.ERROR and message in said.err, said.err
        assert "checking training images" not in said.err and not out.exists()


def test_a_patient_drawn_by_many_images_is_named_by_the_count_test_too(identities, tmp_path, capsys):
    """Ten new studies of one training patient: the patient draws them, unseen patients' images less often."""
    root, train, holdout, _ = identities
    release = write_patients(tmp_path / "many", [0], range(7, 17))
    out = tmp_path / "many-out"
    code, said = _audit(capsys, release, out, train=train, holdout=holdout, policy=root / "policy.yaml")
    assert code == ExitCode.FINDING, said.err
    patients = json.loads((out / "result.json").read_text())["checks"]["reidentification"]["reidentification"]
    named = {patient["patient_id"]: patient for patient in patients["patients"]}
    assert set(named) == {"p0000"}
    assert named["p0000"]["attributed"] >= 8 and named["p0000"]["count_p_value"] <= 0.025
    assert 0 <= named["p0000"]["holdout_attributed"] < 12  # of 120 holdout images: below its share in the release


def test_without_the_count_test_the_per_image_test_has_the_whole_level(identities, tmp_path, capsys):
    """The count test is off unless the policy turns it on (a model's images break its null): nothing is
    counted, the report does not speak of it, and the per-image test alone names."""
    root, train, holdout, releases = identities
    out = tmp_path / "per-image"
    code, said = _audit(capsys, releases["known"], out, train=train, holdout=holdout, policy=root / "per-image.yaml")
    evidence = json.loads((out / "result.json").read_text())["checks"]["reidentification"]["reidentification"]
    assert code == ExitCode.FINDING, said.err
    assert evidence["count_tested"] is None and evidence["patients"]
    assert all(patient["count_p_value"] is None and patient["images"] >= 1 for patient in evidence["patients"])
    assert "count test" not in (out / "report.html").read_text()


def test_the_count_test_names_a_patient_no_single_image_singles_out():
    """Known answer of the combination: no image selected, one patient named by its count alone."""
    import torch

    from memaudit.metrics.patient_counts import PatientCount
    from memaudit.metrics.reidentification import Resemblance
    from memaudit.scan.reidentification_check import _patients

    found = Resemblance(torch.tensor([0.3, 0.2, 0.4, 0.9], dtype=torch.float64), torch.tensor([0, 1, 0, 2]))
    drawn = ["a", "a", "a", "b"]
    count = PatientCount(patient="a", scored=3, holdout=0, p_value=0.001, least_p_value=0.001)
    named = _patients(found, p_values=[0.2, 0.1, 0.3, 0.9], selected=[False] * 4, drawn=drawn, counts=[count])
    assert [(p.patient_id, p.images, p.attributed, p.count_p_value, p.holdout_attributed) for p in named] == [
        ("a", 0, 3, 0.001, 0)
    ]
    assert named[0].probability == pytest.approx(0.8) and named[0].p_value == 0.1
