"""`rad-dino`: a local DINOv2 folder's CLS embedding, preprocessed as its processor says; no weights, no run."""

from __future__ import annotations

import json

import pytest
import torch

from memaudit.errors import CheckpointError
from memaudit.features import ExtractorOptions, ExtractorUnavailable, create_extractor, extract_features


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny random DINOv2 in the Hugging Face layout, standing in for microsoft/rad-dino."""
    from transformers import Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("rad-dino") / "model"
    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=28, patch_size=14
    )
    Dinov2Model(config).save_pretrained(root, safe_serialization=True)
    processor = {"crop_size": {"height": 28, "width": 28}, "image_mean": [0.4, 0.4, 0.4], "image_std": [0.2] * 3}
    (root / "preprocessor_config.json").write_text(json.dumps(processor))
    return root


def test_features_are_the_cls_embedding_of_the_processors_input(folder):
    from transformers import Dinov2Model

    extractor = create_extractor("rad-dino", ExtractorOptions(weights=folder))
    assert (extractor.feature_dim, extractor.side, len(extractor.weights_digest)) == (32, 28, 64)
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    features = extract_features(extractor, images)
    reference = Dinov2Model.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = reference(pixel_values=(images.expand(-1, 3, -1, -1) - 0.4) / 0.2).pooler_output
    assert features.shape == (3, 32) and torch.allclose(features, expected, atol=1e-5)


def test_rad_dino_without_weights_or_with_pickled_ones_is_named(folder, tmp_path):
    with pytest.raises(ExtractorUnavailable, match="rad-dino has no weights.*never downloads"):
        create_extractor("rad-dino", ExtractorOptions())
    with pytest.raises(ExtractorUnavailable, match="not a RAD-DINO folder"):
        create_extractor("rad-dino", ExtractorOptions(weights=tmp_path))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="refusing to load pickle-based weights"):
        create_extractor("rad-dino", ExtractorOptions(weights=pickled))
