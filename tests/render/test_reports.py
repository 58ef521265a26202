"""The HTML/PDF reports as a reader meets them, and privacy by default."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from memaudit.cli import run
from tests.signed_scan import SENTINEL


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_pdf_opens_with_pages_and_the_verdict(signed_scan):
    out = signed_scan[0]
    info = subprocess.run(["pdfinfo", str(out / "report.pdf")], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages >= 2
    text = _pdf_text(out / "report.pdf")
    assert "PASSED" in text and "Rules of the policy" in text and "Sign-off by the data controller" in text
    assert "What a pass does not prove" in text


def test_html_is_self_contained(signed_scan):
    html = (signed_scan[0] / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert html.count("data:image/png;base64,") >= 3  # noise, clique and distance plots


def test_the_report_states_the_family_tests_count(signed_scan):
    """Both halves of the family test are stated with the numbers of result.json."""
    extraction = json.loads((signed_scan[0] / "result.json").read_text())["checks"]["extraction"]["extraction"]
    count, level = extraction["count_test"], extraction["family_false_alarm"]
    html = " ".join((signed_scan[0] / "report.html").read_text().split())
    assert f"keeps those significant at level {level / 2:g}" in html
    assert count["rank"] == 1  # read as a word: "the 1st smallest", never "the 1-th"
    assert f"closer than the 1st smallest of {count['holdout']} holdout distances" in html
    assert f"{count['below']} of {count['candidates']} met the thresholds" in html
    assert f"at least <b>{count['copies_at_least']}</b> of them" in html


def test_the_report_states_the_triage_schedule(signed_scan):
    triage = json.loads((signed_scan[0] / "result.json").read_text())["checks"]["noise_magnitude"]["noise_magnitude"]
    html = " ".join((signed_scan[0] / "report.html").read_text().split())
    assert triage["schedule"] >= triage["steps"] >= 1
    assert f"probes the first {triage['steps']} of the {triage['schedule']} steps of its sampler schedule" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is installed by .ci/run")
def test_html_renders_in_headless_chromium(signed_scan, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,1400",
            f"--screenshot={shot}",
            (signed_scan[0] / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(shot).convert("L")
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text, tables and plots, not a blank page
    assert image.getextrema()[0] < 100  # something dark was drawn


def test_no_caption_reaches_any_output(signed_scan):
    out = signed_scan[0]
    for name in ("result.json", "report.html", "junit.xml", "model-card.md", "run.json", "attestation.dsse.json"):
        assert "SENTINEL7391" not in (out / name).read_text(), name
    assert "SENTINEL7391" not in _pdf_text(out / "report.pdf")


def test_evidence_images_only_when_asked_and_still_no_captions(signed_scan, tmp_path, monkeypatch, tiny_pipeline):
    from memaudit.tiny.memorizer import build_memorizer

    checkpoint, train, holdout, planted = build_memorizer(
        tiny_pipeline, tmp_path / "data", caption_prefix=SENTINEL + " "
    )
    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", lambda *args, **kwargs: checkpoint)
    policy = signed_scan[3][2]
    base = [
        "scan",
        "memorizer",
        "--train",
        str(train),
        "--holdout",
        str(holdout),
        "--policy",
        str(policy),
        "--feature-cache",
        str(tmp_path / "cache"),
    ]
    assert run([*base, "--out", str(tmp_path / "plain")]) == 1
    assert run([*base, "--out", str(tmp_path / "internal"), "--include-evidence-images"]) == 1
    plain = json.loads((tmp_path / "plain" / "result.json").read_text())
    internal = json.loads((tmp_path / "internal" / "result.json").read_text())
    assert plain["evidence_images"] is None
    assert sorted(item["train_id"] for item in internal["evidence_images"]) == sorted(planted)
    html = (tmp_path / "internal" / "report.html").read_text()
    assert "Evidence images (internal use only)" in html
    assert "SENTINEL7391" not in html and "SENTINEL7391" not in (tmp_path / "internal" / "result.json").read_text()


def test_report_render_reproduces_the_views_without_recomputing(signed_scan, tmp_path, capsys):
    out = signed_scan[0]
    assert run(["report", "render", str(out / "result.json"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").read_text() == (out / "report.html").read_text()
    assert (tmp_path / "junit.xml").read_text() == (out / "junit.xml").read_text()
    assert "model-index" in (tmp_path / "model-card.md").read_text()


def test_report_render_refuses_what_is_not_a_result(tmp_path, capsys):
    bogus = tmp_path / "result.json"
    bogus.write_text('{"hello": 1}')
    assert run(["report", "render", str(bogus), "--out", str(tmp_path / "o")]) == 2
    assert "not a memaudit result" in capsys.readouterr().err


def test_result_schema_exports(capsys):
    assert run(["report", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "ScanResult" and "verdict" in schema["properties"]


def test_remediation_schema_exports_and_embeds_both_scans(capsys):
    assert run(["report", "schema", "--result", "remediation"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "RemediationResult"
    assert schema["properties"]["before"]["$ref"].endswith("/ScanResult")
    assert {"schema_version", "trials", "mask", "blocks", "remediated_model"} <= set(schema["properties"])


def test_schema_of_an_unknown_result_kind_is_refused(capsys):
    assert run(["report", "schema", "--result", "audit"]) == 2
    assert "--result audit: expected one of scan, remediation" in capsys.readouterr().err


def _failing(signed_scan):
    """The signed scan's result with its extraction rule failed, as a model that copies would report it."""
    from memaudit.results.scan_result import ScanResult

    result = ScanResult.model_validate_json((signed_scan[0] / "result.json").read_text())
    rules = [
        rule.model_copy(update={"status": "fail", "message": "8 training image(s) extracted; at most 0 allowed"})
        if rule.metric.startswith("extraction.")
        else rule
        for rule in result.rules
    ]
    assert any(rule.status == "fail" for rule in rules)
    return result.model_copy(update={"rules": rules, "verdict": "fail"})


