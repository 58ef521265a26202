"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.errors import ExitCode

EXIT_FOR_VERDICT = {"pass": ExitCode.OK, "fail": ExitCode.FINDING, "error": ExitCode.ERROR}
DEFAULT_CACHE = Path.home() / ".cache" / "memaudit" / "features"

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
