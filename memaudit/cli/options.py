"""Options shared by several commands, declared once."""

from __future__ import annotations

import typer

CONFIG_DIR = typer.Option(
    None,
    "--config",
    help="For a single-file checkpoint: a local diffusers folder with the component configs and tokenizer.",
)
ALLOW_PICKLE = typer.Option(
    False,
    "--allow-pickle",
    help="Load pickle-based weights (.ckpt/.bin/.pt/.pth). Loading a pickle can run arbitrary code.",
)
