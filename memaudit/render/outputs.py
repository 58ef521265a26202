"""The files of one scan: result.json (canonical), junit.xml, and run.json (when and how it ran)."""

from __future__ import annotations

import json
from pathlib import Path

from memaudit.render.files import write_atomic
from memaudit.render.junit import junit_xml
from memaudit.scan.result import ScanResult


def write_scan_outputs(result: ScanResult, out: Path, run_record: dict) -> list[Path]:
    out = Path(out)
    return [
        write_atomic(out / "result.json", result.to_json()),
        write_atomic(out / "junit.xml", junit_xml(result)),
        write_atomic(out / "run.json", json.dumps(run_record, indent=2) + "\n"),
    ]
