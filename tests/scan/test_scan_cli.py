"""`memaudit scan` on real checkpoints and image folders, and its error paths."""

from __future__ import annotations

import json
import shutil

import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.results.scan_result import RESULT_SCHEMA_VERSION
from memaudit.tiny.memorizer import build_memorizer
from tests.scan.test_ground_truth import POLICY


@pytest.fixture(scope="module")
def data(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("scan-data")
    (root / "policy.yaml").write_text(POLICY)
    (
        _,
        train,
        holdout,
        planted_ids,
    ) = build_memorizer(tiny_pipeline, root)
    return root, train, holdout, planted_ids


def _scan(capsys, tmp_path, *argv):
    code = run(["scan", *map(str, argv), "--out", str(tmp_path / "out"), "--feature-cache", str(tmp_path / "cache")])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_non_memorizing_model_passes(data, tiny_folder, tmp_path, capsys):
    root, train, holdout, _ = data
    code, out, err = _scan(
        capsys, tmp_path, tiny_folder, "--train", train, "--holdout", holdout, "--policy", root / "policy.yaml"
    )
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert code == ExitCode.OK, (out, err)
    assert result["verdict"] == "pass" and result["checks"]["extraction"]["extraction"]["extracted_train_ids"] == []
    assert {f["path"] for f in result["model"]["weight_files"]} >= {"unet/diffusion_pytorch_model.safetensors"}
    assert json.loads((tmp_path / "out" / "run.json").read_text())["seconds"] > 0
    assert (result["environment"]["device"], result["environment"]["dtype"]) == ("cpu", "float32")  # CPU: float32
    assert result["model"]["prediction_type"] == "epsilon" and result["schema_version"] == RESULT_SCHEMA_VERSION
    from memaudit.results.reading import read_scan_result

    older = dict(
        result, schema_version="2.2", model={k: v for k, v in result["model"].items() if k != "prediction_type"}
    )
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert read_scan_result(tmp_path / "older.json").model.prediction_type is None  # a 2.2 result still reads


def test_missing_extractor_weights_for_a_required_check_exits_2_naming_them(data, tiny_folder, tmp_path, capsys):
    root, train, holdout, _ = data
    policy = root / "xrv.yaml"
    policy.write_text(POLICY.replace("extractor: pixels", "extractor: xrv-densenet121"))
    code, out, err = _scan(capsys, tmp_path, tiny_folder, "--train", train, "--holdout", holdout, "--policy", policy)
    assert code == ExitCode.ERROR
    assert "xrv-densenet121 has no weights" in err and "ERROR" in out
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["checks"]["nearest_neighbour"]["status"] == "error"
    assert {r["id"]: r["status"] for r in result["rules"]}["near-copy-rate"] == "error"


def test_auditing_released_images_finds_copied_training_images(data, tmp_path, capsys, monkeypatch):
    root, train, holdout, planted_ids = data

    def never_stacked(self, *args, **kwargs):
        raise AssertionError(f"{self.source}: a whole data set stacked in memory")

    monkeypatch.setattr("memaudit.data.ImageCaptionDataset.load_images", never_stacked)
    release = tmp_path / "release"
    release.mkdir()
    for index, source in enumerate(["000.png", "001.png"]):  # two planted training images leaked
        shutil.copy(train / source, release / f"copy{index}.png")
    for index in range(4):  # and unseen-looking images
        shutil.copy(holdout / f"{index:03d}.png", release / f"fresh{index}.png")
    code, _, _ = _scan(
        capsys, tmp_path, "--images", release, "--train", train, "--holdout", holdout, "--policy", root / "policy.yaml"
    )
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert code == ExitCode.FINDING and result["mode"] == "images"
    assert result["environment"]["dtype"] is None  # no model sampled anything
    assert result["checks"]["extraction"]["extraction"]["extracted_train_ids"] == planted_ids[:2]
    assert result["checks"]["noise_magnitude"]["status"] == "not_applicable"
    assert result["checks"]["nearest_neighbour"]["status"] == "ok"  # features read a batch at a time


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--train", "t", "--holdout", "h", "--policy", "ci"], "give a MODEL to scan, or --images"),
        (["m", "--images", "i", "--train", "t", "--holdout", "h", "--policy", "ci"], "not both"),
        (["m", "--holdout", "h", "--policy", "ci"], "Missing option '--train'"),
        (["m", "--train", "t", "--holdout", "h", "--policy", "nosuch.yaml"], "nosuch.yaml: cannot read policy"),
    ],
)
def test_usage_and_input_errors_exit_2(capsys, tmp_path, argv, message):
    code, _, err = _scan(capsys, tmp_path, *argv)
    assert code == ExitCode.ERROR and message in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_missing_training_data_names_it(data, tiny_folder, tmp_path, capsys):
    root, _, holdout, _ = data
    code, _, err = _scan(
        capsys,
        tmp_path,
        tiny_folder,
        "--train",
        tmp_path / "nope",
        "--holdout",
        holdout,
        "--policy",
        root / "policy.yaml",
    )
    assert code == ExitCode.ERROR and "nope: no such dataset" in err


