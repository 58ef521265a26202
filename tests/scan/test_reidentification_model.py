"""The re-identification count test never runs on a model's images (no valid null for them, bench/reid_model.py):
the check says so, and the per-image test runs alone."""

from __future__ import annotations

import json

import pytest

from memaudit.cli import run
from memaudit.data import ImageCaptionDataset
from memaudit.errors import ExitCode
from memaudit.phantoms.identity import write_identity_cohort
from memaudit.reid.training import ReidTraining, train_verifier
from memaudit.scan.reidentification_check import NO_COUNT_NULL

POLICY = """
name: reid-model-test
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 1.0, batch_size: 8}}
calibration: {{small_holdout: warn}}
checks:
  noise_magnitude: {{enabled: false}}
  extraction: {{enabled: false}}
  nearest_neighbour: {{enabled: false, generations_per_prompt: 2, max_prompts: 12}}
  fid: {{enabled: false}}
  alignment: {{enabled: false}}
  reidentification: {{enabled: true, weights: {weights}, family_false_alarm: 0.05, count_test: true}}
rules:
  no-reidentified-patients: {{metric: reidentification.reidentified_patients, at_most: 0}}
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reid-model")
    common = {"seed": 0, "size": 16, "indication_share": 0.5}
    train = write_identity_cohort(root / "train", patients=20, studies=2, **common)
    holdout = write_identity_cohort(root / "holdout", patients=20, studies=2, first_patient=500, **common)
    settings = ReidTraining(input_side=16, embedding_dim=8, width=4, steps=60, batch_size=16, evaluate_every=30)
    train_verifier(ImageCaptionDataset(train), ImageCaptionDataset(holdout), settings, out=root / "verifier")
    (root / "policy.yaml").write_text(POLICY.format(weights=root / "verifier"))
    return root, train, holdout


def _scan(inputs, model, out, capsys, *extra) -> tuple[int, dict]:
    root, train, holdout = inputs
    argv = ["scan", str(model), "--train", str(train), "--holdout", str(holdout), "--policy", str(root / "policy.yaml")]
    code = run([*argv, "--out", str(out), *map(str, extra)])
    capsys.readouterr()
    return code, json.loads((out / "result.json").read_text())["checks"]["reidentification"]


def test_the_count_test_does_not_run_on_a_models_images(inputs, tiny_folder, tmp_path, capsys):
    """Even with the policy's count test on, and with a base: a model's images have no valid null for it."""
    code, check = _scan(inputs, tiny_folder, tmp_path / "out", capsys, "--base", tiny_folder)
    evidence = check["reidentification"]
    assert code in (ExitCode.OK, ExitCode.FINDING) and check["warnings"] == [NO_COUNT_NULL]
    assert evidence["count_tested"] is None and evidence["images_scored"] == 24
    assert all(patient["count_p_value"] is None for patient in evidence["patients"])
    assert "it runs on an --images audit of real studies" in (tmp_path / "out" / "report.html").read_text()
