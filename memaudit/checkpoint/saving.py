"""Save a pipeline: a diffusers folder (safetensors), or one original-layout file plus its config folder."""

from __future__ import annotations

from pathlib import Path

from memaudit.checkpoint.files import WEIGHT_SUFFIXES
from memaudit.checkpoint.loading import quiet_hub_libraries
from memaudit.checkpoint.original_layout import save_original_single_file


def save_diffusers_folder(pipeline, directory: Path) -> Path:
    """Save as a diffusers folder with safetensors weights."""
    directory = Path(directory)
    quiet_hub_libraries()
    pipeline.save_pretrained(directory, safe_serialization=True)
    return directory


def save_single_file_twin(pipeline, weights_path: Path, config_dir: Path) -> tuple[Path, Path]:
    """Save as one original-layout ``.safetensors`` plus a weightless diffusers config folder."""
    config_dir = Path(config_dir)
    save_diffusers_folder(pipeline, config_dir)
    for path in list(config_dir.rglob("*")):
        if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
            path.unlink()
    save_original_single_file(pipeline, Path(weights_path))
    return Path(weights_path), config_dir
