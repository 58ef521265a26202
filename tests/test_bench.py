"""The benchmark scripts still run (smoke run at small sizes; their figures are printed, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.slow
def test_scan_benchmark_runs_quick():
    result = subprocess.run(
        [sys.executable, str(BENCH / "scan_bench.py"), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("speed-up") == 3  # noise, neighbours, cache
    assert result.stdout.count("reference's loop") == 8  # 2 x 4 clique-stage points, against both baselines
    assert "extraction stage, N=100, 90% copies (clique  90)" in result.stdout


@pytest.mark.slow
def test_allocator_benchmark_runs_small():
    command = [sys.executable, str(BENCH / "allocator.py"), "--images", "4", "--repeats", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "generate 4 images" in result.stdout and "decode 300 PNGs" in result.stdout
    assert result.stdout.count("x)") == 2  # each line ends with its ratio


def test_peft_counts_script_prints_every_method():
    result = subprocess.run(
        [sys.executable, str(BENCH / "peft_counts.py")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "859,520,964 parameters" in result.stdout
    for method in ("full", "svdiff", "difffit", "attention", "lora"):
        assert f"  {method}" in result.stdout
    assert "memcontrol-sd15 preset (22 of 32 attentions)    66,816" in result.stdout


def _tiny_hospital_pair(tmp_path: Path) -> Path:
    """models/{base,hospital}: a random base and a 2-step hospital fine-tune of it."""
    from memaudit.checkpoint.saving import save_diffusers_folder
    from memaudit.tiny.hospital import HospitalRecipe, train_hospital
    from memaudit.tiny.pipeline import build_tiny_pipeline

    recipe = HospitalRecipe(generic=16, planted=2, repeats=3, holdout=6, image_size=16, steps=2, batch_size=4)
    models = tmp_path / "models"
    save_diffusers_folder(build_tiny_pipeline(seed=0), models / "base")
    (models / "hospital").symlink_to(train_hospital(recipe, models / "base", tmp_path / "train"))
    return models


@pytest.mark.slow
def test_ground_truth_benchmark_runs_on_a_tiny_hospital_pair(tmp_path):
    models = _tiny_hospital_pair(tmp_path)
    out = tmp_path / "results"
    command = [sys.executable, str(BENCH / "ground_truth.py"), "--models", str(models), "--out", str(out)]
    command += ["--variants", "base,full,difffit", "--generations", "4", "--holdout-prompts", "2"]
    policy = tmp_path / "policy.yaml"  # the bench's policy, accepting the tiny pair's 6-study holdout with a warning
    policy.write_text((BENCH / "ground_truth_policy.yaml").read_text() + "calibration: {small_holdout: warn}\n")
    command += ["--policy", str(policy)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr

    table = (out / "table.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == ["base", "full", "difffit"]
    header = [cell.strip() for cell in table[0].split("|")]
    verdict_column, attacker_column = header.index("scan verdict (extracted)"), header.index("planted re-triggered")
    for line, variant in zip(table[2:], ("base", "full", "difffit"), strict=True):  # the scan's own verdict
        cells = [cell.strip() for cell in line.split("|")]
        figures = json.loads((out / variant / "figures.json").read_text())
        assert cells[verdict_column] == f"{figures['verdict']} ({figures['scan_extracted']})"
        attacked = f"{figures['scan_planted_attacked']}/2 / {figures['scan_attacked']}"  # what triage sent
        assert cells[verdict_column + 1] == attacked and figures["scan_attacked"] >= figures["scan_planted_attacked"]
        count = figures["scan_count_test"]  # the family's count test: meeting / attacked -> copies at least
        assert cells[verdict_column + 2] == f"{count['below']}/{count['candidates']} -> {count['copies_at_least']}"
        again = figures["attacker"]["retrigger"]
        assert cells[attacker_column] == f"{again['retriggered_own_study']}/{again['planted']}"
        assert again["planted"] == 2
    full = json.loads((out / "full" / "figures.json").read_text())
    assert full["model"] == str(models / "hospital")  # full fine-tuning is the hospital model, not retrained
    assert json.loads((out / "base" / "figures.json").read_text())["model"] == str(models / "base")
    sampling_schedule = {"S1G1", "S10G1", "S1G4", "S2G4", "S3G4", "S5G4", "S10G4"}
    assert set(full["detection"]) == sampling_schedule | {"T2S1G4", "T3S2G4"}  # and triage's own short schedules
    assert full["scan_triage"] == {"schedule": 2, "steps": 1}  # the bench policy's triage
    assert full["extraction"]["planted"] == 2 and full["extraction"]["holdout_prompts"] == 2
    assert len(full["extraction"]["prompts"]) == 4 and "planted_other_image" in full["extraction"]
    assert (out / "difffit" / "finetune" / "model").is_dir()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("done earlier") == 3  # finished variants are kept

    # A row scanned under an older extraction criterion, one under an older bench policy and without the
    # short-schedule detection figures: both marked, and a rescan brings them up to date.
    for variant, change in (("full", {"scan_criterion": "old"}), ("difffit", {"scan_policy": "old"})):
        figures = json.loads((out / variant / "figures.json").read_text())
        detection = {key: value for key, value in figures["detection"].items() if not key.startswith("T")}
        (out / variant / "figures.json").write_text(json.dumps({**figures, **change, "detection": detection}))
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert (out / "table.md").read_text().count(" *") == 2 and "--rescan" in (out / "table.md").read_text()
    rescan = subprocess.run([*command, "--variants", "full,difffit", "--rescan"], capture_output=True, text=True)
    assert rescan.returncode == 0 and rescan.stdout.count("rescanned") == 2, rescan.stderr
    assert not (out / "table.md").read_text().count(" *")  # every verdict now from the current criterion
    rescanned = json.loads((out / "difffit" / "figures.json").read_text())["detection"]
    assert set(rescanned) == set(detection) | {"T2S1G4", "T3S2G4"}  # the missing settings measured again
    assert {key: rescanned[key] for key in detection} == detection  # the others kept as they were


@pytest.mark.slow
def test_remediation_budget_script_runs_on_a_tiny_hospital_pair(tmp_path):
    models, figures = _tiny_hospital_pair(tmp_path), tmp_path / "figures.json"
    command = [sys.executable, str(BENCH / "remediation_budget.py"), "--models", str(models)]
    command += ["--work", str(tmp_path / "work"), "--figures", str(figures), "--accept-small-holdout"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads(figures.read_text())
    assert record["retrain_steps"] == 2 and record["space"] == "difffit" and set(record["mask"]) == {"1"}
    assert record["policy"]["name"] == "demo-2-step-retrain"
    assert json.loads((tmp_path / "work" / "run" / "remediated" / "method.json").read_text())["steps"] == 2
    assert record["fid_ratio"] == record["after"]["fid"] / record["before"]["fid"] and record["wall_seconds"] >= 0


@pytest.mark.slow
def test_false_fail_benchmark_runs_small(tmp_path):
    out = tmp_path / "false-fail.json"
    argv = [sys.executable, str(BENCH / "false_fail.py"), "--releases", "2", "--release-size", "4"]
    argv += ["--train", "40", "--holdout", "300", "--out", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert set(figures["policies"]) == {"ci", "hospital-release"}
    assert all(0 <= entry["failed"] <= 2 for entry in figures["policies"].values())
    assert "innocent releases failed" in result.stdout


@pytest.mark.slow
def test_false_fail_benchmark_runs_with_reidentification_and_the_combined_criterion(tmp_path):
    out = tmp_path / "false-fail.json"
    argv = [sys.executable, str(BENCH / "false_fail.py"), "--releases", "2", "--release-size", "6", "--train", "200"]
    argv += ["--holdout", "100", "--policies", "demo", "--reid-studies", "4", "--reid-steps", "50"]
    argv += ["--criterion", "combined", "--reid-hard-neighbours", "3", "--out", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert (figures["criterion"], figures["reid_studies"], figures["reid_hard_neighbours"]) == ("combined", 4, 3)
    ran = figures["policies"]["demo"]["checks_ran"]
    assert ran["reidentification"] == ran["extraction"] == 2  # both examined every release
    assert "verifier: holdout pair AUC" in result.stdout


@pytest.mark.slow
def test_triage_recall_benchmark_runs_the_scans_triage_on_a_tiny_hospital_pair(tmp_path):
    models = _tiny_hospital_pair(tmp_path)
    out = tmp_path / "recall.json"
    command = [sys.executable, str(BENCH / "triage_recall.py"), "--models", str(models), "--out", str(out)]
    command += ["--detectors", "wen,consistency", "--data", str(tmp_path / "data"), "--schedule", "3", "--steps", "2"]
    command += ["--holdout", "12"]  # 12 fresh holdout studies, the tiny pair's 6 first
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [row["detector"] for row in rows["hospital"]] == [row["detector"] for row in rows["base"]]
    assert [row["generations"] for row in rows["hospital"]] == [2, 2]  # the CI policy's, consistency's minimum
    assert [(row["schedule"], row["steps"]) for row in rows["hospital"]] == [(3, 2), (3, 1)]  # consistency: 1 step
    from memaudit.data import ImageCaptionDataset

    distinct = len(set(ImageCaptionDataset(tmp_path / "data" / "train").captions))
    assert len(ImageCaptionDataset(tmp_path / "data" / "holdout-12")) == 12
    assert distinct <= 18  # 16 generic studies (phantom captions can coincide) and 2 planted
    for row in rows["hospital"] + rows["base"]:
        # The CI policy's cap (64) filled by score less 8 at random covers every distinct caption here.
        assert (row["ranked_prompts"], row["holdout"]) == ("fill", 12)
        assert row["attacked"] == distinct and row["planted"] == row["planted_attacked"] == 2
        assert row["planted_flagged"] <= row["planted_attacked"] and 0.0 <= row["generic_flagged_share"] <= 1.0
        ranks = row["planted_ranks"]  # 1-based, distinct, within the distinct captions
        assert row["prompts"] == distinct and len(set(ranks)) == 2 and 1 <= ranks[0] < ranks[1] <= distinct
    assert "| hospital | wen | 2 | 3 / 2 |" in result.stdout


@pytest.mark.slow
def test_criterion_recall_script_calibrates_on_a_larger_fresh_holdout(tmp_path):
    from memaudit.data import ImageCaptionDataset

    models, out, data = _tiny_hospital_pair(tmp_path), tmp_path / "recall.json", tmp_path / "data"
    command = [sys.executable, str(BENCH / "criterion_recall.py"), "--models", str(models), "--out", str(out)]
    command += ["--generic", "4", "--holdout", "120", "--data", str(data)]  # 120 bound the bench policy's 3%
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert set(rows) == {"hospital@holdout120", "base@holdout120"}
    for row in rows.values():
        assert row["planted"] == 2 and row["generic"] == 4 and len(row["prompts"]) == 6
        assert 0 <= row["planted_extracted_own"] <= row["planted_candidates_own"] <= 2
    bench_holdout, larger = ImageCaptionDataset(data / "holdout"), ImageCaptionDataset(data / "holdout-120")
    assert len(larger) == 120 and larger.records[:6] == bench_holdout.records  # the bench's 6 come first
    assert list(larger.image_digests[:6]) == list(bench_holdout.image_digests)
    assert "| hospital |" in result.stdout


@pytest.mark.slow
def test_triage_combination_script_cross_fits_on_holdout_halves(tmp_path, monkeypatch):
    models, out = _tiny_hospital_pair(tmp_path), tmp_path / "combination.json"
    command = [sys.executable, str(BENCH / "triage_combination.py"), "--models", str(models), "--out", str(out)]
    command += ["--holdout", "12", "--splits", "3", "--generations", "2", "--data", str(tmp_path / "data")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["captions"]["planted"] == 2 and figures["captions"]["holdout"] == 12
    for variant in ("hospital", "base"):
        rows = figures[variant]["G2"]
        assert set(rows) == {"wen", "consistency", "zsum", "fisher", "minp"}
        for row in rows.values():
            assert 0 <= row["auc_vs_holdout"] <= 1 and 0 <= row["tpr1_vs_holdout"] <= 1
            assert 2 <= row["last_planted_rank"] <= 2 + figures["captions"]["generic"]

    monkeypatch.syspath_prepend(str(BENCH))
    import torch
    from triage_combination import combine, upper_p_values

    reference = torch.tensor([1.0, 2.0, 3.0])
    p = upper_p_values(reference, torch.tensor([0.0, 2.0, 4.0]))  # 3, 2 and 0 reference scores at or above
    assert p.tolist() == [1.0, 0.75, 0.25]
    wen, other = torch.tensor([4.0, 0.0]), torch.tensor([0.0, 4.0])
    fit = {"wen": reference, "consistency": reference}
    assert torch.allclose(
        combine("fisher", wen, other, fit), -torch.log(torch.tensor([0.25 * 1.0, 1.0 * 0.25])).double()
    )
    assert combine("minp", wen, other, fit).tolist() == [-0.25, -0.25]
    # Standardised by the reference's mean 2 and deviation 1: (4 - 2) + (3 - 2) and (1 - 2) + (2 - 2).
    assert combine("zsum", torch.tensor([4.0, 1.0]), torch.tensor([3.0, 2.0]), fit).tolist() == [3.0, -1.0]


@pytest.mark.slow
def test_membership_benchmark_scores_every_attack_with_and_without_the_base(tmp_path):
    models = _tiny_hospital_pair(tmp_path)
    out = tmp_path / "membership.json"
    command = [sys.executable, str(BENCH / "membership.py"), "--models", str(models), "--out", str(out)]
    command += ["--attacks", "pia,loss,secmi", "--timestep", "20", "--interval", "10", "--draws", "2"]
    command += ["--generic", "5", "--data", str(tmp_path / "data")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert (figures["planted"], figures["generic"], figures["holdout"]) == (2, 5, 6)
    expected = {f"{attack} {row}" for attack in ("pia", "loss", "secmi") for row in ("base uncalibrated",
                "hospital uncalibrated", "hospital calibrated")}  # fmt: skip
    assert set(figures["models"]) == expected
    for row in figures["models"].values():
        assert 0.0 <= row["auc_planted_low"] <= row["auc_planted"] <= row["auc_planted_high"] <= 1.0
        assert 0 <= row["identified_planted"] <= 2 and 0 <= row["identified_generic"] <= 5


def test_membership_benchmark_refuses_an_unknown_attack_before_model_work(tmp_path):
    command = [sys.executable, str(BENCH / "membership.py"), "--models", str(tmp_path / "none"), "--attacks", "lira"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "attack" in result.stderr and "lira" in result.stderr


@pytest.mark.slow
def test_combined_recall_judges_the_stored_candidates_again_and_gives_the_stored_verdicts_back(tmp_path):
    out = tmp_path / "combined.json"
    argv = [sys.executable, str(BENCH / "combined_recall.py"), "--data", str(tmp_path / "data"), "--out", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr  # the separate criterion reproduced every stored verdict
    figures = json.loads(out.read_text())
    stored = json.loads((BENCH / "results" / "criterion-recall.json").read_text())
    for name, row in figures.items():
        assert row["separate"]["planted_extracted_own"] == stored[name]["planted_extracted_own"]
        assert set(row) == {"separate", "combined"}
    assert figures["base"]["combined"]["planted_extracted_own"] == 0


def test_fit_speed_scores_a_base_and_its_fine_tune(tmp_path):
    from memaudit.checkpoint.saving import save_diffusers_folder
    from memaudit.tiny.pipeline import build_tiny_pipeline

    save_diffusers_folder(build_tiny_pipeline(seed=0), tmp_path / "base")
    out = tmp_path / "fit.json"
    command = [sys.executable, str(BENCH / "fit_speed.py"), "--model", f"tiny={tmp_path / 'base'}", "--steps", "2"]
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["models"]["tiny"]
    assert row["training_loss"]["first"] > 0 and row["base"]["loss_trained"] > 0
    assert all(0.0 <= row[label]["auc"] <= 1.0 for label in ("base", "fine-tuned"))
    assert "tiny   base AUC" in result.stdout


def test_reid_phantoms_measures_longitudinal_patients(tmp_path):
    command = [sys.executable, str(BENCH / "reid_phantoms.py"), "--patients", "12", "--studies", "2", "--steps", "4"]
    command += ["--frequent", "2", "--frequent-studies", "5", "--hard-neighbours", "3", "--null", "30"]
    command += ["--new-studies", "4", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert (figures["frequent_patients"], figures["hard_neighbours"]) == (2, 3)
    assert figures["rank1_identified"].endswith("/8") and 0.0 <= figures["separation_auc"] <= 1.0
    assert figures["count_test_null_images"] == 30 and figures["count_test_named_learned"].endswith("/2")


@pytest.mark.slow
def test_reid_model_fine_tunes_and_scans_the_base_the_model_and_a_control(tmp_path):
    command = [sys.executable, str(BENCH / "reid_model.py"), "--steps", "2", "--patients", "10", "--studies", "2"]
    command += ["--frequent", "2", "--frequent-studies", "4", "--verifier-steps", "4"]
    command += ["--models", "base,fine-tuned,control", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert set(figures["models"]) == {"base", "fine-tuned", "control"} and figures["training_images"] == 28
    for row in figures["models"].values():
        assert row["reid_status"] == "ok" and row["images_scored"] > 0 and row["count_tested"] is None
        assert row["named_learned"].endswith("/2") and row["extracted"] is not None
    assert figures["models"]["control"]["finetune_seconds"] > 0 and "finetune_seconds" not in figures["models"]["base"]
