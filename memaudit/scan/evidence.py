"""Evidence thumbnails for internal reports: only made when the user asks for them explicitly."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from memaudit.scan.result import EvidenceImage


def png_data_uri(image: torch.Tensor) -> str:
    """A ``[C, H, W]`` image in [0, 1] as a PNG data URI."""
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    if array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def evidence_image(label: str, train_id: str, generated: torch.Tensor, train: torch.Tensor) -> EvidenceImage:
    return EvidenceImage(
        label=label, train_id=train_id, generated_png=png_data_uri(generated), train_png=png_data_uri(train)
    )
