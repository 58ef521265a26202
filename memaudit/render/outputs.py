"""All files of one scan, written atomically: result.json (canonical), junit.xml, run.json,
report.html, report.pdf and model-card.md; the signer then covers the report files."""

from __future__ import annotations

from pathlib import Path

from memaudit.render.files import write_atomic
from memaudit.render.html import render_html
from memaudit.render.junit import junit_xml
from memaudit.render.model_card import model_card_snippet
from memaudit.render.pdf import render_pdf
from memaudit.scan.result import RunRecord, ScanResult

# The files an attestation covers, besides the checkpoint's weight files.
SIGNED_REPORTS = ("result.json", "report.html", "report.pdf")


def write_views(result: ScanResult, out: Path, run: RunRecord | None = None) -> list[Path]:
    """The views of a result (re-renderable at any time without recomputing)."""
    out = Path(out)
    html = render_html(result, run)
    model_name = Path(result.model.source).name if result.model else "synthetic-image-release"
    return [
        write_atomic(out / "junit.xml", junit_xml(result)),
        write_atomic(out / "report.html", html),
        write_atomic(out / "report.pdf", render_pdf(html)),
        write_atomic(out / "model-card.md", model_card_snippet(result, model_name)),
    ]


def write_scan_outputs(result: ScanResult, out: Path, run: RunRecord) -> list[Path]:
    out = Path(out)
    written = [
        write_atomic(out / "result.json", result.to_json()),
        write_atomic(out / "run.json", run.model_dump_json(indent=2) + "\n"),
    ]
    return written + write_views(result, out, run)
