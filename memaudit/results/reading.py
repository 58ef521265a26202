"""Read results back from disk, refusing what memaudit did not write or cannot read, by name."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError

from memaudit.errors import MemauditError
from memaudit.results.scan_result import RESULT_SCHEMA_VERSION, RunRecord, ScanResult

# 2.1-2.6 added optional fields
SUPPORTED_SCAN_VERSIONS = (*(f"2.{minor}" for minor in range(11)), RESULT_SCHEMA_VERSION)


def _read_json(path: Path, what: str) -> object:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise MemauditError(f"{path}: cannot read ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise MemauditError(f"{path}: not a memaudit {what} (not UTF-8 text: {error.reason})") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise MemauditError(f"{path}: not a memaudit {what} (not JSON: {error})") from error


def _validate(model: type[BaseModel], data: object, *, path: Path, what: str):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise MemauditError(
            f"{path}: not a memaudit {what} ({error.error_count()} problems; first: {where}: {first['msg']})"
        ) from error


def read_scan_result(path: Path) -> ScanResult:
    data = _read_json(path, "result")
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and "schema_version" in data and version not in SUPPORTED_SCAN_VERSIONS:
        raise MemauditError(
            f"{path}: result schema version {version!r} is not one this memaudit reads "
            f"({', '.join(SUPPORTED_SCAN_VERSIONS)}); render it with the memaudit that wrote it"
        )
    return _validate(ScanResult, data, path=path, what="result")


def read_run_record(path: Path) -> RunRecord:
    return _validate(RunRecord, _read_json(path, "run record"), path=path, what="run record")
