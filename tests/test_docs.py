"""The CI examples in docs/ stay valid YAML and use the scan command as it exists."""

from __future__ import annotations

from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parent.parent / "docs" / "ci"


def test_ci_examples_parse_and_keep_reports_and_junit():
    github = yaml.safe_load((DOCS / "github-actions.yml").read_text())
    gitlab = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())
    steps = github["jobs"]["memaudit"]["steps"]
    scan = next(step["run"] for step in steps if step.get("name") == "Scan")
    assert "memaudit scan" in scan and "--policy" in scan and "--out reports/memaudit" in scan
    assert any(step.get("if") == "always()" and "upload-artifact" in step.get("uses", "") for step in steps)
    job = gitlab["memaudit"]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "reports/memaudit/junit.xml"


def test_documented_options_exist():
    from typer.main import get_command

    from memaudit.cli import app

    scan = get_command(app).commands["scan"]
    options = {name for parameter in scan.params for name in getattr(parameter, "opts", [])}
    for text in ((DOCS / "github-actions.yml").read_text(), (DOCS / "gitlab-ci.yml").read_text()):
        for option in ("--train", "--holdout", "--policy", "--device", "--sign-key", "--out"):
            assert option in text and option in options
