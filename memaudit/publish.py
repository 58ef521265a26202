"""Publish what a run found: write every file of a result, sign them when given a key, and put the set
into the output folder all at once.

The one "write the outputs and sign them" step that `memaudit scan`, the demo and `memaudit remediate`
share, so that a signed folder always holds the same files in the same shape. The files are written
into a folder beside ``out`` and moved in last (``memaudit.atomic_files.staged_folder``): a run that
fails while writing (a full disk) leaves ``out`` as it was, never a result.json or junit.xml without
the rest of its set, and says which folder it could not write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from memaudit.atomic_files import staged_folder, write_atomic
from memaudit.attest.sign import ATTESTATION_NAME, sign_scan, sign_statement
from memaudit.attest.statement import remediation_statement
from memaudit.errors import MemauditError
from memaudit.render.outputs import SCAN_FILES, SIGNED_REPORTS, write_scan_outputs
from memaudit.render.pdf import render_pdf
from memaudit.render.remediation_report import render_remediation_html
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import RunRecord, ScanResult

REMEDIATION_FILES = ("remediation.json", "remediation.html", "remediation.pdf")


@dataclass(frozen=True)
class Published:
    """What a publish left in its folder."""

    folder: Path
    files: list[Path]  # this run's files, in ``folder``
    others: list[Path]  # entries this run did not write and left alone (a user's files, an earlier run's folders)


@contextmanager
def _publishing(out: Path, owned: tuple[str, ...]) -> Iterator[Path]:
    """A staging folder for ``out``'s files; an OSError (full disk, no permission) names ``out``."""
    try:
        with staged_folder(out, owned=owned) as staging:
            yield staging
    except OSError as error:
        writing = f", writing {Path(error.filename).name}" if error.filename else ""
        raise MemauditError(
            f"{out}: the reports could not be written ({error.strerror or error}{writing}); "
            f"{out} holds what it held before this run"
        ) from error


def _published(out: Path, staged: list[Path], *, ours: tuple[str, ...] = ()) -> Published:
    names = {path.name for path in staged}
    others = sorted(path for path in out.iterdir() if path.name not in names and path.name not in ours)
    return Published(folder=out, files=[out / path.name for path in staged], others=others)


def publish_scan(
    result: ScanResult,
    run: RunRecord,
    out: Path,
    *,
    sign_key: Path | None = None,
    replace: Mapping[str, str] | None = None,
    ours: tuple[str, ...] = (),
) -> Published:
    """result.json, run.json and every view in ``out``; with ``sign_key``, attestation.dsse.json over them.

    ``replace``: files that take the place of the rendered view of that name (the gate's junit.xml, with
    both models' rules). All or nothing: after it returns, ``out`` holds exactly this run's scan files
    (a scan file of an earlier run that this one does not write, such as an attestation when this run
    is unsigned, is removed); entries that are not scan files are left alone and listed in ``others``,
    except ``ours`` (names this run wrote on its own, such as the gate's remediation/).
    """
    out = Path(out)
    with _publishing(out, (*SCAN_FILES, ATTESTATION_NAME)) as staging:
        written = write_scan_outputs(result, staging, run)
        for name, text in (replace or {}).items():
            write_atomic(staging / name, text)
        if sign_key is not None:
            reports = [staging / name for name in SIGNED_REPORTS]
            written.append(sign_scan(result, reports, private_key_path=sign_key, out=staging))
    return _published(out, written, ours=ours)


def publish_remediation(
    result: RemediationResult, out: Path, *, records: list[Path], sign_key: Path | None = None
) -> Published:
    """remediation.json and its HTML/PDF report in ``out``, all or nothing; with ``sign_key``, an
    attestation over the remediated model's weights, these files and ``records`` (mask.json,
    provenance.json, ...).

    The before/ and after/ scans are published (and signed) on their own with `publish_scan`; the
    remediation's other records and folders are the run's own (``others`` lists what is not).
    """
    out = Path(out)
    html = render_remediation_html(result)
    with _publishing(out, (*REMEDIATION_FILES, ATTESTATION_NAME)) as staging:
        contents = (result.to_json(), html, render_pdf(html))
        pairs = zip(REMEDIATION_FILES, contents, strict=True)
        written = [write_atomic(staging / name, content) for name, content in pairs]
        if sign_key is not None:
            statement = remediation_statement(result, [*written, *records])
            written.append(sign_statement(statement, sign_key, staging / ATTESTATION_NAME))
    return _published(out, written, ours=tuple(path.name for path in records))
