"""What a checkpoint holds, as ``memaudit inspect`` prints it: one record, the same for both formats."""

from __future__ import annotations

import torch
from pydantic import BaseModel

from memaudit.checkpoint.blocks import block_width, reads_text, transformer_block_names
from memaudit.checkpoint.families import BY_NAME, default_latent_side, parameterization, reading_tokenizer
from memaudit.checkpoint.files import WeightFile
from memaudit.checkpoint.loading import Checkpoint


class ComponentSummary(BaseModel):
    name: str
    class_name: str
    parameters: int


class TransformerBlockSummary(BaseModel):
    index: int
    name: str
    width: int
    cross_attention: bool
    parameters: int


class CheckpointSummary(BaseModel):
    """Architecture facts of a loaded checkpoint; ``weight_files`` is the only part that depends on format."""

    source: str
    format: str
    family: str = "sd"  # checkpoint.families
    denoiser: str = "unet"  # the pipeline attribute of the denoising network (unet or transformer)
    components: list[ComponentSummary]
    # The denoiser's transformer blocks in mask order (a UNet's, or a DiT's sequence).
    unet_transformer_blocks: list[TransformerBlockSummary]
    latent_channels: int
    latent_size: int
    image_size: int
    vae_scale_factor: int
    scheduler: str
    prediction_type: str  # epsilon, v_prediction, sample, or flow (the velocity e - x0)
    num_train_timesteps: int
    text_max_length: int
    weight_files: list[WeightFile]

    def architecture(self) -> dict:
        """The summary without source, format and file digests: equal for a folder and its single-file twin."""
        return self.model_dump(exclude={"source", "format", "weight_files"})


def _count(module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def summarize(checkpoint: Checkpoint) -> CheckpointSummary:
    pipeline = checkpoint.pipeline
    family = BY_NAME[checkpoint.family]
    network = getattr(pipeline, family.module)
    components = [
        ComponentSummary(name=name, class_name=type(module).__name__, parameters=_count(module))
        for name, module in pipeline.components.items()
        if isinstance(module, torch.nn.Module)
    ]
    modules = dict(network.named_modules())
    blocks = [
        TransformerBlockSummary(
            index=index,
            name=name,
            width=block_width(modules[name]),
            cross_attention=reads_text(modules[name]),
            parameters=_count(modules[name]),
        )
        for index, name in enumerate(transformer_block_names(network))
    ]
    scale = int(pipeline.vae_scale_factor)
    latent_size = default_latent_side(pipeline)
    return CheckpointSummary(
        source=str(checkpoint.source),
        format=checkpoint.format,
        family=family.name,
        denoiser=family.module,
        components=components,
        unet_transformer_blocks=blocks,
        latent_channels=int(pipeline.vae.config.latent_channels),
        latent_size=latent_size,
        image_size=latent_size * scale,
        vae_scale_factor=scale,
        scheduler=type(pipeline.scheduler).__name__,
        prediction_type=parameterization(pipeline),
        num_train_timesteps=pipeline.scheduler.config.num_train_timesteps,
        text_max_length=family.reads(*reading_tokenizer(pipeline)),  # what the pipeline reads
        weight_files=checkpoint.weight_files,
    )
