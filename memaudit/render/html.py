"""The HTML report: a self-contained page (inline CSS, plots as data URIs, nothing fetched)."""

from __future__ import annotations

from collections import Counter

import yaml

from memaudit.metrics.triage import DETECTORS
from memaudit.paths import TEMPLATES_DIR
from memaudit.render.findings import check_finding
from memaudit.render.plots import all_plots, png_data_uri
from memaudit.results.scan_result import AttackedPrompt, RunRecord, ScanResult

VERDICT_WORDS = {"pass": "PASSED", "fail": "FAILED", "error": "INCOMPLETE: the audit could not finish"}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ids(ids: list[str], limit: int = 6) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _reasons(attacked: list[AttackedPrompt]) -> list[tuple[str, int]]:
    return sorted(Counter(a.reason for a in attacked).items())


def verdict_sentence(result: ScanResult) -> str:
    """The verdict in words a governance board reads: which rules, by how much."""
    failed = [r for r in result.rules if r.status == "fail"]
    errors = [r for r in result.rules if r.status == "error"]
    warned = [r for r in result.rules if r.status == "warn"]
    subject = "the model" if result.mode == "model" else "the image release"
    if result.verdict == "error":
        parts = "; ".join(f"{r.id}: {r.message}" for r in errors)
        return f"Required checks could not run, so {subject} is neither cleared nor failed. {parts}."
    if result.verdict == "fail":
        parts = "; ".join(f"{r.id} ({r.metric}): {r.message}" for r in failed)
        return (
            f"{subject.capitalize()} violates {len(failed)} of {len(result.rules)} rules of policy "
            f"'{result.policy.name}'. {parts}."
        )
    tail = f" {len(warned)} warning(s): {', '.join(r.id for r in warned)}." if warned else ""
    return f"{subject.capitalize()} meets all {len(result.rules)} rules of policy '{result.policy.name}'.{tail}"


def render_html(result: ScanResult, run: RunRecord | None = None) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=jinja2.StrictUndefined
    )
    noise = result.checks.get("noise_magnitude")
    flagged = []
    if noise is not None and noise.noise_magnitude is not None:
        flagged = sorted((p for p in noise.noise_magnitude.train if p.flagged), key=lambda p: -p.score)[:20]
    return environment.get_template("report.html.j2").render(
        result=result,
        run=run,
        plots=all_plots(result),
        verdict_word=VERDICT_WORDS[result.verdict],
        verdict_sentence=verdict_sentence(result),
        flagged_prompts=flagged,
        policy_yaml=yaml.safe_dump(result.policy.content, sort_keys=True),
        fmt=_fmt,
        ids=_ids,
        reasons=_reasons,
        data_uri=png_data_uri,
        detectors=DETECTORS,
        finding=lambda check: check_finding(result, check),
    )
