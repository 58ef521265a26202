"""`memaudit finetune`: load a base model, train a masked PEFT method, save a plain diffusers model.

Output folder: model/ (a diffusers folder with the method merged in, loadable by any scan),
adapter.safetensors (only what was trained), for ``lora`` also lora.safetensors (the adapter in the
diffusers LoRA format, which ``load_lora_weights`` and ``memaudit scan BASE --adapter`` read), mask.json,
method.json (method, mask, exact trainable count, data digest, seed, steps, losses), checkpoints/ (for
resuming; removed on success).
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import save_file

from memaudit import __version__
from memaudit.atomic_files import write_atomic
from memaudit.checkpoint import Checkpoint, load_checkpoint, summarize
from memaudit.checkpoint.families import BY_NAME
from memaudit.checkpoint.saving import save_diffusers_folder
from memaudit.data import DataConfig, ImageCaptionDataset
from memaudit.finetune.config import TrainConfig
from memaudit.finetune.mask_spec import parse_mask
from memaudit.finetune.methods import apply_method, trainable_count, trained_state
from memaudit.finetune.methods.lora import LORA_FILE, save_lora_file
from memaudit.finetune.training import TrainingLog, train


@dataclass
class FinetuneResult:
    out: Path
    model_dir: Path
    trainable: int
    unet_parameters: int
    log: TrainingLog

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.unet_parameters


def finetune(
    base: Path | Checkpoint,
    train_data: Path,
    config: TrainConfig,
    *,
    out: Path,
    config_dir: Path | None = None,
    allow_pickle: bool = False,
    device: str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    stop_after: int | None = None,
    data: DataConfig | None = None,
) -> FinetuneResult | None:
    """Run (or resume) a fine-tune; returns None when ``stop_after`` ended it early.

    ``base`` is a path, or a checkpoint already loaded; a loaded one is left as it was (the fine-tune
    trains a copy of its UNet).
    """
    out = Path(out)
    dataset = ImageCaptionDataset(train_data, config=data)  # a bad manifest is named before the model loads
    if isinstance(base, Checkpoint):
        checkpoint = base
        pipeline = copy.copy(base.pipeline)
        network = BY_NAME[checkpoint.family].module  # the UNet or transformer: the only part that trains
        setattr(pipeline, network, copy.deepcopy(getattr(base.pipeline, network)))
        pipeline.to(device)
    else:
        checkpoint = load_checkpoint(base, config_dir=config_dir, allow_pickle=allow_pickle)
        pipeline = checkpoint.pipeline.to(device)
        network = BY_NAME[checkpoint.family].module
    summary = summarize(checkpoint)
    unet_parameters = sum(p.numel() for p in getattr(pipeline, network).parameters())
    mask = parse_mask(config.mask, getattr(pipeline, network))
    method = apply_method(config.method, getattr(pipeline, network), mask, lora_rank=config.lora_rank)
    trainable = trainable_count(method)
    log = train(
        pipeline,
        method,
        dataset=dataset,
        config=config,
        image_size=summary.image_size,
        checkpoint_dir=out / "checkpoints",
        on_step=on_step,
        stop_after=stop_after,
    )
    if len(log.losses) < config.steps:
        return None
    out.mkdir(parents=True, exist_ok=True)
    save_file(trained_state(method), str(out / "adapter.safetensors"), metadata={"method": config.method})
    lora_file = config.method == "lora" and save_lora_file(pipeline, network, out / LORA_FILE)
    setattr(pipeline, network, method.merge())
    staging = out / ".model.partial"
    shutil.rmtree(staging, ignore_errors=True)
    save_diffusers_folder(pipeline, staging)
    shutil.rmtree(out / "model", ignore_errors=True)
    staging.rename(out / "model")
    write_atomic(out / "mask.json", mask.to_json())
    record = {
        "memaudit": __version__,
        "method": config.method,
        "mask": {"blocks": list(mask.blocks), "bits": mask.as_string()},
        "trainable_parameters": trainable,
        "unet_parameters": unet_parameters,
        "trainable_fraction": trainable / unet_parameters,
        "base": {"source": str(checkpoint.source), "weight_files": [w.model_dump() for w in checkpoint.weight_files]},
        "data_digest": dataset.digest,
        "config": config.model_dump(mode="json"),
        "steps": len(log.losses),
        "final_loss": log.losses[-1] if log.losses else None,
        "dropped_samples": log.dropped_samples,
        "resumed_from": log.resumed_from,
        "lora_file": LORA_FILE if lora_file else None,
    }
    write_atomic(out / "method.json", json.dumps(record, indent=2) + "\n")
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return FinetuneResult(
        out=out, model_dir=out / "model", trainable=trainable, unet_parameters=unet_parameters, log=log
    )
