"""One interface to run every supported model family (``base.Denoiser``), one file per family."""

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.registry import DENOISERS, denoiser_for

__all__ = ["DENOISERS", "Conditioning", "Denoiser", "denoiser_for"]
