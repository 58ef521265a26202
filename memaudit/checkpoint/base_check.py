"""The base a model was fine-tuned from, checked before any scan: it exists, loads, and is of the
model's family with the same transformer blocks. A remediation retrains from it (the mask the search
chooses on one is trained into the other) and the membership check calibrates against it, so a bad
--base fails in seconds, not after the scan."""

from __future__ import annotations

from pathlib import Path

from memaudit.checkpoint.loading import Checkpoint, load_checkpoint
from memaudit.checkpoint.summary import CheckpointSummary, summarize
from memaudit.errors import CheckpointError


def check_base(base: Path, model: Checkpoint, *, allow_pickle: bool = False) -> Checkpoint:
    """The loaded ``base``; refused when missing, unloadable, or not of ``model``'s family and block layout."""
    base = Path(base)
    if not base.exists():
        raise CheckpointError(f"--base {base}: no such file or folder")
    try:
        checkpoint = load_checkpoint(base, allow_pickle=allow_pickle)
    except CheckpointError as error:
        raise CheckpointError(f"--base {error}") from error
    difference = _difference(summarize(checkpoint), summarize(model))
    if difference:
        raise CheckpointError(f"--base {base} is not a base of the model {model.source}: {difference}")
    return checkpoint


def _family(summary: CheckpointSummary) -> list[tuple[str, str]]:
    return [(component.name, component.class_name) for component in summary.components]


def _difference(base: CheckpointSummary, model: CheckpointSummary) -> str | None:
    """The first way ``base`` differs from ``model`` in family or block layout, said for a person."""
    if _family(base) != _family(model):
        base_family, model_family = (", ".join(f"{n} {c}" for n, c in _family(s)) for s in (base, model))
        return f"another family of model ({base_family}; the model: {model_family})"
    if base.latent_channels != model.latent_channels:
        return f"{base.latent_channels} latent channels, the model {model.latent_channels}"
    blocks, theirs = base.unet_transformer_blocks, model.unet_transformer_blocks
    if len(blocks) != len(theirs):
        return f"{len(blocks)} UNet transformer blocks, the model {len(theirs)}"
    for mine, other in zip(blocks, theirs, strict=True):
        if (mine.name, mine.width, mine.cross_attention, mine.parameters) != (
            other.name, other.width, other.cross_attention, other.parameters
        ):  # fmt: skip
            return (
                f"transformer block {mine.index} is {mine.name} (width {mine.width}, {mine.parameters:,} parameters), "
                f"the model's {other.name} (width {other.width}, {other.parameters:,} parameters)"
            )
    return None
