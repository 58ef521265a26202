"""A patient-verification network: does a pair of radiographs show one patient?

Siamese, as Packhäuser et al. (Scientific Reports 2022) and CheXGenBench's re-identification model:
one embedding network applied to both images, then a head on the absolute difference of the two
embeddings giving the logit of P(same patient). The embedding also ranks candidates: a generated image
is compared with each training patient's nearest images by embedding distance before the head scores
the closest pairs.

Architectures: ``small-cnn`` (four strided convolutions, for phantom-sized images, trained here in
minutes on a CPU) and ``resnet50`` (torchvision's, the published verifiers' backbone, for real
radiographs; its weights come from a local file, never downloaded). The published verifiers squash
their embedding with a sigmoid before the difference (``embedding_activation``) and read inputs with
ImageNet's per-channel normalisation; both are recorded in the config (memaudit/reid/convert.py).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

Architecture = Literal["small-cnn", "resnet50"]


class VerifierConfig(BaseModel):
    """What a verifier's weights need to be used as they were trained: written beside them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: Architecture
    input_side: int = Field(ge=8, description="images are resized to this square side (pixels)")
    channels: Literal[1, 3] = 1
    mean: float | tuple[float, ...] = Field(
        0.5, description="input normalisation: (x - mean) / std, x in [0, 1]; one value or one per channel"
    )
    std: float | tuple[float, ...] = 0.25
    embedding_dim: int = Field(64, ge=2)
    embedding_activation: Literal["none", "sigmoid"] = Field(
        "none", description="applied to the embedding before the pair head (the published verifiers: sigmoid)"
    )
    width: int = Field(16, ge=4, description="small-cnn: channels of the first convolution (doubling, to 4x)")
    trained_on: str | None = Field(None, description="where the weights came from, for the report")

    @model_validator(mode="after")
    def _normalisation_fits_the_channels(self) -> VerifierConfig:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != self.channels:
                raise ValueError(f"{name} has {len(value)} values for {self.channels} input channel(s)")
        stds = self.std if isinstance(self.std, tuple) else (self.std,)
        if min(stds) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        return self


class Verifier(torch.nn.Module):
    def __init__(self, config: VerifierConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = _backbone(config)
        self.head = torch.nn.Linear(config.embedding_dim, 1)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` in [0, 1], already at the input side and channels -> the network's input."""
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.config.mean, dtype=images.dtype, device=images.device).reshape(shape)
        std = torch.tensor(self.config.std, dtype=images.dtype, device=images.device).reshape(shape)
        return (images - mean) / std

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, C, side, side]`` in [0, 1] -> embeddings ``[N, embedding_dim]`` (not normalised: the head
        weighs absolute differences, and their scale is what it learns from)."""
        embedding = self.backbone(self.preprocess(images))
        return torch.sigmoid(embedding) if self.config.embedding_activation == "sigmoid" else embedding

    def pair_logits(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Logits of P(same patient) for embedding pairs, row by row: ``[N]``."""
        return self.head((first - second).abs()).squeeze(1)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.pair_logits(self.embed(first), self.embed(second))


def _backbone(config: VerifierConfig) -> torch.nn.Module:
    if config.architecture == "resnet50":
        from torchvision.models import resnet50

        network = resnet50(weights=None, num_classes=config.embedding_dim)
        if config.channels == 1:
            network.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return network
    layers: list[torch.nn.Module] = []
    channels = config.channels
    for level in range(4):
        width = config.width * 2 ** min(level, 2)
        layers += [
            torch.nn.Conv2d(channels, width, kernel_size=3, stride=2 if level else 1, padding=1),
            torch.nn.GroupNorm(4, width),
            torch.nn.ReLU(),
        ]
        channels = width
    # A coarse 4 x 4 layout survives the pooling: where a patient's anatomy lies is part of who they are
    # (a global average would keep only which textures occur, not where).
    layers += [torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(16 * channels, config.embedding_dim)]
    return torch.nn.Sequential(*layers)
