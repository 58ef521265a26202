"""`memaudit reid train`: a patient verifier from a training set's own patient ids."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stderr, stdout
from memaudit.cli.options import COLUMNS, PATIENT_FROM_PATH, manifest_columns
from memaudit.cli.progress import progress_bar

app = typer.Typer(help="Patient re-identification: train the verifier the reidentification check uses.")


@app.command("train")
def train(
    train_set: Path = typer.Option(..., "--train", help="Training set with patient_id (several studies per patient)."),
    holdout: Path = typer.Option(..., "--holdout", help="Holdout of other patients: early stopping and the AUC."),
    out: Path = typer.Option(..., "--out", help="The verifier folder to write (rerun the same command to resume)."),
    columns: str | None = COLUMNS,
    patient_from_path: str | None = PATIENT_FROM_PATH,
    architecture: str = typer.Option("small-cnn", "--architecture", help="small-cnn (phantom sizes) or resnet50."),
    input_side: int = typer.Option(64, "--input-side", min=8, help="Images are resized to this square side."),
    steps: int = typer.Option(3000, "--steps", min=1, help="Most training steps (early stopping may end sooner)."),
    batch_size: int = typer.Option(64, "--batch-size", min=2, help="Pairs per step, half of one patient."),
    hard_neighbours: int = typer.Option(
        10,
        "--hard-neighbours",
        min=0,
        help="K > 0: a quarter of the pairs pair an image with one of its K nearest images of another patient "
        "(look-alikes, redrawn at each evaluation); 0 draws random pairs only.",
    ),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a Siamese verifier (P(same patient) for a pair of images), early-stopped on holdout patients,
    and print its verification AUC on them."""
    from memaudit.data import ImageCaptionDataset
    from memaudit.errors import MemauditError
    from memaudit.reid.training import ReidTraining, train_verifier

    if architecture not in ("small-cnn", "resnet50"):
        raise MemauditError(f"--architecture {architecture!r}: choose small-cnn or resnet50")
    config = manifest_columns(columns, patient_from_path)
    settings = ReidTraining(
        architecture=architecture,
        input_side=input_side,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        hard_neighbours=hard_neighbours,
    )
    train_data, holdout_data = (ImageCaptionDataset(path, config=config) for path in (train_set, holdout))

    def said(evaluation: dict) -> None:
        stderr.print(
            f"step {evaluation['step']}: loss {evaluation['loss']:.4f}, "
            f"holdout verification AUC {evaluation['auc']:.4f}",
            markup=False,
        )

    with progress_bar("training the verifier", total=steps) as advance:
        record = train_verifier(
            train_data, holdout_data, settings, out=out, on_step=lambda _: advance(), on_evaluation=said
        )
    stopped = " (early stop)" if record.stopped_early else ""
    stdout.print(
        f"verifier in {out}: holdout verification AUC {record.best_auc:.4f} at step {record.best_step}{stopped}",
        markup=False,
    )
