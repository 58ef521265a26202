"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.errors import ExitCode, MemauditError

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


def manifest_columns(columns: str | None, patient_from_path: str | None):
    """--columns and --patient-from-path as the DataConfig every manifest of the command is read with (None: none)."""
    from memaudit.data import data_config

    return data_config(columns=columns, patient_from_path=patient_from_path) or None


COLUMNS = typer.Option(
    None,
    "--columns",
    help="The manifest's own column names: FIELD=COLUMN,... for file_name, text, id, patient_id, split "
    "(e.g. file_name=path,text=annotated_prompt,patient_id=subject_id). Applies to --train and --holdout.",
)

PATIENT_FROM_PATH = typer.Option(
    None,
    "--patient-from-path",
    help="Read patient ids from file names: a regex with a (?P<patient_id>...) group, "
    "e.g. 'patient(?P<patient_id>\\d+)'.",
)


ADAPTERS = typer.Option(
    None,
    "--adapter",
    help="A LoRA adapter (.safetensors, diffusers/PEFT or kohya-ss keys) fused into MODEL before the scan; "
    "repeat for several.",
)
ADAPTER_SCALES = typer.Option(
    None,
    "--adapter-scale",
    help="The scale of each --adapter, in order (one value: every adapter's; default 1.0).",
)


def adapter_pairs(adapters: list[Path] | None, scales: list[float] | None) -> list[tuple[Path, float]]:
    """(file, scale) for every --adapter; the scales' count must match, or be one (for all) or none (1.0)."""
    adapters, scales = adapters or [], scales or []
    if scales and not adapters:
        raise MemauditError("--adapter-scale without --adapter: there is no adapter to scale")
    if len(scales) not in (0, 1, len(adapters)):
        raise MemauditError(
            f"--adapter-scale: {len(scales)} values for {len(adapters)} adapters; give one per adapter, or one for all"
        )
    full = scales * len(adapters) if len(scales) == 1 else scales or [1.0] * len(adapters)
    return list(zip(adapters, full, strict=True))
