"""`memaudit weights convert`: a published patient verifier's pickled weights as a safetensors folder."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stdout

app = typer.Typer(help="Weights from elsewhere, made safe to load: pickles converted once, to safetensors.")


@app.command("convert")
def convert(
    file: Path = typer.Argument(..., help="The pickled state dict (.pth/.pt) of a published patient verifier."),
    out: Path = typer.Option(..., "--out", help="The verifier folder to write (config.json, model.safetensors)."),
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle", help="Required: the file is a pickle (read with torch's restricted unpickler)."
    ),
    input_side: int = typer.Option(
        256, "--input-side", min=8, help="The side the verifier was trained at (Packhäuser et al.: 256)."
    ),
    normalisation: str = typer.Option(
        "imagenet", "--normalisation", help="imagenet (as the published verifiers were trained) or none."
    ),
) -> None:
    """Convert a published Siamese ResNet-50 verifier (Packhäuser et al.'s, CheXGenBench's MIMIC re-ID model)
    into the folder `checks.reidentification.weights` takes, recording its preprocessing."""
    from memaudit.errors import MemauditError
    from memaudit.reid.convert import convert_published

    if not allow_pickle:
        raise MemauditError(
            f"{file}: is a pickle, and loading a pickle can run code; convert it only if you trust its source, "
            "with --allow-pickle"
        )
    if normalisation not in ("imagenet", "none"):
        raise MemauditError(f"--normalisation {normalisation!r}: choose imagenet or none")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MemauditError(f"{out}: exists and is not empty; name a new folder for the converted verifier")
    network = convert_published(file, out, input_side=input_side, normalisation=normalisation)
    config = network.config
    stdout.print(
        f"verifier in {out}: resnet50, {config.channels} channel(s) at {config.input_side} px, "
        f"{normalisation} normalisation, {config.embedding_dim}-value embedding",
        markup=False,
    )
