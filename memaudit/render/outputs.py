"""The views of a ScanResult, one renderer per file, all with one signature (result, run) -> text or bytes,
and the writing of a scan's files: result.json (canonical), run.json and every view, atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.render.html import render_html
from memaudit.render.junit import junit_xml
from memaudit.render.model_card import model_card_snippet
from memaudit.render.pdf import render_report_pdf
from memaudit.results.scan_result import RunRecord, ScanResult

Renderer = Callable[[ScanResult, RunRecord | None], str | bytes]

# File name -> renderer. A new output format is one function and one line here.
VIEWS: dict[str, Renderer] = {
    "junit.xml": junit_xml,
    "report.html": render_html,
    "report.pdf": render_report_pdf,
    "model-card.md": model_card_snippet,
}

# Every file a scan writes (an attestation comes on top when signed).
SCAN_FILES = ("result.json", "run.json", *VIEWS)

# The files an attestation covers, besides the checkpoint's weight files.
SIGNED_REPORTS = ("result.json", "report.html", "report.pdf")


def write_views(result: ScanResult, out: Path, run: RunRecord | None = None) -> list[Path]:
    """The views of a result (re-renderable at any time without recomputing)."""
    return [write_atomic(Path(out) / name, render(result, run)) for name, render in VIEWS.items()]


def write_scan_outputs(result: ScanResult, out: Path, run: RunRecord) -> list[Path]:
    out = Path(out)
    written = [
        write_atomic(out / "result.json", result.to_json()),
        write_atomic(out / "run.json", run.model_dump_json(indent=2) + "\n"),
    ]
    return written + write_views(result, out, run)
