"""Load a checkpoint of a supported family (``checkpoint.families``) from local files only: a diffusers
folder, or one safetensors file with a local --config folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from memaudit.checkpoint.adapters import fuse_adapters
from memaudit.checkpoint.families import Family, family_named, family_of_folder
from memaudit.checkpoint.file_set import (
    CONFIG_PREFIX,
    checkpoint_digest,
    component_folders,
    digest_config_files,
    loaded_weights,
)
from memaudit.checkpoint.files import (
    SAFE_SUFFIXES,
    AdapterFile,
    WeightFile,
    digest_weight_files,
    is_pickle,
    refuse_pickle,
)
from memaudit.checkpoint.single_file import denoiser_from_file, read_errors
from memaudit.errors import CheckpointError

CheckpointFormat = Literal["diffusers", "single-file"]
ADAPTER_PREFIX = "adapter/"  # adapters' names in the digest and the attestation
# Errors diffusers and transformers raise for a broken or mismatched checkpoint.
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError)


@dataclass
class Checkpoint:
    """A loaded pipeline and where it came from."""

    source: Path
    format: CheckpointFormat
    pipeline: object  # the family's diffusers pipeline
    weight_files: list[WeightFile]
    config_dir: Path | None = None
    # The other files that change behaviour: model_index.json, component configs, tokenizer files
    # (a single file's --config folder's, named config/...).
    config_files: list[WeightFile] = field(default_factory=list)
    family: str = "sd"  # checkpoint.families
    adapters: list[AdapterFile] = field(default_factory=list)  # LoRA files fused into the base, in order

    @property
    def digest(self) -> str:
        """One digest over every file that changes what the model does (checkpoint.file_set), and each
        adapter fused into it with its scale."""
        fused = [
            WeightFile(path=f"{ADAPTER_PREFIX}{index}@{adapter.scale!r}", sha256=adapter.sha256, size_bytes=0)
            for index, adapter in enumerate(self.adapters)
        ]
        return checkpoint_digest([*self.weight_files, *self.config_files, *fused])


def quiet_hub_libraries() -> None:
    """Silence diffusers/transformers progress bars and info logs; memaudit reports progress itself."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _component_folders(root: Path, family: Family) -> list[Path]:
    folders = component_folders(root)  # model_index.json first: unreadable is named before what is missing
    absent = [name for name in family.components if not (root / name).is_dir()]
    if absent:
        raise CheckpointError(
            f"{root}: a {family.title} folder needs {', '.join(family.components)}; missing: {', '.join(absent)}"
        )
    return folders


def _check_folder_weights(root: Path, family: Family, *, allow_pickle: bool) -> list[Path]:
    """Weight files that will be loaded; refuses components whose only weights are pickles."""
    loaded: list[Path] = []
    for folder in _component_folders(root, family):
        files = loaded_weights(folder)
        for path in files:
            refuse_pickle(path, allow_pickle=allow_pickle)
        loaded.extend(files)
    return loaded


def _pipeline_class(family: Family, index_class: str):
    import diffusers

    return getattr(diffusers, index_class if index_class in family.pipelines else family.pipeline_class)


def _without_safety_checker(family: Family) -> dict:
    """SD 1.x/2.x pipelines load a safety checker unless told not to; memaudit never runs one."""
    if family.name != "sd":
        return {}
    return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def _load_diffusers_folder(root: Path, *, allow_pickle: bool, dtype: torch.dtype, given: dict | None = None):
    """The folder's pipeline and the weight files it loaded; ``given`` components (name -> module) are taken
    as they are, their folders' weights neither read nor counted."""
    family = family_of_folder(root)
    given = given or {}
    files = [
        path
        for path in _check_folder_weights(root, family, allow_pickle=allow_pickle)
        if path.relative_to(root).parts[0] not in given
    ]
    if not files:
        raise CheckpointError(f"{root}: no weight files found in the folder's components")
    index = json.loads((root / "model_index.json").read_text(encoding="utf-8"))
    # Components the folder leaves out on purpose ([null, null]: SD 3.x without T5) are passed as None.
    absent = {name: None for name, value in index.items() if isinstance(value, list) and value[:1] == [None]}
    pipeline = _pipeline_class(family, index["_class_name"]).from_pretrained(
        root,
        local_files_only=True,
        use_safetensors=None if allow_pickle else True,
        dtype=dtype,
        **(absent | _without_safety_checker(family) | given),
    )
    return pipeline, files, family


