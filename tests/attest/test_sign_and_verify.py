"""Signing and `memaudit verify`: any changed byte, and any other key, must fail."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode


def _verify(capsys, attestation, key, *extra):
    code = run(["verify", str(attestation), "--key", str(key), *map(str, extra)])
    return code, capsys.readouterr()


@pytest.fixture
def copy(signed_scan, tmp_path):
    """A private copy of the signed outputs and model, so each test may damage its own."""
    out, model, keys, _ = signed_scan
    return shutil.copytree(out, tmp_path / "out"), shutil.copytree(model, tmp_path / "model"), keys


def _flip_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if offset is None else offset
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_untouched_outputs_and_model_verify(copy, capsys):
    out, model, keys = copy
    code, captured = _verify(capsys, out / "attestation.dsse.json", keys / "memaudit-signing.pub", "--model", model)
    assert code == ExitCode.OK, captured.err
    # 3 weight files, model_index.json, 6 config and tokenizer files, 3 reports
    assert "valid: signature and 13 subject digests match (scan verdict: pass)" in captured.out


def test_statement_names_every_file_that_changes_behaviour_and_the_reports(copy):
    import base64

    out, _, _ = copy
    envelope = json.loads((out / "attestation.dsse.json").read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert {s["name"] for s in statement["subject"]} == {
        "model/text_encoder/model.safetensors",
        "model/unet/diffusion_pytorch_model.safetensors",
        "model/vae/diffusion_pytorch_model.safetensors",
        "model/model_index.json",
        "model/scheduler/scheduler_config.json",
        "model/text_encoder/config.json",
        "model/tokenizer/tokenizer.json",
        "model/tokenizer/tokenizer_config.json",
        "model/unet/config.json",
        "model/vae/config.json",
        "report/result.json",
        "report/report.html",
        "report/report.pdf",
    }
    assert statement["predicate"]["verdict"] == "pass" and len(statement["predicate"]["policy"]["sha256"]) == 64
    result = json.loads((out / "result.json").read_text())
    assert statement["predicate"]["checkpoint_digest"] == result["model"]["digest"]
    assert len(result["model"]["digest"]) == 64


def test_another_scheduler_with_the_same_weights_fails_naming_the_file(copy, capsys):
    out, model, keys = copy
    config = model / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"prediction_type": "v_prediction"}))
    code, captured = _verify(capsys, out / "attestation.dsse.json", keys / "memaudit-signing.pub", "--model", model)
    assert code == ExitCode.FINDING
    assert "subject model/scheduler/scheduler_config.json: sha256 differs" in captured.err


def test_a_file_added_after_signing_fails_naming_it(copy, capsys):
    out, model, keys = copy
    (model / "tokenizer" / "added_tokens.json").write_text('{"<patient>": 49408}')
    (model / "unet" / "README.md").write_text("notes: not read by any loader")
    code, captured = _verify(capsys, out / "attestation.dsse.json", keys / "memaudit-signing.pub", "--model", model)
    assert code == ExitCode.FINDING
    assert "subject model/tokenizer/added_tokens.json: on disk" in captured.err
    assert "not in the attestation" in captured.err
    assert "README" not in captured.err


@pytest.mark.parametrize("target", ["result.json", "report.pdf", "report.html"])
def test_one_changed_byte_in_a_report_fails(copy, capsys, target):
    out, model, keys = copy
    _flip_byte(out / target)
    code, captured = _verify(capsys, out / "attestation.dsse.json", keys / "memaudit-signing.pub", "--model", model)
    assert code == ExitCode.FINDING
    assert f"subject report/{target}: sha256 differs" in captured.err


def test_one_changed_byte_in_a_weight_file_fails(copy, capsys):
    out, model, keys = copy
    _flip_byte(model / "unet" / "diffusion_pytorch_model.safetensors")
    code, captured = _verify(capsys, out / "attestation.dsse.json", keys / "memaudit-signing.pub", "--model", model)
    assert code == ExitCode.FINDING
    assert "subject model/unet/diffusion_pytorch_model.safetensors: sha256 differs" in captured.err


@pytest.mark.parametrize("field", ["payload", "signature"])
def test_a_changed_envelope_fails(copy, capsys, field):
    out, _, keys = copy
    path = out / "attestation.dsse.json"
    envelope = json.loads(path.read_text())
    if field == "payload":
        envelope["payload"] = (
            envelope["payload"][:-8] + ("A" if envelope["payload"][-8] != "A" else "B") + envelope["payload"][-7:]
        )
    else:
        signature = envelope["signatures"][0]["sig"]
        envelope["signatures"][0]["sig"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    path.write_text(json.dumps(envelope))
    code, captured = _verify(capsys, path, keys / "memaudit-signing.pub")
    assert code == ExitCode.FINDING and "invalid:" in captured.err


def test_any_single_byte_of_the_envelope_file(copy, capsys):
    out, _, keys = copy
    path = out / "attestation.dsse.json"
    original = path.read_bytes()
    payload_start = original.index(b'"payload": "') + len(b'"payload": "') + 5
    _flip_byte(path, payload_start)
    code, _ = _verify(capsys, path, keys / "memaudit-signing.pub")
    assert code == ExitCode.FINDING


def test_another_key_fails(copy, capsys, tmp_path):
    out, _, _ = copy
    assert run(["keygen", "--out", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    code, captured = _verify(capsys, out / "attestation.dsse.json", tmp_path / "other" / "memaudit-signing.pub")
    assert code == ExitCode.FINDING and "signature: not valid" in captured.err


def test_keygen_writes_0600_and_refuses_to_overwrite(tmp_path, capsys):
    assert run(["keygen", "--out", str(tmp_path)]) == 0
    assert os.stat(tmp_path / "memaudit-signing.key").st_mode & 0o777 == 0o600
    assert run(["keygen", "--out", str(tmp_path)]) == ExitCode.ERROR
    assert "refusing to overwrite" in capsys.readouterr().err


def test_verify_usage_errors(tmp_path, capsys):
    assert run(["verify", str(tmp_path / "none.json"), "--key", str(tmp_path / "none.pub")]) == ExitCode.ERROR
    assert "cannot read a PEM public key" in capsys.readouterr().err
    assert run(["verify", "x.json"]) == ExitCode.ERROR


def test_scan_with_a_missing_sign_key_is_refused_before_scanning(tmp_path, capsys):
    code = run(
        [
            "scan",
            "m",
            "--train",
            "t",
            "--holdout",
            "h",
            "--policy",
            "ci",
            "--sign-key",
            str(tmp_path / "nokey"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == ExitCode.ERROR and "no such signing key" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
