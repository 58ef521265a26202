"""Weight files of a checkpoint: discovery, the pickle refusal and SHA-256 digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from memaudit.errors import CheckpointError

SAFE_SUFFIXES = frozenset({".safetensors"})
# Formats that torch.load unpickles: loading one can run arbitrary code from the file.
PICKLE_SUFFIXES = frozenset({".ckpt", ".bin", ".pt", ".pth", ".pkl", ".pickle"})
WEIGHT_SUFFIXES = SAFE_SUFFIXES | PICKLE_SUFFIXES


class WeightFile(BaseModel):
    """One weight file, named relative to the checkpoint root, with its digest."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    size_bytes: int


class AdapterFile(BaseModel):
    """A LoRA adapter fused into a base: the file as given, its digest, its scale and its key layout."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    size_bytes: int
    scale: float
    layout: str  # "diffusers" (diffusers/PEFT keys) or "kohya"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, streamed."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def is_pickle(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def find_weight_files(root: Path) -> list[Path]:
    """Every weight file of a checkpoint: the file itself, or those below a folder, sorted."""
    if root.is_file():
        return [root]
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() in WEIGHT_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def refuse_pickle(path: Path, *, allow_pickle: bool) -> None:
    """Raise unless ``path`` is safe to load or the user accepted the risk with --allow-pickle."""
    if is_pickle(path) and not allow_pickle:
        raise CheckpointError(
            f"{path}: refusing to load pickle-based weights ({path.suffix}); loading a pickle runs "
            "arbitrary code from the file. Convert it to .safetensors, or pass --allow-pickle if you "
            "trust its origin."
        )


def digest_weight_files(root: Path, files: list[Path]) -> list[WeightFile]:
    """Digests of ``files``, named relative to ``root`` (or by file name for a single file)."""
    base = root if root.is_dir() else root.parent
    return [
        WeightFile(path=path.relative_to(base).as_posix(), sha256=sha256_file(path), size_bytes=path.stat().st_size)
        for path in files
    ]
