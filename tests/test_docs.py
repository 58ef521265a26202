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


ROOT = DOCS.parent.parent


def _reference_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_references_match_the_code():
    """docs/reference/policy.md and cli.md are views of the Policy schema and the Typer app: one source each."""
    generator = _reference_generator()
    for name, generate in generator.PAGES.items():
        committed = (ROOT / "docs" / "reference" / name).read_text()
        assert committed == generate(), (
            f"docs/reference/{name} no longer matches the code; regenerate it with {generator.REGENERATE}"
        )


def test_reference_documents_every_command_and_policy_key():
    generator = _reference_generator()
    cli, policy = generator.cli_reference(), generator.policy_reference()
    for command in ("scan", "verify", "report render", "policy validate", "data check", "remediate", "worker"):
        assert f"## `memaudit {command}`" in cli
    assert "| `--remediate-on-fail` |" in cli and "| `--sign-key <path>` |" in cli
    assert "## `checks.extraction`" in policy and "| `family_false_alarm` |" in policy
    assert "| `extraction.extracted_count` | `extraction` | lower |" in policy
    assert str(ROOT) not in cli + policy  # no path of the machine that generated it


def test_site_builds_strictly(tmp_path):
    """The documentation site builds with --strict (a broken link or anchor, a page missing from the nav or
    a nav entry without its page fails), offline, as CI's make test runs it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "reference" / "policy" / "index.html").exists()
