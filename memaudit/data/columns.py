"""How a manifest's own columns become memaudit's fields: a column mapping and patient ids read from file paths.

A ``DataConfig`` travels with a dataset path (``--columns``/``--patient-from-path`` on the command
line, or a data config YAML file given in place of the manifest), so every command that reads a
manifest reads it the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from memaudit.errors import DataError

FIELDS = ("file_name", "text", "id", "patient_id", "split")
PATIENT_GROUP = "patient_id"
DATA_CONFIG_SUFFIXES = (".yaml", ".yml")


class DataConfig(BaseModel):
    """``columns``: memaudit field -> the manifest's column holding it; ``patient_from_path``: a regular
    expression with a ``(?P<patient_id>...)`` group, searched in each row's file name; ``image_root``: the
    folder file names are relative to (relative to the manifest; default: the manifest's folder)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: dict[str, str] = {}
    patient_from_path: str | None = None
    image_root: str | None = None

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        for field, column in columns.items():
            if field not in FIELDS:
                known = ", ".join(FIELDS)
                raise ValueError(f"unknown field {field!r} in the column mapping; memaudit's fields: {known}")
            if not column:
                raise ValueError(f"field {field!r} is mapped to an empty column name")
        taken: dict[str, str] = {}
        for field, column in columns.items():
            if column in taken:
                raise ValueError(f"column {column!r} is mapped to both {taken[column]!r} and {field!r}")
            taken[column] = field
        return columns

    @field_validator("patient_from_path")
    @classmethod
    def _named_group(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"patient_from_path '{pattern}' is not a regular expression ({error})") from error
        if PATIENT_GROUP not in compiled.groupindex:
            raise ValueError(
                f"patient_from_path '{pattern}' has no (?P<{PATIENT_GROUP}>...) group naming the patient id"
            )
        return pattern

    @model_validator(mode="after")
    def _one_patient_source(self) -> DataConfig:
        if self.patient_from_path is not None and PATIENT_GROUP in self.columns:
            raise ValueError("give the patient id as a column (patient_id=...) or by patient_from_path, not both")
        return self

    def __bool__(self) -> bool:
        return bool(self.columns or self.patient_from_path or self.image_root)

    def column(self, field: str) -> str:
        """The manifest column that holds ``field``."""
        return self.columns.get(field, field)

    def fields(self, raw: dict) -> dict:
        """A manifest row (by its own column names) as memaudit's fields. A mapped field's own name in the
        row is ignored: the mapping says where that field is."""
        return {field: raw.get(self.column(field)) for field in FIELDS}

    def patient_id(self, file_name: str) -> str | None:
        """The patient id in ``file_name``, or None where the pattern does not match it."""
        if self.patient_from_path is None:
            return None
        found = re.search(self.patient_from_path, file_name)
        return found.group(PATIENT_GROUP) if found else None


def parse_columns(text: str) -> dict[str, str]:
    """``file_name=path,text=annotated_prompt`` -> ``{"file_name": "path", "text": "annotated_prompt"}``."""
    columns: dict[str, str] = {}
    for part in text.split(","):
        field, equals, column = part.partition("=")
        field, column = field.strip(), column.strip()
        if not equals or not field or not column:
            raise DataError(f"--columns {text!r}: {part.strip()!r} is not FIELD=COLUMN (e.g. text=annotated_prompt)")
        if field in columns:
            raise DataError(f"--columns {text!r}: field {field!r} is given twice")
        columns[field] = column
    return columns


def data_config(*, columns: str | None = None, patient_from_path: str | None = None) -> DataConfig:
    """The command line's ``--columns`` and ``--patient-from-path`` as a DataConfig (errors name the option)."""
    try:
        return DataConfig(columns=parse_columns(columns) if columns else {}, patient_from_path=patient_from_path)
    except ValidationError as error:
        raise DataError("; ".join(_messages(error)).replace("patient_from_path", "--patient-from-path")) from error


def is_data_config_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in DATA_CONFIG_SUFFIXES


def read_data_config_file(path: Path) -> tuple[Path, DataConfig]:
    """(manifest, config) of a data config YAML: ``manifest`` (relative to the YAML file), ``columns``,
    ``patient_from_path``, ``image_root``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DataError(f"{path}: cannot read the data config ({error})") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("manifest"), str):
        raise DataError(f"{path}: a data config is a YAML mapping with manifest: (a CSV, JSONL or folder path)")
    manifest = path.parent / raw.pop("manifest")
    if is_data_config_file(manifest):
        raise DataError(f"{path}: manifest {manifest} is another data config; name the CSV, JSONL or folder")
    try:
        return manifest, DataConfig.model_validate(raw)
    except ValidationError as error:
        raise DataError(f"{path}: invalid data config: " + "; ".join(_messages(error))) from error


def _messages(error: ValidationError) -> list[str]:
    messages = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            key = ".".join(map(str, item["loc"]))
            message = f"unknown key {key!r} (keys: manifest, columns, patient_from_path, image_root)"
        messages.append(message)
    return messages
