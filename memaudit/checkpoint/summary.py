"""What a checkpoint holds, as ``memaudit inspect`` prints it: one record, the same for both formats."""

from __future__ import annotations

from pydantic import BaseModel

from memaudit.checkpoint.blocks import transformer_block_names
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
    components: list[ComponentSummary]
    unet_transformer_blocks: list[TransformerBlockSummary]
    latent_channels: int
    latent_size: int
    image_size: int
    vae_scale_factor: int
    scheduler: str
    prediction_type: str
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
    unet, vae = pipeline.unet, pipeline.vae
    components = [
        ComponentSummary(name=name, class_name=type(module).__name__, parameters=_count(module))
        for name, module in (("unet", unet), ("vae", vae), ("text_encoder", pipeline.text_encoder))
    ]
    modules = dict(unet.named_modules())
    blocks = []
    for index, name in enumerate(transformer_block_names(unet)):
        block = modules[name]
        blocks.append(
            TransformerBlockSummary(
                index=index,
                name=name,
                width=block.norm1.normalized_shape[0],
                cross_attention=getattr(block, "attn2", None) is not None and block.attn2.is_cross_attention,
                parameters=_count(block),
            )
        )
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    latent_size = unet.config.sample_size
    return CheckpointSummary(
        source=str(checkpoint.source),
        format=checkpoint.format,
        components=components,
        unet_transformer_blocks=blocks,
        latent_channels=unet.config.in_channels,
        latent_size=latent_size,
        image_size=latent_size * scale,
        vae_scale_factor=scale,
        scheduler=type(pipeline.scheduler).__name__,
        prediction_type=pipeline.scheduler.config.get("prediction_type", "epsilon"),
        num_train_timesteps=pipeline.scheduler.config.num_train_timesteps,
        text_max_length=pipeline.tokenizer.model_max_length,
        weight_files=checkpoint.weight_files,
    )
