"""The model families memaudit loads, named from a folder's model_index.json, never guessed from sizes.

One row per family: the diffusers pipeline classes that belong to it (the name model_index.json gives
under ``_class_name``) and the components a folder of that family must hold. How each family is run
lives beside the checks, in ``memaudit.denoiser`` (one file per family, registered under these names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memaudit.errors import CheckpointError


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    pipelines: tuple[str, ...]
    components: tuple[str, ...]  # folders a diffusers checkpoint of this family must have
    # Tokenizers in preference order: the first present is the one that reads furthest into a caption
    # (T5 beside CLIP's 77 tokens), which decides when two captions are one prompt.
    tokenizers: tuple[str, ...] = ("tokenizer",)
    module: str = "transformer"  # the pipeline attribute of the denoising network
    flow: bool = False  # rectified flow (x_s = (1 - s) x0 + s e), else a DDPM noise schedule
    # The guidance scale the family is sampled with by default: CheXGenBench's per model (7.5 for SD 1.x/2.x,
    # 4.5 for SD 3.5, PixArt-Sigma and Sana), else the diffusers pipeline's default (SDXL 5, Lumina 2 4,
    # Flux-dev 3.5 as its embedded guidance).
    guidance: float = 7.5
    # Tokens of a caption the pipeline's long text encoder reads by default (its max_sequence_length:
    # T5 or Gemma); None: the tokenizer's own maximum (CLIP's 77).
    text_length: int | None = None

    @property
    def pipeline_class(self) -> str:
        return self.pipelines[0]

    def reads(self, tokenizer_name: str, tokenizer) -> int:
        """Tokens of a caption the pipeline reads when ``tokenizer_name`` is the furthest-reading tokenizer it
        has: the long encoder's length where that tokenizer is the long encoder's (the pipeline pads and cuts
        to it whatever the tokenizer's own maximum), else the tokenizer's own (SD 3.5 without T5: CLIP's 77)."""
        if self.text_length is not None and tokenizer_name == self.tokenizers[0]:
            return self.text_length
        return int(tokenizer.model_max_length)


FAMILIES = (
    Family(
        "sd",
        "Stable Diffusion 1.x/2.x",
        ("StableDiffusionPipeline",),
        ("unet", "vae", "text_encoder", "tokenizer", "scheduler"),
        module="unet",
    ),
    Family(
        "sdxl",
        "Stable Diffusion XL",
        ("StableDiffusionXLPipeline",),
        ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
        module="unet",
        guidance=5.0,
    ),
    Family(
        "sd3",
        "Stable Diffusion 3.x",
        ("StableDiffusion3Pipeline",),
        ("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
        ("tokenizer_3", "tokenizer"),
        flow=True,
        guidance=4.5,
        text_length=256,
    ),
    Family(
        "pixart",
        "PixArt-Alpha/Sigma",
        ("PixArtSigmaPipeline", "PixArtAlphaPipeline"),
        ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
        guidance=4.5,
        text_length=300,
    ),
    Family(
        "sana",
        "Sana",
        ("SanaPipeline",),
        ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
        flow=True,
        guidance=4.5,
        text_length=300,
    ),
    Family(
        "flux",
        "Flux.1",
        ("FluxPipeline",),
        ("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
        ("tokenizer_2",),
        flow=True,
        guidance=3.5,
        text_length=512,
    ),
    Family(
        "lumina2",
        "Lumina-Image 2.0",
        ("Lumina2Pipeline",),
        ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
        flow=True,
        guidance=4.0,
        text_length=256,
    ),
)
BY_NAME = {family.name: family for family in FAMILIES}
_BY_PIPELINE = {pipeline: family for family in FAMILIES for pipeline in family.pipelines}


def supported() -> str:
    return ", ".join(f"{family.title} ({'/'.join(family.pipelines)})" for family in FAMILIES)


def family_named(pipeline_class: str, *, source: object) -> Family:
    family = _BY_PIPELINE.get(pipeline_class)
    if family is None:
        raise CheckpointError(f"{source}: unsupported model family {pipeline_class!r}; memaudit loads {supported()}")
    return family


def read_model_index(root: Path) -> dict:
    path = root / "model_index.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{root}: not a diffusers checkpoint folder (no model_index.json)") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(index, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return index


def family_of_folder(root: Path) -> Family:
    """The family a diffusers folder (or a single file's --config folder) declares."""
    return family_named(str(read_model_index(root).get("_class_name", "")), source=root / "model_index.json")


def family_of_pipeline(pipeline) -> Family:
    return family_named(type(pipeline).__name__, source=type(pipeline).__name__)


def denoising_network(pipeline):
    """The pipeline's denoising network (its UNet or transformer)."""
    return getattr(pipeline, family_of_pipeline(pipeline).module)


def reading_tokenizer(pipeline) -> tuple[str, object]:
    """The name and tokenizer that read furthest into a caption (the family's preference order)."""
    names = family_of_pipeline(pipeline).tokenizers
    return next((name, tokenizer) for name in names if (tokenizer := getattr(pipeline, name, None)) is not None)


def default_latent_side(pipeline) -> int:
    """The latent side the model was built for: its network's sample size, else the pipeline's default."""
    network = denoising_network(pipeline)
    return int(getattr(network.config, "sample_size", None) or pipeline.default_sample_size)


def parameterization(pipeline) -> str:
    """What the network predicts: ``flow`` (the velocity e - x0), else the scheduler's prediction type."""
    if family_of_pipeline(pipeline).flow:
        return "flow"
    return pipeline.scheduler.config.get("prediction_type", "epsilon")
