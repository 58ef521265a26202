"""The CLI end to end: outputs, exit codes (0 ok / 1 finding / 2 error) and error messages."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from memaudit import __version__
from memaudit.cli import run
from memaudit.errors import ExitCode
from tests.images import write_png


def _run(capsys, *argv):
    code = run(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    assert _run(capsys, "--version") == (0, f"memaudit {__version__}\n", "")


def test_inspect_folder_and_single_file_print_the_same_summary(capsys, tiny_folder, tiny_single_file):
    weights, config = tiny_single_file
    code_a, folder_out, _ = _run(capsys, "inspect", tiny_folder)
    code_b, single_out, _ = _run(capsys, "inspect", weights, "--config", config)
    assert code_a == code_b == ExitCode.OK

    def architecture(text: str) -> str:
        return text.split("Weight files")[0].split("\n", 1)[1]  # drop the source line and the digests

    assert architecture(folder_out) == architecture(single_out)
    assert "mid_block.attentions.0.transformer_blocks.0" in folder_out
    for weight in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        assert weight in folder_out
    assert len(re.findall(r"\b[0-9a-f]{64}\b", folder_out)) == 3
    assert len(re.findall(r"\b[0-9a-f]{64}\b", single_out)) == 1


def test_inspect_json_is_machine_readable(capsys, tiny_folder):
    code, out, _ = _run(capsys, "inspect", tiny_folder, "--json")
    summary = json.loads(out)
    assert code == 0 and len(summary["unet_transformer_blocks"]) == 7


def test_inspect_refuses_a_ckpt_saying_pickle(capsys, tmp_path):
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"\x80\x04")
    code, out, err = _run(capsys, "inspect", path)
    assert code == ExitCode.ERROR and out == ""
    assert "x.ckpt" in err and "pickle" in err and "Traceback" not in err


def test_debug_shows_the_traceback(capsys, tmp_path):
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"")
    code, _, err = _run(capsys, "--debug", "inspect", path)
    assert code == ExitCode.ERROR and "Traceback" in err


def test_policy_validate_ok_and_misspelled(capsys, tmp_path):
    code, out, _ = _run(capsys, "policy", "validate", "hospital-release")
    assert code == 0 and "valid policy 'hospital-release'" in out and "no-extracted-images" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules:\n  r:\n    metric: fid.fid\n    at_most: 1\n    severty: warn\n")
    code, _, err = _run(capsys, "policy", "validate", bad)
    assert code == ExitCode.ERROR
    assert "unknown key 'rules.r.severty'; did you mean 'severity'?" in err and str(bad) in err


def test_policy_schema_to_stdout_and_file(capsys, tmp_path):
    code, out, _ = _run(capsys, "policy", "schema")
    assert code == 0 and json.loads(out)["title"] == "memaudit policy"
    code, _, _ = _run(capsys, "policy", "schema", "--out", tmp_path / "s.json")
    assert code == 0 and json.loads((tmp_path / "s.json").read_text())["title"] == "memaudit policy"


@pytest.fixture
def dataset(tmp_path):
    for index in range(3):
        write_png(tmp_path / f"{index}.png", np.full((4, 4), index * 30, dtype=np.uint8))
    rows = [{"file_name": f"{i}.png", "text": f"c{i}"} for i in range(3)]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_data_check_clean(capsys, dataset):
    code, out, err = _run(capsys, "data", "check", dataset)
    assert code == ExitCode.OK and "3 items" in out and "finding" not in err


def test_data_check_missing_image_names_the_row(capsys, dataset):
    with (dataset / "metadata.jsonl").open("a") as handle:
        handle.write(json.dumps({"file_name": "missing.png", "text": "x"}) + "\n")
    code, _, err = _run(capsys, "data", "check", dataset)
    assert code == ExitCode.ERROR and "row 4: image 'missing.png' not found" in err


def test_data_check_unreadable_image_names_the_file(capsys, dataset):
    (dataset / "1.png").write_bytes(b"garbage")
    code, _, err = _run(capsys, "data", "check", dataset)
    assert code == ExitCode.ERROR and "1.png: cannot decode image" in err


def test_data_check_duplicate_is_a_finding(capsys, dataset):
    (dataset / "2.png").write_bytes((dataset / "0.png").read_bytes())
    code, _, err = _run(capsys, "data", "check", dataset)
    assert code == ExitCode.FINDING and "byte-identical" in err


@pytest.mark.parametrize(
    "argv",
    [[], ["bogus"], ["inspect"], ["inspect", "--nope", "x"], ["data", "check"], ["policy", "validate"]],
)
def test_usage_errors_exit_2(capsys, argv):
    code, _, _ = _run(capsys, *argv)
    assert code == ExitCode.ERROR


def test_console_script_and_module_entry_points(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "memaudit", "policy", "validate", "nosuch.yaml"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "nosuch.yaml: cannot read policy" in result.stderr
