"""Image-caption manifests: CSV, JSONL, or a folder with metadata.jsonl (file_name, text[, id, patient_id, split])."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from memaudit.errors import DataError

REQUIRED_FIELDS = ("file_name", "text")
OPTIONAL_FIELDS = ("id", "patient_id", "split")
FOLDER_MANIFEST = "metadata.jsonl"


class Record(BaseModel):
    """One manifest row. ``row`` is the 1-based line number in the manifest, for error messages."""

    model_config = ConfigDict(frozen=True)

    id: str
    file_name: str
    text: str
    patient_id: str | None = None
    split: str | None = None
    row: int


def _record(raw: dict, *, manifest: Path, row: int) -> Record:
    # An empty caption is allowed (an unconditional sample); an empty or absent file name is not.
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) is None or (name == "file_name" and not raw[name])]
    if missing:
        raise DataError(f"{manifest}, row {row}: missing {', '.join(missing)}")
    values = {name: raw.get(name) for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)}
    for name, value in values.items():
        if value is not None and not isinstance(value, str | int):
            raise DataError(f"{manifest}, row {row}: {name} must be text, got {type(value).__name__}")
    values = {name: (str(value) if value not in (None, "") else None) for name, value in values.items()}
    values["text"] = values["text"] or ""
    values["id"] = values["id"] or values["file_name"]
    return Record(**values, row=row)


def _read_jsonl(path: Path) -> list[Record]:
    records = []
    with path.open(encoding="utf-8-sig") as handle:  # -sig: a byte-order mark (Excel, Notepad) is read
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, row {row}: not valid JSON ({error.msg})") from error
            if not isinstance(raw, dict):
                raise DataError(f"{path}, row {row}: expected a JSON object")
            records.append(_record(raw, manifest=path, row=row))
    return records


def _read_csv(path: Path) -> list[Record]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        absent = [name for name in REQUIRED_FIELDS if name not in header]
        if absent:
            raise DataError(f"{path}: missing column(s) {', '.join(absent)}; found {', '.join(header) or 'none'}")
        # DictReader counts physical lines; the header is line 1.
        return [_record(raw, manifest=path, row=reader.line_num) for raw in reader]


def read_manifest(path: Path | str) -> tuple[Path, Path, list[Record]]:
    """(manifest file, folder that image paths are relative to, records) of a dataset path."""
    path = Path(path)
    if path.is_dir():
        manifest = path / FOLDER_MANIFEST
        if not manifest.is_file():
            raise DataError(f"{path}: a dataset folder needs {FOLDER_MANIFEST} (file_name, text per line)")
    elif path.is_file():
        manifest = path
    else:
        raise DataError(f"{path}: no such dataset file or folder")
    suffix = manifest.suffix.lower()
    readers = {".jsonl": _read_jsonl, ".csv": _read_csv}
    if suffix not in readers:
        raise DataError(f"{manifest}: unsupported manifest type {suffix or '(none)'}; use .csv, .jsonl or a folder")
    try:
        records = readers[suffix](manifest)
    except UnicodeDecodeError as error:
        raise DataError(f"{manifest}: not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8") from error
    except OSError as error:
        raise DataError(f"{manifest}: cannot read ({error.strerror or error})") from error
    if not records:
        raise DataError(f"{manifest}: the manifest has no rows")
    seen: dict[str, int] = {}
    for record in records:
        if record.id in seen:
            raise DataError(f"{manifest}, row {record.row}: id {record.id!r} repeats row {seen[record.id]}")
        seen[record.id] = record.row
    return manifest, manifest.parent, records


IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".dcm", ".dicom"})


def read_image_folder(path: Path | str) -> tuple[Path, Path, list[Record]]:
    """A folder of images to audit (e.g. synthetic data before release): its metadata.jsonl if it has
    one, otherwise every image file below it, sorted, with empty captions."""
    path = Path(path)
    if (path / FOLDER_MANIFEST).is_file():
        return read_manifest(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a folder of images")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    records = [
        Record(id=file.relative_to(path).as_posix(), file_name=file.relative_to(path).as_posix(), text="", row=row)
        for row, file in enumerate(files, start=1)
    ]
    return path, path, records
