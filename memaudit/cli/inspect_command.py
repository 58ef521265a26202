"""`memaudit inspect MODEL`: components, parameter counts, UNet block layout and weight digests."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from memaudit.cli.console import stdout
from memaudit.cli.options import ALLOW_PICKLE, CONFIG_DIR


def inspect(
    model: Path = typer.Argument(
        ..., metavar="MODEL", help="A diffusers folder or an original-layout .safetensors file."
    ),
    config: Path | None = CONFIG_DIR,
    allow_pickle: bool = ALLOW_PICKLE,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a checkpoint without running it."""
    from memaudit.checkpoint import load_checkpoint, summarize

    summary = summarize(load_checkpoint(model, config_dir=config, allow_pickle=allow_pickle))
    if as_json:
        stdout.print_json(summary.model_dump_json())
        return
    stdout.print(f"[bold]{summary.source}[/bold]  ({summary.format}, family {summary.family})")
    stdout.print(
        f"image {summary.image_size}x{summary.image_size} px, latent {summary.latent_channels}x"
        f"{summary.latent_size}x{summary.latent_size} (VAE factor {summary.vae_scale_factor}), "
        f"scheduler {summary.scheduler} ({summary.prediction_type}, {summary.num_train_timesteps} steps), "
        f"text length {summary.text_max_length}"
    )
    components = Table(title="Components", title_justify="left")
    for column in ("component", "class", "parameters"):
        components.add_column(column, justify="right" if column == "parameters" else "left", overflow="fold")
    for component in summary.components:
        components.add_row(component.name, component.class_name, f"{component.parameters:,}")
    stdout.print(components)
    title = "UNet transformer blocks" if summary.denoiser == "unet" else "Transformer blocks"
    blocks = Table(title=f"{title} (mask order)", title_justify="left")
    for column in ("bit", "block", "width", "reads text", "parameters"):
        blocks.add_column(
            column, justify="right" if column in ("bit", "width", "parameters") else "left", overflow="fold"
        )
    for block in summary.unet_transformer_blocks:
        blocks.add_row(
            str(block.index),
            block.name,
            str(block.width),
            "yes" if block.cross_attention else "no",
            f"{block.parameters:,}",
        )
    stdout.print(blocks)
    files = Table(title="Weight files", title_justify="left")
    for column in ("file", "bytes", "sha256"):
        files.add_column(column, justify="right" if column == "bytes" else "left", overflow="fold")
    for weight in summary.weight_files:
        files.add_row(weight.path, f"{weight.size_bytes:,}", weight.sha256)
    stdout.print(files)
