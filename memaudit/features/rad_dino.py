"""`rad-dino`: Microsoft's RAD-DINO (a DINOv2 ViT-B/14 trained on chest X-rays), its CLS embedding: the
latent space CheXGenBench measures distances in.

Weights come from a local folder in the Hugging Face layout (``config.json``, ``model.safetensors`` and,
when present, ``preprocessor_config.json``), never downloaded; pickled ``pytorch_model.bin`` weights are
refused unless --allow-pickle. Input: three channels at the processor's crop size (518), normalised with
its mean and std (RAD-DINO's own: 0.5307 and 0.2583 on every channel). A chest X-ray is square, so the
processor's resize of the shorter side and centre crop is a resize here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from memaudit.checkpoint.files import refuse_pickle, sha256_file
from memaudit.data.dataset import conform
from memaudit.features.base import ExtractorOptions, ExtractorUnavailable

DEFAULTS = {"crop_size": 518, "image_mean": 0.5307, "image_std": 0.2583}  # RAD-DINO's processor


def _processor(folder: Path) -> tuple[int, float, float]:
    """(input side, mean, std) from the folder's preprocessor_config.json, else RAD-DINO's."""
    path = folder / "preprocessor_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    crop = config.get("crop_size", DEFAULTS["crop_size"])
    side = int(crop["height"] if isinstance(crop, dict) else crop)
    mean, std = (config.get(key, DEFAULTS[key]) for key in ("image_mean", "image_std"))
    first = lambda value: float(value[0] if isinstance(value, list) else value)  # noqa: E731 (one value per channel)
    return side, first(mean), first(std)


class RadDinoFeatures:
    name = "rad-dino"

    def __init__(self, options: ExtractorOptions) -> None:
        folder = options.weights
        if folder is None:
            raise ExtractorUnavailable(
                "rad-dino has no weights: give checks.nearest_neighbour.extractor_weights, a local folder holding "
                "microsoft/rad-dino (config.json, model.safetensors); memaudit never downloads weights"
            )
        folder = Path(folder)
        safe, pickled = folder / "model.safetensors", folder / "pytorch_model.bin"
        if not (folder / "config.json").is_file() or not (safe.is_file() or pickled.is_file()):
            raise ExtractorUnavailable(f"{folder}: not a RAD-DINO folder (config.json and model.safetensors)")
        if not safe.is_file():
            refuse_pickle(pickled, allow_pickle=options.allow_pickle)
        from transformers import Dinov2Model

        self.model = Dinov2Model.from_pretrained(folder, local_files_only=True, use_safetensors=safe.is_file())
        self.model.eval().to(options.device)
        self.device = options.device
        self.feature_dim = int(self.model.config.hidden_size)
        self.side, self.mean, self.std = _processor(folder)
        self.weights_digest = sha256_file(safe if safe.is_file() else pickled)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        return (conform(image, size=self.side, channels=3) - self.mean) / self.std

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=inputs.to(self.device)).pooler_output.float()
