"""Checkpoints: safe local loading, digests, architecture summary and the UNet block order."""

from memaudit.checkpoint.blocks import transformer_block_names
from memaudit.checkpoint.files import WeightFile, sha256_file
from memaudit.checkpoint.loading import Checkpoint, load_checkpoint
from memaudit.checkpoint.summary import CheckpointSummary, summarize

__all__ = [
    "Checkpoint",
    "CheckpointSummary",
    "WeightFile",
    "load_checkpoint",
    "sha256_file",
    "summarize",
    "transformer_block_names",
]
