"""The PDF report: the HTML report printed by weasyprint (PDF/A-3b, so archives can keep it)."""

from __future__ import annotations

from memaudit.render.html import render_html
from memaudit.results.scan_result import RunRecord, ScanResult


def render_pdf(html: str) -> bytes:
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html).write_pdf(pdf_variant="pdf/a-3b")


def render_report_pdf(result: ScanResult, run: RunRecord | None = None) -> bytes:
    return render_pdf(render_html(result, run))