def _load_single_file(path: Path, config_dir: Path | None, *, allow_pickle: bool, dtype: torch.dtype):
    """A whole pipeline in one file, or its denoiser alone (``single_file.denoiser_from_file``)."""
    refuse_pickle(path, allow_pickle=allow_pickle)
    if config_dir is None:
        raise CheckpointError(
            f"{path}: a single-file checkpoint needs --config DIR, a local diffusers-format folder with "
            "the component configs and tokenizer (memaudit never fetches configs from the Hub)"
        )
    family = family_of_folder(config_dir)
    extra = _without_safety_checker(family)
    extra.pop("feature_extractor", None)
    try:
        pipeline = _pipeline_class(family, family.pipeline_class).from_single_file(
            str(path), config=str(config_dir), local_files_only=True, dtype=dtype, **extra
        )
    except read_errors() as whole:  # the file lacks a component (a denoiser shared on its own) or is no pipeline
        denoiser = denoiser_from_file(path, config_dir, family, dtype=dtype, whole=whole)
        pipeline, files, _ = _load_diffusers_folder(
            config_dir, allow_pickle=allow_pickle, dtype=dtype, given={family.module: denoiser}
        )
        return pipeline, [path, *files], family
    return pipeline, [path], family


def _weight_records(path: Path, config: Path | None, files: list[Path]) -> list[WeightFile]:
    """Digests of the loaded weight files: the checkpoint's by their names in it, a --config folder's (a
    single file's other components) as ``config/<path in the folder>``, as verify finds them."""
    own = [file for file in files if file == path or config is None or not file.is_relative_to(config)]
    records = digest_weight_files(path, own)
    beside = [file for file in files if file not in own]
    named = digest_weight_files(config, beside) if beside else []
    return records + [record.model_copy(update={"path": CONFIG_PREFIX + record.path}) for record in named]


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
    if folder is None:
        return None
    try:
        import transformers

        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        family = family_named(str(index.get("_class_name", "")), source=folder)
        name = next(name for name in family.tokenizers if (folder / name).is_dir() and index.get(name, [None])[0])
        tokenizer = getattr(transformers, index[name][1]).from_pretrained(folder / name, local_files_only=True)
        tokenizer.model_max_length = family.reads(name, tokenizer)  # count prompts with what the pipeline reads
        return tokenizer
    except (*_LOAD_ERRORS, IndexError, StopIteration, CheckpointError):
        return None


def load_checkpoint(
    path: Path | str,
    *,
    config_dir: Path | str | None = None,
    allow_pickle: bool = False,
    dtype: torch.dtype = torch.float32,
    adapters: list[tuple[Path, float]] | None = None,
) -> Checkpoint:
    """Load a diffusers folder or an original-layout single file, on the CPU, at full precision, with the
    LoRA ``adapters`` ((file, scale) pairs) fused in.

    Pickle-based weights are refused unless ``allow_pickle``; every loaded weight file is digested.
    """
    path = Path(path)
    config = Path(config_dir) if config_dir is not None else None
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    quiet_hub_libraries()
    try:
        if path.is_dir():
            pipeline, files, family = _load_diffusers_folder(path, allow_pickle=allow_pickle, dtype=dtype)
            checkpoint_format: CheckpointFormat = "diffusers"
        elif path.suffix.lower() in SAFE_SUFFIXES or is_pickle(path):
            pipeline, files, family = _load_single_file(path, config, allow_pickle=allow_pickle, dtype=dtype)
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
    for name, module in pipeline.components.items():
        if isinstance(module, torch.nn.Module):
            module.eval()
            _refuse_missing_tensors(path, name, module)
    fused = fuse_adapters(pipeline, [(Path(file), scale) for file, scale in adapters or []], allow_pickle=allow_pickle)
    return Checkpoint(
        source=path,
        format=checkpoint_format,
        pipeline=pipeline,
        weight_files=_weight_records(path, config, files),
        config_dir=config,
        config_files=digest_config_files(path) if path.is_dir() else digest_config_files(config, prefix=CONFIG_PREFIX),
        family=family.name,
        adapters=fused,
    )
