"""A corpus of bad inputs, one case each: every one exits 2 naming its cause, prints no traceback, and
leaves the output folder empty, and the scan ones are refused before any model work."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.tiny.memorizer import build_memorizer
from tests.scan.test_ground_truth import POLICY


@pytest.fixture(scope="module")
def inputs(tiny_pipeline, tiny_folder, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-inputs")
    _, train, holdout, _ = build_memorizer(tiny_pipeline, root / "data")
    (root / "policy.yaml").write_text(POLICY)
    assert run(["keygen", "--out", str(root / "keys")]) == 0
    return {"root": root, "model": tiny_folder, "train": train, "holdout": holdout, "policy": root / "policy.yaml"}


def _policy(root: Path, old: str, new: str) -> Path:
    path = root / "bad-policy.yaml"
    assert old in POLICY
    path.write_text(POLICY.replace(old, new))
    return path


def _train_with(root: Path, train: Path, edit) -> Path:
    copy = shutil.copytree(train, root / "bad-train")
    edit(copy)
    return copy


def _model_without(root: Path, model: Path, edit) -> Path:
    copy = shutil.copytree(model, root / "bad-model")
    edit(copy)
    return copy


def _drop_a_unet_tensor(model: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    del state["conv_norm_out.weight"]
    save_file(state, weights)


def _flow_scheduler(model: Path) -> None:
    config = model / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"prediction_type": "flow"}))


def _bomb(folder: Path) -> None:
    Image.new("1", (20_000, 10_000)).save(folder / "000.png")  # 2e8 pixels: over Pillow's bomb limit


# name -> (how to change the arguments, what the message must say)
CASES = {
    "holdout is the training set": (lambda a, r: {**a, "holdout": a["train"]}, ["overlap", "train-000"]),
    "threshold NaN": (lambda a, r: {**a, "policy": _policy(r, "at_most: 0,", "at_most: .nan,")}, ["finite number"]),
    "threshold a boolean": (
        lambda a, r: {**a, "policy": _policy(r, "at_most: 0,", "at_most: true,")},
        ["'at_most' must be a number, got the boolean true"],
    ),
    "negative count threshold": (
        lambda a, r: {**a, "policy": _policy(r, "at_most: 0,", "at_most: -1,")},
        ["outside what extraction.extracted_count can be"],
    ),
    "ranked budget fills no cap": (
        lambda a, r: {**a, "policy": _policy(r, "random_prompts: 3,", "random_prompts: 3, ranked_prompts: fill,")},
        ["checks.extraction", "ranked_prompts 'fill' spends what max_prompts leaves; set max_prompts"],
    ),
    "infinite guidance": (
        lambda a, r: {**a, "policy": _policy(r, "guidance_scale: 1.0", "guidance_scale: .inf")},
        ["sampling.guidance_scale", "finite number"],
    ),
    "unknown policy key": (
        lambda a, r: {**a, "policy": _policy(r, "batch_size: 16", "batch_sise: 16")},
        ["unknown key 'sampling.batch_sise'", "did you mean 'batch_size'"],
    ),
    "signing key is the public key": (
        lambda a, r: {**a, "sign_key": r / "keys" / "memaudit-signing.pub"},
        ["memaudit-signing.pub", "private key"],
    ),
    "signing key is garbage": (
        lambda a, r: {**a, "sign_key": _write(r / "garbage.key", b"not a key")},
        ["garbage.key", "PEM private key"],
    ),
    "out is a file": (lambda a, r: {**a, "out": _write(r / "out-file", b"x")}, ["a file is in the way"]),
    "out below a file": (
        lambda a, r: {**a, "out": _write(r / "blocker", b"x") / "reports"},
        ["is a file, so the folder cannot be created"],
    ),
    "device gpu0": (lambda a, r: {**a, "device": "gpu0"}, ["--device gpu0", "not a device name"]),
    "device cuda without CUDA": (lambda a, r: {**a, "device": "cuda"}, ["CUDA is not available"]),
    "zero-byte training image": (
        lambda a, r: {**a, "train": _train_with(r, a["train"], lambda f: (f / "003.png").write_bytes(b""))},
        ["003.png", "cannot decode image"],
    ),
    "decompression bomb": (
        lambda a, r: {**a, "train": _train_with(r, a["train"], _bomb)},
        ["000.png", "decompression-bomb limit"],
    ),
    "manifest not UTF-8": (
        lambda a, r: {
            **a,
            "train": _train_with(r, a["train"], lambda f: _write(f / "metadata.jsonl", "ü".encode("latin-1"))),
        },
        ["metadata.jsonl", "not UTF-8"],
    ),
    "model folder without unet": (
        lambda a, r: {**a, "model": _model_without(r, a["model"], lambda m: shutil.rmtree(m / "unet"))},
        ["missing: unet"],
    ),
    "weights missing a tensor": (
        lambda a, r: {**a, "model": _model_without(r, a["model"], _drop_a_unet_tensor)},
        ["unet weights lack 1 tensor(s): conv_norm_out.weight"],
    ),
    "scheduler predicts something unknown": (
        lambda a, r: {**a, "model": _model_without(r, a["model"], _flow_scheduler)},
        ["predicts 'flow'", "epsilon, v_prediction, sample"],
    ),
    "holdout of one patient for a patient rule": (
        lambda a, r: {**a, "holdout": _one_patient_holdout(r), "policy": _write(r / "patients.yaml", PATIENT_POLICY)},
        ["one-patient", "has 1 distinct patients (in 300 studies)", "patient-auc", "needs at least 299"],
    ),
    "previous result missing": (lambda a, r: {**a, "before": r / "gone.json"}, ["gone.json"]),
    "previous result not a scan result": (
        lambda a, r: {**a, "before": _write(r / "before.json", b'{"verdict": "maybe"}')},
        ["before.json"],
    ),
}


PATIENT_POLICY = b"""
name: patients
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 3, guidance_scale: 1.0, batch_size: 8}
checks:
  noise_magnitude: {enabled: false}
  extraction: {enabled: false}
  nearest_neighbour: {enabled: false}
  fid: {enabled: false}
  membership: {enabled: true}
