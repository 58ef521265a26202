"""`memaudit data check DATA [--holdout DATA]`."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stderr, stdout
from memaudit.cli.progress import progress_bar
from memaudit.errors import ExitCode

app = typer.Typer(help="Check image-caption datasets.", no_args_is_help=True)


@app.command("check")
def check(
    data: Path = typer.Argument(..., metavar="DATA", help="CSV, JSONL, or a folder with metadata.jsonl."),
    holdout: Path | None = typer.Option(None, "--holdout", help="Holdout set: checked too, and for overlap."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Decode every image and report duplicates and train/holdout overlap (exit 1 if any)."""
    from memaudit.data import ImageCaptionDataset, check_datasets

    train_set = ImageCaptionDataset(data)
    holdout_set = ImageCaptionDataset(holdout) if holdout is not None else None
    total = len(train_set) + (len(holdout_set) if holdout_set else 0)
    with progress_bar("decoding images", total=total) as advance:
        report = check_datasets(train_set, holdout_set, progress=advance)
    if as_json:
        stdout.print_json(report.model_dump_json())
    else:
        for facts in filter(None, (report.train, report.holdout)):
            patients = f", {facts.patients} patients" if facts.patients else ""
            shapes = ", ".join(f"{shape} x{count}" for shape, count in facts.image_shapes.items())
            stdout.print(
                f"{facts.source}: {facts.items} items{patients}, {facts.unique_captions} distinct captions, "
                f"images {shapes}; digest {facts.digest}",
                markup=False,
            )
        for finding in report.findings:
            stderr.print(f"finding: {finding}", markup=False)
    if report.findings:
        raise typer.Exit(ExitCode.FINDING)
