"""A denoiser shared as one file on its own (Flux.1's and SD 3.5's transformers are distributed so), read
with diffusers' single-file loader for that model class: its original layout is converted, a diffusers
layout taken as it is. The rest of the pipeline comes from the --config folder (``loading``)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch

from memaudit.checkpoint.families import Family
from memaudit.errors import CheckpointError


def read_errors() -> tuple[type[Exception], ...]:
    """What diffusers' single-file loaders raise for a file that is not what they were asked to read."""
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    return (SingleFileComponentError, OSError, ValueError, LookupError, RuntimeError, TypeError, AttributeError)


def denoiser_from_file(path: Path, config_dir: Path, family: Family, *, dtype: torch.dtype, whole: Exception):
    """The family's denoiser (``family.module``) with the weights of ``path``, configured by ``config_dir``;
    ``whole``: why the file did not load as a whole pipeline (named too if this fails)."""
    library, class_name = json.loads((config_dir / "model_index.json").read_text(encoding="utf-8"))[family.module]
    denoiser_class = getattr(importlib.import_module(library), class_name)
    try:
        return denoiser_class.from_single_file(
            str(path), config=str(config_dir), subfolder=family.module, local_files_only=True, torch_dtype=dtype
        )
    except read_errors() as error:
        raise CheckpointError(
            f"{path}: neither a whole {family.title} pipeline ({_said(whole)}) nor its {family.module} alone "
            f"({_said(error)}) in a layout diffusers reads"
        ) from error


def _said(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no message'}"
