"""Publish what a run found: write every file of a result atomically, then sign them when given a key.

The one "write the outputs and sign them" step that `memaudit scan`, the demo and `memaudit remediate`
share, so that a signed folder always holds the same files in the same shape.
"""

from __future__ import annotations

from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.attest.sign import ATTESTATION_NAME, sign_scan, sign_statement
from memaudit.attest.statement import remediation_statement
from memaudit.render.outputs import SIGNED_REPORTS, write_scan_outputs
from memaudit.render.pdf import render_pdf
from memaudit.render.remediation_report import render_remediation_html
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import RunRecord, ScanResult


def publish_scan(result: ScanResult, run: RunRecord, out: Path, *, sign_key: Path | None = None) -> list[Path]:
    """result.json, run.json and every view in ``out``; with ``sign_key``, attestation.dsse.json over them."""
    out = Path(out)
    written = write_scan_outputs(result, out, run)
    if sign_key is not None:
        written.append(sign_scan(
            result, [out / name for name in SIGNED_REPORTS], private_key_path=sign_key, out=out
        ))
    return written


def publish_remediation(
    result: RemediationResult, out: Path, *, records: list[Path], sign_key: Path | None = None
) -> list[Path]:
    """remediation.json and its HTML/PDF report in ``out``; with ``sign_key``, an attestation over the
    remediated model's weights, these files and ``records`` (mask.json, provenance.json, ...).

    The before/ and after/ scans are published (and signed) on their own with `publish_scan`.
    """
    out = Path(out)
    html = render_remediation_html(result)
    written = [
        write_atomic(out / "remediation.json", result.to_json()),
        write_atomic(out / "remediation.html", html),
        write_atomic(out / "remediation.pdf", render_pdf(html)),
    ]
    if sign_key is not None:
        statement = remediation_statement(result, [*written, *records])
        written.append(sign_statement(statement, sign_key, out / ATTESTATION_NAME))
    return written
