"""`memaudit inspect` and `memaudit scan` on a saved tiny model of every family: the battery (triage,
extraction, nearest neighbour, membership, FID) runs through the one denoiser interface."""

from __future__ import annotations

import json

import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.tiny.families import save_tiny_family
from memaudit.tiny.memorizer import build_memorizer

POLICY = """
name: families
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 4, guidance_scale: 2.0, batch_size: 8, resolution: 64}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {steps: 1, generations: 2, calibration_quantile: 0.99}
  extraction: {generations: 4, prompts: triage, random_prompts: 1, verify_quantile: 0.01}
  nearest_neighbour: {extractor: pixels, generations_per_prompt: 1, near_copy_quantile: 0.05}
  membership: {enabled: true, reference: none}
  fid: {required: true}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0, severity: fail}
  near-copy-rate: {metric: nearest_neighbour.near_copy_rate, at_most: 1.0, severity: warn}
  fid: {metric: fid.fid, at_most: 1000000, severity: warn}
"""
FAMILIES = {
    "sdxl": "sdxl",
    "sd3": "sd3",
    "pixart-sigma": "pixart",
    "sana": "sana",
    "flux": "flux",
    "lumina2": "lumina2",
    "radedit": "sd",
}


@pytest.fixture(scope="module")
def data(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("family-data")
    (root / "policy.yaml").write_text(POLICY)
    _, train, holdout, _ = build_memorizer(tiny_pipeline, root)
    return root, train, holdout


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_is_inspected_and_scanned(name, data, tmp_path, capsys):
    root, train, holdout = data
    folder = save_tiny_family(name, tmp_path / name, seed=0)
    assert run(["inspect", str(folder)]) == ExitCode.OK
    assert f"family {FAMILIES[name]}" in capsys.readouterr().out
    out = tmp_path / "out"
    code = run(
        [
            *("scan", str(folder), "--train", str(train), "--holdout", str(holdout)),
            *("--policy", str(root / "policy.yaml"), "--out", str(out)),
        ]
    )
    printed = capsys.readouterr()
    assert code in (ExitCode.OK, ExitCode.FINDING), printed.err
    result = json.loads((out / "result.json").read_text())
    assert result["model"]["family"] == FAMILIES[name]
    checks = result["checks"]
    assert {"noise_magnitude", "extraction", "nearest_neighbour", "membership", "fid"} <= set(checks)
    assert all(checks[name]["status"] != "error" for name in checks), {n: c.get("message") for n, c in checks.items()}
    assert len(checks["noise_magnitude"]["noise_magnitude"]["train"]) > 0


@pytest.mark.parametrize("command", ["finetune", "remediate"])
def test_fine_tuning_a_family_it_only_scans_is_refused_naming_the_family(command, data, tmp_path, capsys):
    root, train, holdout = data
    folder = save_tiny_family("sd3", tmp_path / "sd3", seed=0)
    arguments = {
        "finetune": [
            *("finetune", str(folder), "--train", str(train)),
            *("--method", "lora", "--mask", "all", "--out", str(tmp_path / "ft")),
        ],
        "remediate": [
            "remediate",
            str(folder),
            "--base",
            str(folder),
            "--train",
            str(train),
            "--holdout",
            str(holdout),
            "--policy",
            str(root / "policy.yaml"),
            "--out",
            str(tmp_path / "rm"),
        ],
    }[command]
    code = run(arguments)
    err = capsys.readouterr().err
    assert code == ExitCode.ERROR, err
    assert "Stable Diffusion 3.x" in err and "scans but does not yet fine-tune" in err
