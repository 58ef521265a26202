"""`memaudit demo`: run the embedded demo and say what it showed."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.app import stdout
from memaudit.errors import ExitCode
from memaudit.paths import REPORTS_DIR


def demo(out: Path = typer.Option(REPORTS_DIR / "demo", "--out", help="Where the demo writes its files.")) -> None:
    """Build a tiny model, load it in both checkpoint formats, validate the shipped policies."""
    from memaudit.demo import run_demo

    result = run_demo(out)
    unet = next(c for c in result.folder.components if c.name == "unet")
    stdout.print(
        f"tiny model: {unet.parameters:,} UNet parameters, "
        f"{len(result.folder.unet_transformer_blocks)} transformer blocks, "
        f"{result.folder.image_size}px images",
        markup=False,
    )
    stdout.print(f"  diffusers folder:  {result.folder.source}", markup=False)
    stdout.print(
        f"  single file twin:  {result.single_file.source} (sha256 {result.single_file.weight_files[0].sha256})",
        markup=False,
    )
    stdout.print(f"  both formats describe the same model: {'yes' if result.formats_agree else 'NO'}", markup=False)
    for loaded in result.policies:
        stdout.print(
            f"policy {loaded.policy.name}: valid, {len(loaded.policy.rules)} rules, sha256 {loaded.sha256}",
            markup=False,
        )
    if not result.formats_agree:
        raise typer.Exit(ExitCode.ERROR)
