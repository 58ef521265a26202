"""Image-caption manifests: CSV, JSONL, or a folder with metadata.jsonl (file_name, text[, id, patient_id, split]);
other column names through a DataConfig, or a data config YAML naming the manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from memaudit.data.columns import DataConfig, is_data_config_file, read_data_config_file
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


def _named(field: str, config: DataConfig) -> str:
    """A field as the user knows it: ``text (column 'annotated_prompt')`` when mapped."""
    column = config.column(field)
    return field if column == field else f"{field} (column {column!r})"


def _record(raw: dict, *, manifest: Path, row: int, config: DataConfig) -> Record:
    raw = config.fields(raw)
    # An empty caption is allowed (an unconditional sample); an empty or absent file name is not.
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) is None or (name == "file_name" and not raw[name])]
    if missing:
        raise DataError(f"{manifest}, row {row}: missing {', '.join(_named(name, config) for name in missing)}")
    values = {name: raw.get(name) for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)}
    for name, value in values.items():
        if value is not None and not isinstance(value, str | int):
            raise DataError(f"{manifest}, row {row}: {_named(name, config)} must be text, got {type(value).__name__}")
    values = {name: (str(value) if value not in (None, "") else None) for name, value in values.items()}
    values["text"] = values["text"] or ""
    values["id"] = values["id"] or values["file_name"]
    if config.patient_from_path is not None:
        values["patient_id"] = config.patient_id(values["file_name"])
        if values["patient_id"] is None:
            raise DataError(
                f"{manifest}, row {row}: patient_from_path '{config.patient_from_path}' does not match "
                f"file name {values['file_name']!r}"
            )
    return Record(**values, row=row)


def _check_mapped_columns(path: Path, present: set[str], config: DataConfig) -> None:
    """A mapping that names a column the manifest lacks is an error, not a field left empty."""
    absent = [f"{field}={column}" for field, column in config.columns.items() if column not in present]
    if absent:
        raise DataError(
            f"{path}: the column mapping names column(s) the manifest lacks: {', '.join(absent)}; "
            f"found {', '.join(sorted(present)) or 'none'}"
        )


def _read_jsonl(path: Path, config: DataConfig) -> list[Record]:
    records, present = [], set()
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
            present.update(raw)
            records.append(_record(raw, manifest=path, row=row, config=config))
    _check_mapped_columns(path, present, config)
    return records


def _read_csv(path: Path, config: DataConfig) -> list[Record]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        _check_mapped_columns(path, set(header), config)
        absent = [_named(name, config) for name in REQUIRED_FIELDS if config.column(name) not in header]
        if absent:
            raise DataError(f"{path}: missing column(s) {', '.join(absent)}; found {', '.join(header) or 'none'}")
        # DictReader counts physical lines; the header is line 1.
        return [_record(raw, manifest=path, row=reader.line_num, config=config) for raw in reader]


def read_manifest(path: Path | str, config: DataConfig | None = None) -> tuple[Path, Path, list[Record]]:
    """(manifest file, folder that image paths are relative to, records) of a dataset path: a CSV or
    JSONL manifest, a folder with metadata.jsonl, or a data config YAML naming one of those. ``config``
    maps the manifest's columns (not with a data config file, which holds its own)."""
    path = Path(path)
    config = config or DataConfig()
    if is_data_config_file(path):
        if config:
            raise DataError(f"{path}: a data config file holds its own mapping; drop --columns/--patient-from-path")
        path, config = read_data_config_file(path)
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
        records = readers[suffix](manifest, config)
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
    root = manifest.parent / config.image_root if config.image_root else manifest.parent
    return manifest, root, records


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
