"""`memaudit scan BASE --adapter FILE`: a LoRA in either key layout gives the same result, the adapter is
recorded and attested, and a bad adapter or a bad --adapter-scale is exit 2 before any model work."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file, save_file

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.tiny.memorizer import build_memorizer
from tests.checkpoint.lora_files import write_lora
from tests.scan.test_ground_truth import POLICY


@pytest.fixture(scope="module")
def setup(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapter-scan")
    (root / "policy.yaml").write_text(POLICY)
    _, train, holdout, _ = build_memorizer(tiny_pipeline, root)
    diffusers_file, kohya_file = write_lora(tiny_pipeline, root / "lora")
    assert run(["keygen", "--out", str(root / "keys")]) == 0
    return root, train, holdout, diffusers_file, kohya_file


def _scan(setup, tiny_folder, out, *extra):
    root, train, holdout, *_ = setup
    arguments = ["scan", str(tiny_folder), "--train", str(train), "--holdout", str(holdout)]
    arguments += ["--policy", str(root / "policy.yaml"), "--out", str(out), *map(str, extra)]
    return run(arguments)


def _without_adapter_records(result: dict) -> dict:
    model = {k: v for k, v in result["model"].items() if k not in ("adapters", "digest")}
    return {"checks": result["checks"], "rules": result["rules"], "verdict": result["verdict"], "model": model}


def test_both_layouts_give_the_same_result_and_the_adapter_is_attested(setup, tiny_folder, tmp_path, capsys):
    root, _, _, diffusers_file, kohya_file = setup
    results = {}
    for layout, path in (("diffusers", diffusers_file), ("kohya", kohya_file)):
        sign = ["--sign-key", root / "keys" / "memaudit-signing.key"]
        code = _scan(setup, tiny_folder, tmp_path / layout, "--adapter", path, "--adapter-scale", 0.5, *sign)
        assert code in (ExitCode.OK, ExitCode.FINDING), capsys.readouterr().err
        results[layout] = json.loads((tmp_path / layout / "result.json").read_text())
    assert _without_adapter_records(results["diffusers"]) == _without_adapter_records(results["kohya"])
    recorded = [result["model"]["adapters"] for result in results.values()]
    assert [(a[0]["layout"], a[0]["scale"]) for a in recorded] == [("diffusers", 0.5), ("kohya", 0.5)]
    assert recorded[0][0]["sha256"] != recorded[1][0]["sha256"]
    attestation, key = tmp_path / "kohya" / "attestation.dsse.json", root / "keys" / "memaudit-signing.pub"
    verify = ["verify", str(attestation), "--key", str(key), "--model", str(tiny_folder)]
    capsys.readouterr()
    assert run([*verify, "--adapter", str(kohya_file)]) == ExitCode.OK
    assert run(verify) == ExitCode.FINDING
    assert "scanned with adapter kohya.safetensors; pass it with --adapter" in capsys.readouterr().err
    assert run([*verify, "--adapter", str(diffusers_file)]) == ExitCode.FINDING
    assert "adapter/0/kohya.safetensors: sha256 differs" in capsys.readouterr().err


def test_without_an_adapter_the_base_is_another_model(setup, tiny_folder, tmp_path):
    _scan(setup, tiny_folder, tmp_path / "base")
    _scan(setup, tiny_folder, tmp_path / "adapted", "--adapter", setup[3])
    base, adapted = (json.loads((tmp_path / name / "result.json").read_text()) for name in ("base", "adapted"))
    assert base["model"]["adapters"] == [] and base["model"]["digest"] != adapted["model"]["digest"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--adapter-scale", "0.5"], "--adapter-scale without --adapter"),
        (["--adapter", "{lora}", "--adapter-scale", "1", "--adapter-scale", "2"], "2 values for 1 adapters"),
        (["--adapter", "{missing}"], "no such file"),
        (["--adapter", "{pickled}"], "refusing to load pickle-based weights"),
        (["--adapter", "{unknown}"], "match no module of this base"),
        (["--adapter", "{wide}"], "does not fit this base"),
    ],
)
def test_bad_adapter_options_exit_2_naming_them(setup, tiny_folder, tmp_path, capsys, extra, message):
    pickled = tmp_path / "lora.bin"
    pickled.write_bytes(b"not read")
    layers = load_file(setup[3])
    unknown, wide = tmp_path / "unknown.safetensors", tmp_path / "wide.safetensors"
    save_file({k.replace("attn1.to_q", "attn9.to_q"): v for k, v in layers.items()}, unknown)
    save_file({k: v.repeat(1, 2) if "down" in k else v for k, v in layers.items()}, wide)  # another base's widths
    paths = {"lora": setup[3], "missing": tmp_path / "missing.safetensors", "pickled": pickled}
    paths |= {"unknown": unknown, "wide": wide}
    code = _scan(setup, tiny_folder, tmp_path / "out", *[item.format(**paths) for item in extra])
    err = capsys.readouterr().err
    assert code == ExitCode.ERROR and message in err, err
    assert not (tmp_path / "out" / "result.json").exists()
