"""The embedded demo runs offline and shows what it claims."""

from __future__ import annotations

from memaudit.cli import run


def test_demo_builds_loads_both_formats_and_validates_policies(tmp_path, capsys):
    assert run(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "both formats describe the same model: yes" in out
    assert {"policy ci: valid", "policy hospital-release: valid", "policy research: valid"} <= {
        line.split(",")[0] for line in out.splitlines()
    }
    assert (tmp_path / "tiny-model" / "model_index.json").is_file()
    assert (tmp_path / "tiny-model.safetensors").is_file()
