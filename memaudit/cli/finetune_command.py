"""`memaudit finetune BASE --train DATA --method M --mask MASK --mitigation none|rwa|threshold --out DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stdout
from memaudit.cli.options import ALLOW_PICKLE, COLUMNS, CONFIG_DIR, PATIENT_FROM_PATH, manifest_columns


def finetune(
    base: Path = typer.Argument(..., metavar="BASE", help="Base model: diffusers folder or .safetensors file."),
    train: Path = typer.Option(..., "--train", help="Training set."),
    columns: str | None = COLUMNS,
    patient_from_path: str | None = PATIENT_FROM_PATH,
    method: str = typer.Option(..., "--method", help="full, svdiff, difffit, attention or lora."),
    mask: str = typer.Option("all", "--mask", help="all, none, a bit string, or a mask.json file."),
    mitigation: str = typer.Option("none", "--mitigation", help="none, rwa or threshold."),
    out: Path = typer.Option(..., "--out", help="Output folder (resumes if it holds checkpoints)."),
    steps: int = typer.Option(500, "--steps", min=0),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    gradient_accumulation: int = typer.Option(1, "--gradient-accumulation", min=1),
    learning_rate: float = typer.Option(1e-4, "--lr", min=0.0),
    seed: int = typer.Option(0, "--seed", min=0),
    caption_dropout: float = typer.Option(0.1, "--caption-dropout", min=0.0, max=1.0),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every", min=1),
    lora_rank: int = typer.Option(4, "--lora-rank", min=1),
    rwa_words: int = typer.Option(2, "--rwa-words", min=1),
    rwa_probability: float = typer.Option(0.5, "--rwa-probability", min=0.0, max=1.0),
    threshold: float | None = typer.Option(None, "--threshold", help="Drop samples with noise magnitude >= this."),
    top_fraction: float | None = typer.Option(None, "--top-fraction", help="Or drop the batch's top fraction (0.1)."),
    device: str = typer.Option("cpu", "--device"),
    config: Path | None = CONFIG_DIR,
    allow_pickle: bool = ALLOW_PICKLE,
) -> None:
    """Fine-tune a base model with a masked PEFT method; writes a loadable diffusers folder."""
    from pydantic import ValidationError

    from memaudit.cli.progress import progress_bar
    from memaudit.errors import MemauditError
    from memaudit.finetune.config import Mitigation, TrainConfig
    from memaudit.finetune.methods import METHODS
    from memaudit.finetune.run import finetune as run_finetune
    from memaudit.policy.loading import format_validation_error

    data = manifest_columns(columns, patient_from_path)
    if method not in METHODS:
        raise MemauditError(f"unknown method '{method}'; available: {', '.join(METHODS)}")
    if mitigation not in ("none", "rwa", "threshold"):
        raise MemauditError(f"unknown mitigation '{mitigation}'; use none, rwa or threshold")
    try:
        settings = TrainConfig(
            method=method,
            mask=mask,
            lora_rank=lora_rank,
            steps=steps,
            batch_size=batch_size,
            gradient_accumulation=gradient_accumulation,
            learning_rate=learning_rate,
            seed=seed,
            caption_dropout=caption_dropout,
            checkpoint_every=checkpoint_every,
            mitigation=Mitigation(
                kind=mitigation,
                rwa_words=rwa_words,
                rwa_probability=rwa_probability,
                threshold=threshold,
                top_fraction=top_fraction,
            ),
        )
    except ValidationError as error:
        raise MemauditError(format_validation_error("memaudit finetune", error, what="options")) from error
    losses: list[float] = []
    with progress_bar(f"fine-tuning ({method})", total=steps) as advance:

        def on_step(step: int, loss: float) -> None:
            losses.append(loss)
            advance(f"loss {loss:.4f}")

        result = run_finetune(
            base,
            train,
            settings,
            out=out,
            config_dir=config,
            allow_pickle=allow_pickle,
            device=device,
            on_step=on_step,
            data=data,
        )
    first = result.log.losses[: max(1, len(result.log.losses) // 10)]
    last = result.log.losses[-max(1, len(result.log.losses) // 10) :]
    mean = lambda values: sum(values) / len(values) if values else float("nan")  # noqa: E731
    stdout.print(
        f"{method}: {result.trainable:,} trainable of {result.unet_parameters:,} UNet parameters "
        f"({result.trainable_fraction:.4%}); loss {mean(first):.4f} -> {mean(last):.4f} over {len(result.log.losses)} "
        f"steps; model: {result.model_dir}",
        markup=False,
    )
