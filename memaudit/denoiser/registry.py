"""The denoiser of each family, by the family's name in ``checkpoint.families``."""

from __future__ import annotations

from memaudit.checkpoint.families import family_of_pipeline
from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.flux import Flux
from memaudit.denoiser.lumina2 import Lumina2
from memaudit.denoiser.pixart import PixArt
from memaudit.denoiser.sana import Sana
from memaudit.denoiser.sd import StableDiffusion
from memaudit.denoiser.sd3 import StableDiffusion3
from memaudit.denoiser.sdxl import StableDiffusionXL

DENOISERS: dict[str, type[Denoiser]] = {
    kind.family: kind for kind in (StableDiffusion, StableDiffusionXL, StableDiffusion3, PixArt, Sana, Flux, Lumina2)
}


def denoiser_for(model, *, guidance: float | None = None) -> Denoiser:
    """The denoiser of a loaded pipeline (its family from its class), or ``model`` itself if it is one.
    ``guidance``: the guidance input of a guidance-distilled family (Flux-dev; its pipeline's default 3.5)."""
    if isinstance(model, Denoiser):
        if guidance is not None:
            model.guidance = float(guidance)
        return model
    kind = DENOISERS[family_of_pipeline(model).name]
    return kind(model) if guidance is None else kind(model, guidance=guidance)