def test_each_check_leads_with_its_finding_and_names_its_run_state(signed_scan):
    """A board reads what each check found first; whether it ran is a run state, never a bare 'Status: ok'."""
    html = " ".join((signed_scan[0] / "report.html").read_text().split())
    assert "Status:</b> ok" not in html
    for heading in ("Extraction attack</h2>", "Nearest-neighbour distance</h2>"):
        section = html[html.index(heading) :]
        assert section.index("<b>Found:</b>") < section.index("For the release:") < section.index("Check ran: yes")
        assert "(whether the check itself ran, not whether a rule passed)" in section
    extraction = html[html.index("Extraction attack</h2>") :]
    assert extraction.index("<b>Found:</b>") < extraction.index("Benjamini-Hochberg")


def test_a_failed_rule_reads_as_a_failure_beside_a_check_that_ran(signed_scan):
    from memaudit.render.findings import check_finding
    from memaudit.render.html import render_html

    failing = _failing(signed_scan)
    finding = check_finding(failing, "extraction")
    assert finding.tone == "fail" and finding.run_state == "Check ran: yes, to completion"
    assert finding.meaning.startswith("This finding stands against releasing the model: rule ")
    assert "FAILED (8 training image(s) extracted; at most 0 allowed)" in finding.meaning
    html = " ".join(render_html(failing).split())
    extraction = html[html.index("Extraction attack</h2>") :]
    assert extraction.index('class="finding fail"') < extraction.index("Check ran: yes") < extraction.index("p-value")


def test_a_required_check_that_could_not_run_says_the_audit_cannot_clear(signed_scan):
    from memaudit.render.findings import check_finding

    result = _failing(signed_scan)
    broken = result.checks["nearest_neighbour"].model_copy(
        update={"status": "error", "required": True, "message": "no local weights for xrv-densenet121"}
    )
    result = result.model_copy(update={"checks": {**result.checks, "nearest_neighbour": broken}})
    finding = check_finding(result, "nearest_neighbour")
    assert finding.tone == "error" and finding.run_state == "Check ran: no, it could not run"
    assert finding.found == "Nothing was measured: no local weights for xrv-densenet121."
    assert "cannot clear the model" in finding.meaning


def test_a_rule_on_a_check_that_measured_nothing_does_not_read_as_a_pass(signed_scan):
    from memaudit.render.findings import check_finding

    result = _failing(signed_scan)
    skipped = result.checks["nearest_neighbour"].model_copy(
        update={"status": "not_applicable", "message": "no generated images to compare"}
    )
    result = result.model_copy(update={"checks": {**result.checks, "nearest_neighbour": skipped}})
    finding = check_finding(result, "nearest_neighbour")
    assert finding.tone == "note" and finding.run_state == "Check ran: no, not applicable to this audit"
    expected = "No evidence either way: rule near-copy-rate is not breached, with nothing measured"
    assert finding.meaning.startswith(expected)
    assert "passed" not in finding.meaning


def test_a_rule_judged_not_applicable_shows_n_a_in_the_rules_table_and_on_the_terminal(signed_scan):
    """A not-applicable check's rule counts as passed for the verdict but reads "n/a", never "pass" (nor in
    the pass colour)."""
    from memaudit.policy import load_policy
    from memaudit.render.html import render_html
    from memaudit.scan.judge import judge_rule

    result = _failing(signed_scan)
    skipped = result.checks["nearest_neighbour"].model_copy(
        update={"status": "not_applicable", "required": False, "message": "no generated images to compare"}
    )
    checks = {**result.checks, "nearest_neighbour": skipped}
    policy = load_policy(signed_scan[3][2]).policy
    rule = next(r for r in result.rules if r.metric.startswith("nearest_neighbour."))
    rule = judge_rule(rule.id, policy, checks)
    assert (rule.status, rule.shown_status, rule.message) == (
        "pass",
        "n/a",
        "not applicable: no generated images to compare",
    )
    rules = [rule if r.id == rule.id else r for r in result.rules]
    html = " ".join(render_html(result.model_copy(update={"checks": checks, "rules": rules})).split())
    assert '<span class="status na">n/a</span>' in html  # grey: neither the pass colour nor the fail one
