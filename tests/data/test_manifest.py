"""Manifests in CSV, JSONL and folder form; errors that name the file and row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memaudit.data import ImageCaptionDataset, read_manifest
from memaudit.errors import DataError
from tests.images import write_png


def _images(folder, count=3):
    for index in range(count):
        write_png(folder / f"img{index}.png", np.full((4, 4), index * 40, dtype=np.uint8))


def test_the_three_manifest_forms_read_the_same_records(tmp_path):
    _images(tmp_path)
    rows = [{"file_name": f"img{i}.png", "text": f"caption {i}", "patient_id": f"p{i // 2}"} for i in range(3)]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "train.csv").write_text(
        "file_name,text,patient_id\n" + "".join(f"{r['file_name']},{r['text']},{r['patient_id']}\n" for r in rows)
    )
    (tmp_path / "train.jsonl").write_text((tmp_path / "metadata.jsonl").read_text())
    forms = [read_manifest(tmp_path), read_manifest(tmp_path / "train.csv"), read_manifest(tmp_path / "train.jsonl")]
    records = [[(r.id, r.file_name, r.text, r.patient_id) for r in form[2]] for form in forms]
    assert records[0] == records[1] == records[2]
    assert records[0][0] == ("img0.png", "img0.png", "caption 0", "p0")
    assert [r.row for r in forms[1][2]] == [2, 3, 4]  # CSV rows count the header line


def test_missing_image_names_the_row(tmp_path):
    _images(tmp_path, 1)
    (tmp_path / "metadata.jsonl").write_text(
        json.dumps({"file_name": "img0.png", "text": "a"})
        + "\n"
        + json.dumps({"file_name": "gone.png", "text": "b"})
        + "\n"
    )
    with pytest.raises(DataError, match=r"metadata.jsonl, row 2: image 'gone.png' not found"):
        ImageCaptionDataset(tmp_path)


def test_missing_column_is_named(tmp_path):
    (tmp_path / "d.csv").write_text("file_name,caption\na.png,x\n")
    with pytest.raises(DataError, match="missing column.*text"):
        read_manifest(tmp_path / "d.csv")


def test_row_without_file_name_is_named(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"file_name": "a.png", "text": "x"}\n{"text": "y"}\n')
    with pytest.raises(DataError, match="d.jsonl, row 2: missing file_name"):
        read_manifest(tmp_path / "d.jsonl")


def test_bad_json_line_is_named(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"file_name": "a.png", "text": "x"}\n{oops\n')
    with pytest.raises(DataError, match="d.jsonl, row 2: not valid JSON"):
        read_manifest(tmp_path / "d.jsonl")


def test_duplicate_ids_are_refused(tmp_path):
    (tmp_path / "d.jsonl").write_text(
        '{"id": "x", "file_name": "a.png", "text": "1"}\n{"id": "x", "file_name": "b.png", "text": "2"}\n'
    )
    with pytest.raises(DataError, match="row 2: id 'x' repeats row 1"):
        read_manifest(tmp_path / "d.jsonl")


def test_folder_without_metadata_is_explained(tmp_path):
    with pytest.raises(DataError, match="needs metadata.jsonl"):
        read_manifest(tmp_path)


def test_unsupported_manifest_type(tmp_path):
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported manifest type .txt"):
        read_manifest(tmp_path / "d.txt")
