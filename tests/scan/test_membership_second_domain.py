"""Membership on a trained memorizer outside the phantoms (DESIGN 3.8): colour textures, not radiographs.

A base and its full fine-tune in which 8 studies are repeated 25 times (memaudit/tiny/textures.py),
scanned with the membership check as the scan runs it, with the policy's default attack: the planted
studies' AUC against fresh holdout studies is read from result.json, calibrated against the base and
not. What must hold in any domain: calibrated, the planted studies stand out (AUC >= 0.9, the issue's
bar) and the family test names only training studies; the base, which trained on none of them, names
none. The uncalibrated AUC and the base's are printed beside it. The other attacks on this pair:
`bench/membership.py --textures DIR --attacks pia,loss,secmi` (PIA and SecMI rank these planted
studies below the holdout, which is why neither is the default).
"""

from __future__ import annotations

import json

import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.metrics.roc import roc_auc
from memaudit.policy.checks import MembershipCheck
from memaudit.tiny.textures import train_pair

POLICY = """
name: second-domain
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 1.0, batch_size: 16}}
calibration: {{small_holdout: warn}}
checks:
  noise_magnitude: {{enabled: false}}
  extraction: {{enabled: false}}
  nearest_neighbour: {{enabled: false}}
  fid: {{enabled: false}}
  membership: {{enabled: true, reference: {reference}}}  # the default attack and its settings
rules:
  no-identified: {{metric: membership.identified_count, at_most: 0, severity: warn}}
"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return train_pair(tmp_path_factory.mktemp("second-domain"))


def _membership(pair, tmp_path, *, model, attack: str, reference: str) -> dict:
    policy = tmp_path / f"{attack}-{reference}.yaml"
    policy.write_text(POLICY.format(reference=reference))
    out = tmp_path / f"scan-{attack}-{reference}"
    argv = ["scan", str(model), "--train", str(pair.train), "--holdout", str(pair.holdout), "--policy", str(policy)]
    argv += ["--out", str(out)] + (["--base", str(pair.base)] if reference == "base" else [])
    assert run(argv) in (ExitCode.OK, ExitCode.FINDING)
    return json.loads((out / "result.json").read_text())["checks"]["membership"]["membership"]


def _planted_auc(evidence: dict, planted: tuple[str, ...]) -> float:
    members = [item["score"] for item in evidence["train"] if item["id"] in planted]
    assert len(members) == len(planted)  # every planted study scored once, by its first id
    return roc_auc(members, [item["score"] for item in evidence["holdout"]])


@pytest.mark.slow
def test_the_planted_studies_of_a_texture_memorizer_stand_out_once_calibrated_against_the_base(pair, tmp_path):
    attack = MembershipCheck().attack  # the shipped default, chosen on the bench
    calibrated = _membership(pair, tmp_path, model=pair.model, attack=attack, reference="base")
    raw = _membership(pair, tmp_path, model=pair.model, attack=attack, reference="none")
    base = _membership(pair, tmp_path, model=pair.base, attack=attack, reference="none")
    aucs = {name: _planted_auc(evidence, pair.planted) for name, evidence in
            (("calibrated", calibrated), ("uncalibrated", raw), ("base", base))}  # fmt: skip
    print(f"{attack}: planted vs holdout AUC " + ", ".join(f"{name} {auc:.3f}" for name, auc in aucs.items()))
    assert calibrated["attack"] == attack and (calibrated["reference"], raw["reference"]) == ("base", "none")
    assert aucs["calibrated"] >= 0.9
    trained = {item["id"] for item in calibrated["train"]}
    assert set(calibrated["identified_ids"]) <= trained
    assert base["identified_ids"] == []
