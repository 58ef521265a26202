"""Column mappings and patient ids from file paths: the recipes of docs/data.md on tiny manifests in the
layouts of MIMIC-CXR-JPG (as CheXGenBench ships its splits), CheXpert and ChestX-ray14."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memaudit.data import DataConfig, ImageCaptionDataset, data_config
from memaudit.errors import DataError
from tests.images import write_png


def _image(path, value=0):
    write_png(path, np.full((4, 4), value, dtype=np.uint8))


def _records(dataset):
    return [(r.id, r.file_name, r.text, r.patient_id) for r in dataset.records]


def _mimic(root):
    """CheXGenBench's MIMIC-CXR split: path, annotated_prompt, subject_id (and columns memaudit ignores)."""
    rows = [
        ("files/p10/p10000032/s50414267/02aa804e.jpg", "Small left effusion.", "10000032"),
        ("files/p10/p10000032/s53189527/2a2277a9.jpg", "No acute process.", "10000032"),
        ("files/p11/p11000011/s51029426/8061d6a4.jpg", "Cardiomegaly.", "11000011"),
    ]
    for index, (path, _, _) in enumerate(rows):
        _image(root / path, index * 50)
    lines = ["dicom_id,path,annotated_prompt,subject_id,ViewPosition"]
    lines += [f'{p.rsplit("/", 1)[1][:8]},{p},"{t}",{s},PA' for p, t, s in rows]
    (root / "mimic_train.csv").write_text("\n".join(lines) + "\n")
    return root / "mimic_train.csv"


def test_a_mapped_manifest_reads_the_records_of_the_rewritten_one(tmp_path):
    manifest = _mimic(tmp_path)
    mapped = ImageCaptionDataset(
        manifest, config=data_config(columns="file_name=path,text=annotated_prompt,patient_id=subject_id")
    )
    rewritten = tmp_path / "rewritten.jsonl"
    rewritten.write_text(
        "".join(
            json.dumps({"file_name": r.file_name, "text": r.text, "patient_id": r.patient_id}) + "\n"
            for r in mapped.records
        )
    )
    plain = ImageCaptionDataset(rewritten)
    assert _records(mapped) == _records(plain)
    assert mapped.digest == plain.digest
    assert _records(mapped)[0] == (
        "files/p10/p10000032/s50414267/02aa804e.jpg",
        "files/p10/p10000032/s50414267/02aa804e.jpg",
        "Small left effusion.",
        "10000032",
    )


def test_mimic_patient_ids_from_the_path_match_subject_id(tmp_path):
    manifest = _mimic(tmp_path)
    by_column = ImageCaptionDataset(
        manifest, config=data_config(columns="file_name=path,text=annotated_prompt,patient_id=subject_id")
    )
    by_path = ImageCaptionDataset(
        manifest,
        config=data_config(
            columns="file_name=path,text=annotated_prompt", patient_from_path=r"/p(?P<patient_id>\d{8})/"
        ),
    )
    assert [r.patient_id for r in by_path.records] == [r.patient_id for r in by_column.records]


def test_chexpert_patient_ids_from_the_path(tmp_path):
    # CheXpert: CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg, relative to the CSV's folder.
    paths = [
        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg",
        "CheXpert-v1.0-small/train/patient00001/study2/view1_frontal.jpg",
        "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg",
    ]
    for index, path in enumerate(paths):
        _image(tmp_path / path, index * 60)
    (tmp_path / "train.csv").write_text(
        "Path,Sex,Age,report\n" + "".join(f"{p},Female,60,finding {i}\n" for i, p in enumerate(paths))
    )
    dataset = ImageCaptionDataset(
        tmp_path / "train.csv",
        config=data_config(columns="file_name=Path,text=report", patient_from_path=r"patient(?P<patient_id>\d+)"),
    )
    assert [r.patient_id for r in dataset.records] == ["00001", "00001", "00002"]
    assert dataset.captions == ["finding 0", "finding 1", "finding 2"]


