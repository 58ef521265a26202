"""Tiny random-weight diffusers pipelines of each model family, from configs alone (tests, demo, bench).

Each builder keeps its family's layout (text encoders and tokenizers, latent channels, VAE downsampling,
denoiser type and prediction target, scheduler) at toy width, so one denoiser call takes milliseconds
and a build about a second on a CPU. ``sample_size`` is the latent side; images are ``sample_size``
times the VAE's downsampling factor (8, or 32 for Sana's DC-AE) on a side.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from memaudit.tiny import text_models as text
from memaudit.tiny.pipeline import DEFAULT_WORDS, sd_ddim_scheduler

SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}
TEXT_MODELS = {
    "clip": (text.clip_tokenizer, text.clip_text_model),
    "t5": (text.t5_tokenizer, text.t5_encoder),
    "gemma": (text.gemma_tokenizer, text.gemma2_model),
    "bert": (text.bert_tokenizer, text.bert_model),
}


def _text(kind: str, suffix: str = "", **sizes) -> dict:
    """A tokenizer over the tiny word list and its text encoder, as ``tokenizer<suffix>``, ``text_encoder<suffix>``."""
    make_tokenizer, make_model = TEXT_MODELS[kind]
    tokenizer = make_tokenizer(DEFAULT_WORDS)
    return {f"tokenizer{suffix}": tokenizer, f"text_encoder{suffix}": make_model(tokenizer, **sizes)}


def _kl_vae(*, latent_channels: int, image_size: int, scaling_factor: float, shift_factor: float | None = None):
    """A four-level (8x downsampling) ``AutoencoderKL``; with a shift factor, SD3/Flux style (no quant convs)."""
    from diffusers import AutoencoderKL

    flow_style = shift_factor is not None
    return AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=image_size,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=not flow_style,
        use_post_quant_conv=not flow_style,
    ).eval()


def _dc_vae():
    """A six-level (32x downsampling) DC-AE with 32 latent channels, as Sana's: ResNet levels, then linear attention."""
    from diffusers import AutoencoderDC

    blocks, scales = ("ResBlock",) * 3 + ("EfficientViTBlock",) * 3, ((),) * 3 + ((5,),) * 3
    channels = (8, 8, 16, 16, 32, 32)  # the last a multiple of the latent channels (the shortcuts need it)
    halves = {"block_types": blocks, "block_out_channels": channels, "layers_per_block": (1,) * 6}
    halves["qkv_multiscales"] = scales
    settings = {f"{half}_{key}": value for half in ("encoder", "decoder") for key, value in halves.items()}
    return AutoencoderDC(latent_channels=32, attention_head_dim=4, scaling_factor=0.41407, **settings).eval()


def _unet(*, sample_size: int, cross_attention_dim: int, **extra):
    """An SD-layout ``UNet2DConditionModel``: three levels, attention in the lower two (as SDXL)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=sample_size,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        attention_head_dim=(2, 4, 4),
        norm_num_groups=8,
        cross_attention_dim=cross_attention_dim,
        **extra,
    ).eval()


def _pipeline(pipeline_class, **components):
    pipeline = pipeline_class(**components)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def build_sdxl(*, seed: int = 0, sample_size: int = 8):
    """SDXL: UNet with ``text_time`` added conditioning, CLIP-L and CLIP-G (with projection), Euler, epsilon."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    torch.manual_seed(seed)
    parts = _text("clip", hidden=32) | _text("clip", "_2", hidden=48, projection=48)
    parts["unet"] = _unet(
        sample_size=sample_size,
        cross_attention_dim=32 + 48,  # both encoders' penultimate hidden states, concatenated
        transformer_layers_per_block=(1, 1, 2),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 48,  # six size/crop ids and CLIP-G's pooled projection
    )
    parts["vae"] = _kl_vae(latent_channels=4, image_size=8 * sample_size, scaling_factor=0.13025)
    parts["scheduler"] = EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="leading")
    return _pipeline(StableDiffusionXLPipeline, add_watermarker=False, **parts)