@pytest.mark.slow
def test_a_full_disk_while_writing_the_reports_leaves_no_green_trail_and_the_rerun_resumes(
    data, tiny_folder, tmp_path, capsys, monkeypatch
):
    """The disk fills after result.json (pass) and junit.xml are written: exit 2 naming --out, nothing in
    --out (a CI job reading junit.xml finds none), and the scan's finished work kept for the rerun."""
    import errno

    import memaudit.render.outputs as outputs

    root, train, holdout, _ = data
    argv = [tiny_folder, "--train", train, "--holdout", holdout, "--policy", root / "policy.yaml"]
    original, written = outputs.write_atomic, []

    def full_after_three(path, data):
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path.name)
        return original(path, data)

    monkeypatch.setattr(outputs, "write_atomic", full_after_three)
    code, _, err = _scan(capsys, tmp_path, *argv)
    assert code == ExitCode.ERROR and written == ["result.json", "run.json", "junit.xml"]
    assert f"{tmp_path / 'out'}: the reports could not be written (No space left on device" in err, err
    assert "internal error" not in err and not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no staging folder left
    (work,) = (tmp_path / "cache" / "scans").iterdir()
    assert any(work.iterdir())  # the finished units survive the failed publish
    monkeypatch.setattr(outputs, "write_atomic", original)
    code, out, err = _scan(capsys, tmp_path, *argv)
    assert code == ExitCode.OK, (out, err)
    assert "resuming: " in err and not work.exists()
    assert json.loads((tmp_path / "out" / "result.json").read_text())["verdict"] == "pass"


TRUNCATION_POLICY = """
name: truncation
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 1.0, batch_size: 8}}
calibration: {{small_holdout: {small_holdout}}}
checks:
  noise_magnitude: {{generations: 1, calibration_quantile: 0.9}}  # 29 holdout prompts at confidence 0.95
  extraction: {{enabled: false}}
  nearest_neighbour: {{enabled: false}}
  fid: {{enabled: false}}
rules:
  noise-flags: {{metric: noise_magnitude.flagged_fraction, at_most: 1.0, severity: warn}}
"""


def _long_caption_data(root, small_holdout: str):
    """30 holdout captions that differ only after 80 tokens (the encoder reads 77 with its start and end)."""
    import numpy as np

    from tests.images import write_dataset

    rng = np.random.default_rng(0)
    long = " ".join(["no acute cardiopulmonary process"] * 20)
    holdout = [f"{long} study {k}" for k in range(30)]
    train = ["small left pleural effusion", "heart size normal", "stable cardiomegaly"]
    images = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(33)]
    write_dataset(root / "train", images[:3], train, prefix="train")
    write_dataset(root / "holdout", images[3:], holdout, prefix="holdout")
    (root / "policy.yaml").write_text(TRUNCATION_POLICY.format(small_holdout=small_holdout))
    return ["--train", root / "train", "--holdout", root / "holdout", "--policy", root / "policy.yaml"]


def test_captions_that_are_one_prompt_to_the_model_cannot_calibrate_as_thirty(
    tiny_folder, tmp_path, capsys, monkeypatch
):
    """30 distinct captions pass the count of captions (29 needed), but the text encoder cuts them all to one
    prompt: refused with exit 2 naming the distinct prompts, in preflight (only the tokenizer is read)."""
    argv = _long_caption_data(tmp_path, "error")

    def no_model_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the holdout's prompts were counted")

    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", no_model_work)
    monkeypatch.setattr("memaudit.scan.noise_check.triage_scores", no_model_work)
    code, out, err = _scan(capsys, tmp_path, tiny_folder, *argv)
    assert code == ExitCode.ERROR, (out, err)
    counted = (
        f"holdout set {tmp_path / 'holdout'} has 1 distinct prompts to the model (30 distinct captions, 30 of "
        "them longer than the text encoder's 77 tokens and truncated)"
    )
    assert counted in err, err
    assert "checks.noise_magnitude.calibration_quantile" in err and "needs at least 29" in err
    assert not (tmp_path / "out" / "result.json").exists()


def test_the_report_says_how_many_captions_were_truncated(tiny_folder, tmp_path, capsys):
    argv = _long_caption_data(tmp_path, "warn")
    code, out, err = _scan(capsys, tmp_path, tiny_folder, *argv)
    assert code == ExitCode.OK, (out, err)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    evidence = result["checks"]["noise_magnitude"]["noise_magnitude"]
    assert evidence["holdout_captions"] == {"captions": 30, "truncated": 30, "prompts": 1, "max_tokens": 77}
    assert evidence["train_captions"] == {"captions": 3, "truncated": 0, "prompts": 3, "max_tokens": 77}
    assert len(evidence["holdout_scores"]) == 1 and evidence["calibration"]["n"] == 1  # n counts prompts
    assert "rests on 1 holdout values" in result["summary"]  # the accepted small holdout is said, not hidden
    html = " ".join((tmp_path / "out" / "report.html").read_text().split())
    assert (
        "30 of 30 distinct holdout captions are longer than the text encoder's 77 tokens and were truncated; "
        "the 30 captions are 1 distinct prompt to the model."
    ) in html
    assert "0 of 3 distinct training captions are longer" in html
