"""Build tiny random-weight Stable Diffusion pipelines from configs alone (tests, demo, bench)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from memaudit.tiny.vocabulary import load_clip_tokenizer, write_vocabulary

# Words every tiny tokenizer knows, so that tests and demos can use report-style captions.
DEFAULT_WORDS = tuple(
    """
    no acute cardiopulmonary process small moderate large left right bilateral
    pleural effusion consolidation cardiomegaly pneumothorax nodule support devices lung lungs
    heart size normal stable upper lower lobe base apex enlarged
    mild severe tube line catheter pacemaker clear
    """.split()
)


@dataclass(frozen=True)
class TinySDConfig:
    """Shape of a tiny SD-layout pipeline; defaults build in well under a second on a CPU."""

    latent_size: int = 8
    unet_channels: tuple[int, ...] = (32, 64, 64)
    down_blocks: tuple[str, ...] = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
    up_blocks: tuple[str, ...] = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
    layers_per_block: int = 1
    attention_heads: int = 2
    norm_groups: int = 8
    vae_channels: tuple[int, ...] = (8, 16)
    vae_layers_per_block: int = 1
    vae_norm_groups: int | None = None  # default: min(vae_channels[0], 8)
    latent_channels: int = 4
    text_hidden: int = 32
    text_layers: int = 5
    text_heads: int = 4
    text_intermediate: int = 64
    text_vocab_size: int | None = None  # default: the tokenizer's; CLIP-L has 49,408 rows
    max_length: int = 77
    words: tuple[str, ...] = field(default=tuple(DEFAULT_WORDS))

    @property
    def image_size(self) -> int:
        return self.latent_size * 2 ** (len(self.vae_channels) - 1)


# Stable Diffusion 1.5's shapes (860M-parameter UNet, 84M VAE, 123M CLIP ViT-L/14 text encoder), at 512 px.
SD15_SHAPES = TinySDConfig(
    latent_size=64,
    unet_channels=(320, 640, 1280, 1280),
    down_blocks=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_blocks=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    layers_per_block=2,
    attention_heads=8,
    norm_groups=32,
    vae_channels=(128, 256, 512, 512),
    vae_layers_per_block=2,
    vae_norm_groups=32,
    text_hidden=768,
    text_layers=12,
    text_heads=12,
    text_intermediate=3072,
    text_vocab_size=49408,
)


def sd_ddim_scheduler():
    """DDIM with Stable Diffusion's training noise schedule."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_tiny_pipeline(config: TinySDConfig | None = None, *, seed: int = 0):
    """A ``StableDiffusionPipeline`` with random weights drawn from ``seed``."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    config = config or TinySDConfig()
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = load_clip_tokenizer(*write_vocabulary(config.words, Path(scratch)), max_length=config.max_length)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=config.latent_size,
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        block_out_channels=config.unet_channels,
        down_block_types=config.down_blocks,
        up_block_types=config.up_blocks,
        layers_per_block=config.layers_per_block,
        cross_attention_dim=config.text_hidden,
        attention_head_dim=config.attention_heads,
        norm_num_groups=config.norm_groups,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=config.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * len(config.vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(config.vae_channels),
        layers_per_block=config.vae_layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.vae_norm_groups or min(config.vae_channels[0], 8),
        sample_size=config.image_size,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=config.text_vocab_size or len(tokenizer),
            hidden_size=config.text_hidden,
            intermediate_size=config.text_intermediate,
            num_hidden_layers=config.text_layers,
            num_attention_heads=config.text_heads,
            max_position_embeddings=config.max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    pipeline = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=sd_ddim_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