def build_sd3(*, seed: int = 0, sample_size: int = 8, with_t5: bool = True):
    """SD3: MMDiT, two CLIPs with projection and (optionally) T5, 16 latent channels, flow matching."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(seed)
    parts = _text("clip", hidden=32, projection=32) | _text("clip", "_2", hidden=48, projection=48)
    parts |= _text("t5", "_3", hidden=96) if with_t5 else {"tokenizer_3": None, "text_encoder_3": None}
    parts["transformer"] = SD3Transformer2DModel(  # patches of 2, 16 latent channels in and out: the defaults
        sample_size=sample_size,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=96,  # T5's width; the CLIP states (32 + 48) are zero-padded to it
        caption_projection_dim=32,
        pooled_projection_dim=32 + 48,
        pos_embed_max_size=sample_size,
    ).eval()
    parts["vae"] = _kl_vae(latent_channels=16, image_size=8 * sample_size, scaling_factor=1.5305, shift_factor=0.0609)
    return _pipeline(StableDiffusion3Pipeline, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), **parts)


def build_pixart_sigma(*, seed: int = 0, sample_size: int = 8):
    """PixArt-Sigma: DiT with learned sigma (8 output channels for 4 latent), T5, DPM-Solver++, epsilon."""
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    torch.manual_seed(seed)
    parts = _text("t5", hidden=48)
    parts["transformer"] = PixArtTransformer2DModel(  # patches of 2
        sample_size=sample_size,
        in_channels=4,
        out_channels=8,
        num_layers=2,
        num_attention_heads=2,
        attention_head_dim=16,
        cross_attention_dim=32,
        caption_channels=48,
        use_additional_conditions=False,
    ).eval()
    parts["vae"] = _kl_vae(latent_channels=4, image_size=8 * sample_size, scaling_factor=0.13025)
    return _pipeline(PixArtSigmaPipeline, scheduler=DPMSolverMultistepScheduler(), **parts)


def build_sana(*, seed: int = 0, sample_size: int = 8):
    """Sana: linear-attention DiT, DC-AE (32x downsampling, 32 latent channels), Gemma 2, flow DPM-Solver."""
    from diffusers import DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel

    torch.manual_seed(seed)
    parts = _text("gemma", hidden=48)
    parts["transformer"] = SanaTransformer2DModel(  # patches of 1, 32 latent channels in and out: the defaults
        sample_size=sample_size,
        num_layers=2,
        num_attention_heads=2,
        attention_head_dim=16,
        num_cross_attention_heads=2,
        cross_attention_head_dim=16,
        cross_attention_dim=32,
        caption_channels=48,
    ).eval()
    parts["vae"] = _dc_vae()
    scheduler = DPMSolverMultistepScheduler(flow_shift=3.0, use_flow_sigmas=True, prediction_type="flow_prediction")
    return _pipeline(SanaPipeline, scheduler=scheduler, **parts)


def build_flux(*, seed: int = 0, sample_size: int = 8):
    """FLUX.1-dev: MMDiT with guidance embedding, CLIP-L (pooled) and T5, 16 latent channels packed 2x2."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(seed)
    parts = _text("clip", hidden=32) | _text("t5", "_2", hidden=48)
    parts["transformer"] = FluxTransformer2DModel(
        in_channels=16 * 4,  # latents are packed in 2x2 patches
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=48,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),
    ).eval()
    parts["vae"] = _kl_vae(latent_channels=16, image_size=8 * sample_size, scaling_factor=0.3611, shift_factor=0.1159)
    # FLUX.1's resolution-dependent shift (mu from the image's token count; 0.5 to 1.15, the defaults)
    parts["scheduler"] = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return _pipeline(FluxPipeline, **parts)


def build_lumina2(*, seed: int = 0, sample_size: int = 8):
    """Lumina-Image 2.0: unified next-DiT over Gemma 2 states, Flux-style VAE, flow matching."""
    from diffusers import FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel

    torch.manual_seed(seed)
    parts = _text("gemma", hidden=48)
    parts["transformer"] = Lumina2Transformer2DModel(  # patches of 2, 16 latent channels: the defaults
        sample_size=sample_size,
        hidden_size=32,
        num_layers=2,
        num_refiner_layers=1,
        num_attention_heads=2,
        num_kv_heads=1,
        multiple_of=16,
        axes_dim_rope=(4, 6, 6),
        cap_feat_dim=48,
    ).eval()
    parts["vae"] = _kl_vae(latent_channels=16, image_size=8 * sample_size, scaling_factor=0.3611, shift_factor=0.1159)
    return _pipeline(Lumina2Pipeline, scheduler=FlowMatchEulerDiscreteScheduler(), **parts)


def build_radedit(*, seed: int = 0, sample_size: int = 8):
    """RadEdit-style: an SD pipeline whose text encoder is a BERT (CXR-BERT stand-in), SDXL-scaled VAE, DDIM."""
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(seed)
    parts = _text("bert", hidden=32)
    parts["unet"] = _unet(sample_size=sample_size, cross_attention_dim=32)
    parts["vae"] = _kl_vae(latent_channels=4, image_size=8 * sample_size, scaling_factor=0.13025)
    parts |= {"scheduler": sd_ddim_scheduler(), "safety_checker": None, "feature_extractor": None}
    return _pipeline(StableDiffusionPipeline, requires_safety_checker=False, **parts)


FAMILY_BUILDERS: dict[str, Callable[..., object]] = {
    "sdxl": build_sdxl,
    "sd3": build_sd3,
    "pixart-sigma": build_pixart_sigma,
    "sana": build_sana,
    "flux": build_flux,
    "lumina2": build_lumina2,
    "radedit": build_radedit,
}


def save_tiny_family(name: str, folder: Path, *, seed: int = 0) -> Path:
    """Build the ``name`` family's tiny pipeline and save it as a diffusers folder (safetensors)."""
    pipeline = FAMILY_BUILDERS[name](seed=seed)
    folder = Path(folder)
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder
