"""Every file of a checkpoint that changes what the model does, and one digest over them.

A model is more than its weights: ``model_index.json`` says which classes load, each component's config
says how (the scheduler's ``prediction_type`` decides how every output is read), and the tokenizer's files
decide which prompt the text encoder sees. The resume key, result.json and the attestation all use this
set, so a changed scheduler config is a different model to each of them.

Not counted: files a loader never reads (documentation, licences, hidden files, files outside the folders
that ``model_index.json`` names, and a component's pickled weights when its safetensors are what loads).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from memaudit.checkpoint.files import SAFE_SUFFIXES, WEIGHT_SUFFIXES, WeightFile, digest_weight_files
from memaudit.errors import CheckpointError

INDEX = "model_index.json"
CONFIG_PREFIX = "config/"  # names of a single file's --config folder files in records and attestations


def component_folders(root: Path) -> list[Path]:
    """The component folders ``model_index.json`` names (``[library, class]`` entries) that exist."""
    try:
        index = json.loads((root / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{root / INDEX}: not readable JSON ({error})") from error
    if not isinstance(index, dict):
        raise CheckpointError(f"{root / INDEX}: not a JSON object")
    return [
        root / name
        for name, value in index.items()
        if not name.startswith("_") and isinstance(value, list) and value and value[0] is not None
        and (root / name).is_dir()
    ]  # fmt: skip


def loaded_weights(folder: Path) -> list[Path]:
    """The weight files a component loads: its safetensors when it has any, else its other weight files."""
    files = sorted(p for p in _files(folder) if p.suffix.lower() in WEIGHT_SUFFIXES)
    safe = [path for path in files if path.suffix.lower() in SAFE_SUFFIXES]
    return safe or files


def config_files(root: Path) -> list[Path]:
    """``model_index.json`` and every non-weight file of the components that changes behaviour."""
    files = [root / INDEX]
    for folder in component_folders(root):
        files += sorted(path for path in _files(folder) if path.suffix.lower() not in WEIGHT_SUFFIXES)
    return files


def _files(folder: Path) -> list[Path]:
    """Files a loader may read: not hidden, not documentation (merges.txt and vocab.txt are tokenizer files)."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.suffix.lower() == ".md" or path.name.upper().startswith(("README", "LICENSE")):
            continue
        found.append(path)
    return found


def digest_config_files(root: Path, *, prefix: str = "") -> list[WeightFile]:
    """Digests of ``config_files(root)``, named relative to ``root`` (after ``prefix``)."""
    return [
        file.model_copy(update={"path": prefix + file.path}) for file in digest_weight_files(root, config_files(root))
    ]


def checkpoint_digest(files: list[WeightFile]) -> str:
    """One SHA-256 over every file's name and digest (order-free): the model's identity."""
    lines = sorted(f"{file.path}\t{file.sha256}" for file in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
