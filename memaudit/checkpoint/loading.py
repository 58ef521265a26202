"""Load a Stable Diffusion checkpoint from local files only: a diffusers folder or one safetensors file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from memaudit.checkpoint.file_set import (
    CONFIG_PREFIX,
    checkpoint_digest,
    component_folders,
    digest_config_files,
    loaded_weights,
)
from memaudit.checkpoint.files import SAFE_SUFFIXES, WeightFile, digest_weight_files, is_pickle, refuse_pickle
from memaudit.errors import CheckpointError

CheckpointFormat = Literal["diffusers", "single-file"]
# Errors diffusers and transformers raise for a broken or mismatched checkpoint.
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError)


@dataclass
class Checkpoint:
    """A loaded pipeline and where it came from."""

    source: Path
    format: CheckpointFormat
    pipeline: object  # diffusers.StableDiffusionPipeline
    weight_files: list[WeightFile]
    config_dir: Path | None = None
    # The other files that change behaviour: model_index.json, component configs, tokenizer files
    # (a single file's --config folder's, named config/...).
    config_files: list[WeightFile] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """One digest over every file that changes what the model does (checkpoint.file_set)."""
        return checkpoint_digest([*self.weight_files, *self.config_files])


def quiet_hub_libraries() -> None:
    """Silence diffusers/transformers progress bars and info logs; memaudit reports progress itself."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


REQUIRED_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _component_folders(root: Path) -> list[Path]:
    folders = component_folders(root)  # model_index.json first: unreadable is named before what is missing
    absent = [name for name in REQUIRED_COMPONENTS if not (root / name).is_dir()]
    if absent:
        raise CheckpointError(
            f"{root}: a Stable Diffusion folder needs {', '.join(REQUIRED_COMPONENTS)}; missing: {', '.join(absent)}"
        )
    return folders


def _check_folder_weights(root: Path, *, allow_pickle: bool) -> list[Path]:
    """Weight files that will be loaded; refuses components whose only weights are pickles."""
    loaded: list[Path] = []
    for folder in _component_folders(root):
        files = loaded_weights(folder)
        for path in files:
            refuse_pickle(path, allow_pickle=allow_pickle)
        loaded.extend(files)
    return loaded


def _load_diffusers_folder(root: Path, *, allow_pickle: bool, dtype: torch.dtype):
    from diffusers import StableDiffusionPipeline

    if not (root / "model_index.json").is_file():
        raise CheckpointError(f"{root}: not a diffusers checkpoint folder (no model_index.json)")
    files = _check_folder_weights(root, allow_pickle=allow_pickle)
    if not files:
        raise CheckpointError(f"{root}: no weight files found in the folder's components")
    pipeline = StableDiffusionPipeline.from_pretrained(
        root,
        local_files_only=True,
        use_safetensors=None if allow_pickle else True,
        dtype=dtype,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipeline, files


def _load_single_file(path: Path, config_dir: Path | None, *, allow_pickle: bool, dtype: torch.dtype):
    from diffusers import StableDiffusionPipeline

    refuse_pickle(path, allow_pickle=allow_pickle)
    if config_dir is None:
        raise CheckpointError(
            f"{path}: a single-file checkpoint needs --config DIR, a local diffusers-format folder with "
            "the component configs and tokenizer (memaudit never fetches configs from the Hub)"
        )
    if not (config_dir / "model_index.json").is_file():
        raise CheckpointError(f"{config_dir}: not a diffusers config folder (no model_index.json)")
    pipeline = StableDiffusionPipeline.from_single_file(
        str(path),
        config=str(config_dir),
        local_files_only=True,
        dtype=dtype,
        safety_checker=None,
        requires_safety_checker=False,
    )
    return pipeline, [path]


def _refuse_missing_tensors(path: Path, component: str, module: torch.nn.Module) -> None:
    """A weight file that lacks tensors leaves them unmaterialised ('meta'); name them now, not mid-scan."""
    missing = [name for name, tensor in (*module.named_parameters(), *module.named_buffers()) if tensor.is_meta]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CheckpointError(f"{path}: the {component} weights lack {len(missing)} tensor(s): {shown}")


def load_tokenizer(path: Path | str, *, config_dir: Path | str | None = None):
    """The checkpoint's tokenizer alone (no weights: fast enough for preflight), as model_index.json names
    it; None when it cannot be read here (loading the whole checkpoint then names the problem)."""
    path = Path(path)
    folder = path if path.is_dir() else (Path(config_dir) if config_dir is not None else None)
    if folder is None or not (folder / "tokenizer").is_dir():
        return None
    try:
        import transformers

        entry = json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("tokenizer")
        tokenizer_class = getattr(transformers, entry[1])
        return tokenizer_class.from_pretrained(folder / "tokenizer", local_files_only=True)
    except (*_LOAD_ERRORS, IndexError):
        return None


def load_checkpoint(
    path: Path | str,
    *,
    config_dir: Path | str | None = None,
    allow_pickle: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Checkpoint:
    """Load a diffusers folder or an original-layout single file, on the CPU, at full precision.

    Pickle-based weights are refused unless ``allow_pickle``; every loaded weight file is digested.
    """
    path = Path(path)
    config = Path(config_dir) if config_dir is not None else None
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    quiet_hub_libraries()
    try:
        if path.is_dir():
            pipeline, files = _load_diffusers_folder(path, allow_pickle=allow_pickle, dtype=dtype)
            checkpoint_format: CheckpointFormat = "diffusers"
        elif path.suffix.lower() in SAFE_SUFFIXES or is_pickle(path):
            pipeline, files = _load_single_file(path, config, allow_pickle=allow_pickle, dtype=dtype)
            checkpoint_format = "single-file"
        else:
            raise CheckpointError(
                f"{path}: unrecognised checkpoint; expected a diffusers folder or a .safetensors file"
            )
    except CheckpointError:
        raise
    except _LOAD_ERRORS as error:
        raise CheckpointError(f"{path}: cannot load checkpoint: {error}") from error
    pipeline.set_progress_bar_config(disable=True)
    for name in ("unet", "vae", "text_encoder"):
        module = getattr(pipeline, name)
        module.eval()
        _refuse_missing_tensors(path, name, module)
    return Checkpoint(
        source=path,
        format=checkpoint_format,
        pipeline=pipeline,
        weight_files=digest_weight_files(path, files),
        config_dir=config,
        config_files=digest_config_files(path) if path.is_dir() else digest_config_files(config, prefix=CONFIG_PREFIX),
    )