rules:
  patient-auc: {metric: membership.patient_auc, at_most: 0.6}
"""


def _one_patient_holdout(root: Path) -> Path:
    """300 studies, all of one patient: enough images, one patient (a patient AUC of 0 or 1)."""
    folder = root / "one-patient"
    folder.mkdir()
    Image.new("L", (16, 16)).save(folder / "study.png")
    rows = [{"id": f"study-{k}", "file_name": "study.png", "text": "clear", "patient_id": "p-1"} for k in range(300)]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_scan_input_exits_2_naming_it_with_nothing_written(case, inputs, tmp_path, capsys, monkeypatch):
    change, expected = CASES[case]
    root = tmp_path / "work"
    root.mkdir()
    (root / "keys").symlink_to(inputs["root"] / "keys")
    base = {"out": tmp_path / "out", "sign_key": None, "device": "cpu", "before": None}
    arguments = change({**{k: v for k, v in inputs.items() if k != "root"}, **base}, root)
    # A check that reaches the model before refusing would be slow to fail: forbid loading it at all.
    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", _refuse_to_load_unless(case))
    argv = ["scan", str(arguments["model"]), "--train", str(arguments["train"]), "--holdout", str(arguments["holdout"])]
    argv += ["--policy", str(arguments["policy"]), "--out", str(arguments["out"]), "--device", arguments["device"]]
    argv += ["--feature-cache", str(tmp_path / "cache")]
    if arguments["sign_key"] is not None:
        argv += ["--sign-key", str(arguments["sign_key"])]
    if arguments["before"] is not None:
        argv += ["--before", str(arguments["before"])]
    assert run(argv) == ExitCode.ERROR
    error = capsys.readouterr().err
    assert "Traceback" not in error and "internal error" not in error, error
    for text in expected:
        assert text in error, error
    out = arguments["out"]
    assert not out.is_dir() or not any(out.iterdir())


def _refuse_to_load_unless(case: str):
    """Checkpoint problems are found by loading; every other case must be refused before that."""
    from memaudit.checkpoint import load_checkpoint

    if case in ("model folder without unet", "weights missing a tensor", "scheduler predicts something unknown"):
        return load_checkpoint

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    return refuse


def test_a_manifest_with_a_byte_order_mark_is_read(tmp_path):
    from memaudit.data import read_manifest

    Image.new("L", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "train.csv").write_bytes("\ufefffile_name,text\na.png,clear lungs\n".encode())
    _, _, records = read_manifest(tmp_path / "train.csv")
    assert [(r.file_name, r.text) for r in records] == [("a.png", "clear lungs")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8 text"),
        (b"{not json", "not JSON"),
        (json.dumps({"schema_version": "9.0"}).encode(), "schema version '9.0' is not one this memaudit reads"),
    ],
)
def test_report_render_names_what_is_wrong_with_a_result(content, expected, tmp_path, capsys):
    (tmp_path / "result.json").write_bytes(content)
    assert run(["report", "render", str(tmp_path / "result.json"), "--out", str(tmp_path / "views")]) == 2
    error = capsys.readouterr().err
    assert expected in error and "Traceback" not in error
    assert not (tmp_path / "views").exists()


def test_report_render_names_a_corrupt_run_record(signed_scan, tmp_path, capsys):
    shutil.copy(signed_scan[0] / "result.json", tmp_path / "result.json")
    (tmp_path / "run.json").write_text("{broken")
    assert run(["report", "render", str(tmp_path / "result.json"), "--out", str(tmp_path / "views")]) == 2
    assert "run.json: not a memaudit run record (not JSON" in capsys.readouterr().err


def _scan_argv(inputs, out: Path, cache: Path, *extra) -> list[str]:
    return ["scan", str(inputs["model"]), "--train", str(inputs["train"]), "--holdout", str(inputs["holdout"]),
            "--policy", str(inputs["policy"]), "--out", str(out), "--feature-cache", str(cache), *extra]  # fmt: skip


@pytest.mark.parametrize("plan", [False, True])
def test_a_read_only_cache_is_refused_before_any_model_work(plan, inputs, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    if os.geteuid() == 0:  # root writes through the mode bits: answer the access check as for anyone else
        access = os.access
        denied = lambda path, mode: Path(path) == cache and bool(mode & os.W_OK)  # noqa: E731
        monkeypatch.setattr(os, "access", lambda path, mode: not denied(path, mode) and access(path, mode))
    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", _refuse_to_load_unless("read-only cache"))
    argv = _scan_argv(inputs, tmp_path / "out", cache, *(["--plan"] if plan else []))
    assert run(argv) == ExitCode.ERROR
    error = capsys.readouterr().err
    assert f"--feature-cache {cache}: {cache} is not writable" in error, error
    assert not (tmp_path / "out").exists()
    cache.chmod(0o755)


def test_a_zero_byte_image_is_refused_by_the_plan_as_by_the_scan(inputs, tmp_path, capsys, monkeypatch):
    train = shutil.copytree(inputs["train"], tmp_path / "train")
    (train / "003.png").write_bytes(b"")
    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", _refuse_to_load_unless("zero-byte image"))
    argv = _scan_argv({**inputs, "train": train}, tmp_path / "out", tmp_path / "cache", "--plan")
    assert run(argv) == ExitCode.ERROR
    error = capsys.readouterr().err
    assert "003.png" in error and "cannot decode image" in error and "Traceback" not in error, error


@pytest.mark.parametrize("mode", ["model", "images"])
def test_a_before_of_another_training_set_or_of_images_exits_2_before_model_work(
    mode, inputs, signed_scan, tmp_path, capsys, monkeypatch
):
    """A --before from another training set (or an --images audit) once made re-triggering test 0 of 0
    prompts and its rule pass; it is refused before the model loads, naming what differs."""
    from tests.results_fixtures import scan_result

    previous = scan_result(signed_scan[0])  # a scan of another training set
    if mode == "images":
        previous = previous.model_copy(update={"mode": "images"})
    before = _write(tmp_path / "before.json", previous.to_json().encode())
    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", _refuse_to_load_unless("a --before"))
    argv = ["scan", str(inputs["model"]), "--train", str(inputs["train"]), "--holdout", str(inputs["holdout"])]
    argv += ["--policy", str(inputs["policy"]), "--out", str(tmp_path / "out"), "--before", str(before)]
    assert run(argv) == ExitCode.ERROR
    error = capsys.readouterr().err
    assert "Traceback" not in error and f"--before {before}" in error, error
    if mode == "images":
        assert "a scan of images, not of a model" in error
    else:
        assert f"scanned training set {previous.train.digest[:16]}" in error and "not this scan's" in error
    assert not (tmp_path / "out").exists()
