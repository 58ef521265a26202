"""Evidence thumbnails for internal reports, made only when the user asks for them explicitly."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from memaudit.results.scan_result import EvidenceImage


def png_bytes(image: torch.Tensor) -> bytes:
    """A ``[C, H, W]`` image in [0, 1] as lossless 8-bit PNG bytes (grayscale for one channel)."""
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    if array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def evidence_image(label: str, train_id: str, *, generated: torch.Tensor, train: torch.Tensor) -> EvidenceImage:
    return EvidenceImage(label=label, train_id=train_id, generated_png=png_bytes(generated), train_png=png_bytes(train))