def test_chestxray14_through_a_data_config_file(tmp_path):
    # Data_Entry_2017.csv names images by file name only; they live in images/ beside it. Column names
    # have spaces, so the mapping lives in a data config YAML given in place of the manifest.
    for index, name in enumerate(["00000001_000.png", "00000001_001.png", "00000002_000.png"]):
        _image(tmp_path / "images" / name, index * 70)
    (tmp_path / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID\n"
        "00000001_000.png,Cardiomegaly,0,1\n00000001_001.png,Cardiomegaly|Emphysema,1,1\n"
        "00000002_000.png,No Finding,0,2\n"
    )
    (tmp_path / "cxr14.yaml").write_text(
        "manifest: Data_Entry_2017.csv\nimage_root: images\n"
        "columns: {file_name: Image Index, text: Finding Labels}\n"
        "patient_from_path: '^(?P<patient_id>\\d{8})_'\n"
    )
    dataset = ImageCaptionDataset(tmp_path / "cxr14.yaml")
    assert [r.patient_id for r in dataset.records] == ["00000001", "00000001", "00000002"]
    assert dataset.captions[1] == "Cardiomegaly|Emphysema"
    assert dataset.image_path(dataset.records[2]) == tmp_path / "images" / "00000002_000.png"
    by_column = ImageCaptionDataset(
        tmp_path / "Data_Entry_2017.csv",
        config=DataConfig(
            columns={"file_name": "Image Index", "text": "Finding Labels", "patient_id": "Patient ID"},
            image_root="images",
        ),
    )
    assert [r.patient_id for r in by_column.records] == ["1", "1", "2"]


def test_jsonl_mapping(tmp_path):
    _image(tmp_path / "a.png")
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.png", "report": "r", "subject": 7}) + "\n")
    dataset = ImageCaptionDataset(
        tmp_path / "m.jsonl", config=data_config(columns="file_name=image,text=report,patient_id=subject")
    )
    assert _records(dataset) == [("a.png", "a.png", "r", "7")]


@pytest.mark.parametrize(
    ("columns", "pattern", "message"),
    [
        ("file_name=path,caption=annotated_prompt", None, "unknown field 'caption'"),
        ("file_name=path,text", None, "'text' is not FIELD=COLUMN"),
        ("text=a,text=b", None, "field 'text' is given twice"),
        ("file_name=path,text=path", None, "column 'path' is mapped to both"),
        (None, r"patient(\d+)", "has no (?P<patient_id>...) group"),
        (None, r"patient(?P<patient_id>\d+", "is not a regular expression"),
        ("patient_id=subject_id", r"p(?P<patient_id>\d+)", "not both"),
    ],
)
def test_bad_mappings_name_what_is_wrong(columns, pattern, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        data_config(columns=columns, patient_from_path=pattern)


def test_a_mapping_naming_an_absent_column_names_it(tmp_path):
    manifest = _mimic(tmp_path)
    with pytest.raises(DataError, match="lacks: patient_id=subject"):
        ImageCaptionDataset(
            manifest, config=data_config(columns="file_name=path,text=annotated_prompt,patient_id=subject")
        )
    with pytest.raises(DataError, match=r"missing column\(s\) text \(column 'text'\)|missing column\(s\) text"):
        ImageCaptionDataset(manifest, config=data_config(columns="file_name=path"))


def test_a_pattern_that_misses_a_file_names_the_row(tmp_path):
    manifest = _mimic(tmp_path)
    with pytest.raises(DataError, match=r"row 4: patient_from_path .* does not match file name 'files/p11"):
        ImageCaptionDataset(
            manifest,
            config=data_config(
                columns="file_name=path,text=annotated_prompt", patient_from_path=r"p(?P<patient_id>10\d+)/"
            ),
        )


def test_bad_data_config_files_name_the_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("manifest: m.csv\ncolums: {text: report}\n")
    with pytest.raises(DataError, match="bad.yaml: invalid data config: unknown key 'colums'"):
        ImageCaptionDataset(tmp_path / "bad.yaml")
    (tmp_path / "none.yaml").write_text("columns: {text: report}\n")
    with pytest.raises(DataError, match="none.yaml: a data config is a YAML mapping with manifest"):
        ImageCaptionDataset(tmp_path / "none.yaml")
