"""PEFT methods by name; each takes a UNet and a block mask."""

from __future__ import annotations

from torch import nn

from memaudit.errors import MemauditError
from memaudit.finetune.mask import BlockMask
from memaudit.finetune.methods.attention import AttentionTuning
from memaudit.finetune.methods.base import (
    AppliedMethod,
    load_trained_state,
    trainable_count,
    trained_state,
)
from memaudit.finetune.methods.difffit import DiffFit
from memaudit.finetune.methods.full import FullFineTune
from memaudit.finetune.methods.lora import LoRA
from memaudit.finetune.methods.svdiff import SVDiff

METHODS = {"full": FullFineTune, "svdiff": SVDiff, "difffit": DiffFit, "attention": AttentionTuning, "lora": LoRA}


def apply_method(name: str, unet: nn.Module, mask: BlockMask, *, lora_rank: int = 4) -> AppliedMethod:
    if name not in METHODS:
        raise MemauditError(f"unknown method '{name}'; available: {', '.join(METHODS)}")
    if name == "lora":
        return LoRA(unet, mask, rank=lora_rank)
    return METHODS[name](unet, mask)


__all__ = ["METHODS", "AppliedMethod", "apply_method", "load_trained_state", "trainable_count", "trained_state"]
