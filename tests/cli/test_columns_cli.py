"""--columns and --patient-from-path on the command line: a manifest in its own column names scans to the
same result.json as the manifest rewritten to memaudit's names, and a bad mapping exits 2 naming it."""

from __future__ import annotations

import csv
import json

import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from tests.scan.test_resume import POLICY, write_scan_data


def _as_csv(folder, name: str, columns: dict[str, str]) -> None:
    """folder/metadata.jsonl rewritten as folder/``name`` with memaudit's fields under ``columns``' names."""
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    with (folder / name).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[columns.get(f, f) for f in ("file_name", "text", "patient_id")])
        writer.writeheader()
        for index, row in enumerate(rows):
            record = {"file_name": row["file_name"], "text": row["text"], "patient_id": f"{folder.name}{index // 2}"}
            writer.writerow({columns.get(field, field): value for field, value in record.items()})


MIMIC = {"file_name": "path", "text": "annotated_prompt", "patient_id": "subject_id"}
MAPPING = "file_name=path,text=annotated_prompt,patient_id=subject_id"


@pytest.mark.slow
def test_a_mapped_manifest_scans_to_the_result_of_the_rewritten_one(tiny_folder, tmp_path, capsys):
    write_scan_data(tmp_path, train=10, holdout=6, seed=0)
    (tmp_path / "policy.yaml").write_text(POLICY)
    for side in ("train", "holdout"):
        _as_csv(tmp_path / side, "split.csv", MIMIC)

    def scan(out, *extra):
        argv = [
            "scan",
            str(tiny_folder),
            "--train",
            str(tmp_path / "train" / "split.csv"),
            "--holdout",
            str(tmp_path / "holdout" / "split.csv"),
            "--policy",
            str(tmp_path / "policy.yaml"),
            "--out",
            str(tmp_path / out),
            "--feature-cache",
            str(tmp_path / f"cache-{out}"),
            *extra,
        ]
        return run(argv)

    mapped = scan("mapped", "--columns", MAPPING)
    assert mapped in (ExitCode.OK, ExitCode.FINDING), capsys.readouterr().err
    for side in ("train", "holdout"):  # the same files, rewritten in place to memaudit's column names
        _as_csv(tmp_path / side, "split.csv", {})
    assert scan("rewritten") == mapped
    result = (tmp_path / "mapped" / "result.json").read_bytes()
    assert (tmp_path / "rewritten" / "result.json").read_bytes() == result
    assert json.loads(result)["train"]["items"] == 10


@pytest.fixture
def mimic_like(tmp_path):
    write_scan_data(tmp_path, train=4, holdout=3, seed=0)
    for side in ("train", "holdout"):
        _as_csv(tmp_path / side, "split.csv", MIMIC)
    return tmp_path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--columns", "file_name=path,caption=annotated_prompt"], "unknown field 'caption'"),
        (["--columns", "file_name=path,text=annotated_prompt,patient_id=subject"], "lacks: patient_id=subject"),
        (["--columns", "file_name=path,text"], "'text' is not FIELD=COLUMN"),
        (
            ["--columns", MAPPING.replace(",patient_id=subject_id", ""), "--patient-from-path", r"(\d+)\.png"],
            "--patient-from-path '(\\d+)\\.png' has no (?P<patient_id>...) group",
        ),
        (["--columns", "file_name=path"], "missing column(s) text"),
    ],
)
@pytest.mark.parametrize("command", ["scan", "data", "finetune"])
def test_bad_mappings_exit_2_naming_the_input(mimic_like, tmp_path, capsys, command, options, message):
    train, holdout = mimic_like / "train" / "split.csv", mimic_like / "holdout" / "split.csv"
    argv = {
        "scan": [
            "scan",
            "--images",
            str(tmp_path),
            "--train",
            str(train),
            "--holdout",
            str(holdout),
            "--policy",
            "ci",
            "--out",
            str(tmp_path / "out"),
        ],
        "data": ["data", "check", str(train), "--holdout", str(holdout)],
        "finetune": [
            "finetune",
            str(tmp_path / "no-model"),
            "--train",
            str(train),
            "--method",
            "lora",
            "--out",
            str(tmp_path / "ft"),
        ],
    }[command]
    assert run([*argv, *options]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err
    assert not (tmp_path / "out").exists()


def test_patient_ids_from_paths_reach_data_check(mimic_like, capsys):
    train = mimic_like / "train" / "split.csv"
    code = run(
        [
            "data",
            "check",
            str(train),
            "--columns",
            "file_name=path,text=annotated_prompt",
            "--patient-from-path",
            r"^(?P<patient_id>\d)",
            "--json",
        ]
    )
    assert code == ExitCode.OK, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["patients"] == 4  # file names 0.png .. 3.png: one patient each
