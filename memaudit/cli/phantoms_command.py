"""`memaudit phantoms`: write a synthetic chest-X-ray-like image-caption set (no patient data)."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stdout


def phantoms(
    out: Path = typer.Option(..., "--out", help="Folder to write (images/, metadata.jsonl)."),
    count: int = typer.Option(200, "--count", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    size: int = typer.Option(64, "--size", min=8, help="Image side in pixels."),
    first_index: int = typer.Option(0, "--first-index", min=0, help="Patient index to start from."),
    studies: int = typer.Option(
        1,
        "--studies",
        min=1,
        help="Studies per patient: above 1, each patient's anatomy is seen again under another pose, exposure, "
        "breath and findings (a re-identification ground truth; --count is then the number of patients).",
    ),
    first_study: int = typer.Option(0, "--first-study", min=0, help="With --studies: the study index to start from."),
) -> None:
    """Generate phantom patients deterministically from (seed, index)."""
    from collections import Counter

    from memaudit.data import ImageCaptionDataset
    from memaudit.phantoms.cohort import write_cohort
    from memaudit.phantoms.identity import write_identity_cohort

    if studies > 1 or first_study > 0:
        folder = write_identity_cohort(
            out,
            patients=count,
            studies=studies,
            seed=seed,
            size=size,
            first_patient=first_index,
            first_study=first_study,
        )
    else:
        folder = write_cohort(out, count=count, seed=seed, size=size, first_index=first_index)
    dataset = ImageCaptionDataset(folder)
    common, times = Counter(dataset.captions).most_common(1)[0]
    stdout.print(
        f"{folder}: {len(dataset)} synthetic phantoms at {size}px, {len(set(dataset.captions))} distinct "
        f"captions (most common, x{times}: {common!r}); digest {dataset.digest}",
        markup=False,
    )
