"""`memaudit data check DATA [--holdout DATA] [--policy P ...]`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from memaudit.cli.console import stderr, stdout
from memaudit.cli.options import COLUMNS, PATIENT_FROM_PATH, manifest_columns
from memaudit.cli.progress import progress_bar
from memaudit.errors import ExitCode

app = typer.Typer(help="Check image-caption datasets.", no_args_is_help=True)


@app.command("check")
def check(
    data: Path = typer.Argument(
        ..., metavar="DATA", help="CSV, JSONL, a folder with metadata.jsonl, or a data config."
    ),
    holdout: Path | None = typer.Option(None, "--holdout", help="Holdout set: checked too, and for overlap."),
    columns: str | None = COLUMNS,
    patient_from_path: str | None = PATIENT_FROM_PATH,
    policies: list[str] | None = typer.Option(
        None,
        "--policy",
        help="With --holdout: a policy whose holdout needs to check (repeat; default: every shipped one).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Decode every image and report patients, captions, duplicates and train/holdout overlap (exit 1 if any),
    and, with --holdout, which policies the holdout supports and what each lacks."""
    from memaudit.data import ImageCaptionDataset, check_datasets
    from memaudit.errors import MemauditError
    from memaudit.policy import load_policy
    from memaudit.policy.holdout_needs import holdout_counts, policy_support, shipped_policies

    config = manifest_columns(columns, patient_from_path)
    if policies and holdout is None:
        raise MemauditError("--policy checks what a policy needs from the holdout: give --holdout too")
    loaded = [load_policy(name) for name in policies] if policies else shipped_policies()
    train_set = ImageCaptionDataset(data, config=config)
    holdout_set = ImageCaptionDataset(holdout, config=config) if holdout is not None else None
    total = len(train_set) + (len(holdout_set) if holdout_set else 0)
    with progress_bar("decoding images", total=total) as advance:
        report = check_datasets(train_set, holdout_set, progress=advance)
    support = []
    if holdout_set is not None:
        counts = holdout_counts(holdout_set)
        support = [policy_support(policy, counts) for policy in loaded]
    if as_json:
        document = json.loads(report.model_dump_json()) | {"policies": [s.as_dict() for s in support]}
        stdout.print_json(json.dumps(document))
    else:
        for facts in filter(None, (report.train, report.holdout)):
            patients = f", {facts.patients} patients" if facts.patients else ""
            if facts.studies_per_patient:
                spread = facts.studies_per_patient
                patients += f" ({spread['min']:g}-{spread['max']:g} studies each, median {spread['median']:g})"
            if facts.rows_without_patient:
                patients += f", {facts.rows_without_patient} rows without a patient_id"
            shapes = ", ".join(f"{shape} x{count}" for shape, count in facts.image_shapes.items())
            stdout.print(
                f"{facts.source}: {facts.items} items{patients}, {facts.unique_captions} distinct captions, "
                f"images {shapes}; digest {facts.digest}",
                markup=False,
            )
        if holdout_set is not None:
            overlap = len(report.shared_patients), len(report.shared_images)
            stdout.print(f"train/holdout overlap: {overlap[0]} patient(s), {overlap[1]} image(s)", markup=False)
        for item in support:
            stdout.print(f"policy {item.describe()}", markup=False)
        for finding in report.findings:
            stderr.print(f"finding: {finding}", markup=False)
    if report.findings:
        raise typer.Exit(ExitCode.FINDING)
