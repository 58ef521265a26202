"""Feature extractors: the registry, the weights refusal, agreement with torchxrayvision, the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.features import ExtractorOptions, ExtractorUnavailable, create_extractor, extract_features
from memaudit.features.cache import FeatureCache, dataset_features
from tests.images import write_png


def test_unknown_extractor_lists_the_known_ones():
    with pytest.raises(ExtractorUnavailable, match="unknown feature extractor 'inception'; available: pixels"):
        create_extractor("inception")


def test_xrv_refuses_to_run_without_weights(tmp_path):
    with pytest.raises(ExtractorUnavailable, match="has no weights.*never runs an extractor with random weights"):
        create_extractor("xrv-densenet121", ExtractorOptions())
    with pytest.raises(ExtractorUnavailable, match="weights not found"):
        create_extractor("xrv-densenet121", ExtractorOptions(weights=tmp_path / "none.safetensors"))


def test_random_weights_only_when_asked_explicitly(tmp_path):
    extractor = create_extractor("xrv-densenet121", ExtractorOptions(allow_random_weights=True))
    assert extractor.weights_digest == "random"
    assert extract_features(extractor, torch.rand(1, 1, 32, 32)).shape == (1, 1024)
    assert not FeatureCache(tmp_path, extractor).enabled  # random features are never cached


@pytest.fixture(scope="module")
def xrv_weights(tmp_path_factory):
    """A random DenseNet-121 saved as a local safetensors file: stands in for real weights."""
    import torchxrayvision as xrv
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = xrv.models.DenseNet(weights=None, num_classes=18)
    path = tmp_path_factory.mktemp("xrv") / "densenet121.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model.eval(), path


def test_xrv_features_are_torchxrayvision_pooled_features(xrv_weights):
    model, path = xrv_weights
    extractor = create_extractor("xrv-densenet121", ExtractorOptions(weights=path))
    assert len(extractor.weights_digest) == 64
    images = torch.rand(3, 1, 48, 40, generator=torch.Generator().manual_seed(1))
    features = extract_features(extractor, images, batch_size=2)
    # reference: torchxrayvision's own preprocessing convention and features2 on the same weights
    import torch.nn.functional as F

    inputs = F.interpolate(images, size=(224, 224), mode="bilinear", antialias=True).clamp(0, 1) * 2048 - 1024
    with torch.no_grad():
        expected = model.features2(inputs)
    assert features.shape == (3, 1024)
    assert torch.allclose(features, expected, atol=1e-4, rtol=1e-4)


def test_pickle_weights_need_allow_pickle(xrv_weights, tmp_path):
    model, _ = xrv_weights
    path = tmp_path / "xrv.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(Exception, match="pickle"):
        create_extractor("xrv-densenet121", ExtractorOptions(weights=path))
    assert create_extractor("xrv-densenet121", ExtractorOptions(weights=path, allow_pickle=True)).feature_dim == 1024


def test_pixel_features_known_answer():
    extractor = create_extractor("pixels")
    image = torch.zeros(1, 3, 32, 32)
    image[:, :, :16] = 1.0  # top half white (RGB -> luma 1.0)
    features = extract_features(extractor, image)
    assert features.shape == (1, 1024)
    assert torch.allclose(features[0, :512], torch.full((512,), 0.5)) and torch.allclose(
        features[0, 512:], torch.full((512,), -0.5)
    )


@pytest.fixture
def dataset(tmp_path):
    rows = []
    for index in range(5):
        write_png(tmp_path / f"{index}.png", (np.random.default_rng(index).random((8, 8)) * 255).astype(np.uint8))
        rows.append({"file_name": f"{index}.png", "text": ""})
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ImageCaptionDataset(tmp_path)


class CountingPixels:
    """The pixels extractor, counting how many images it embeds."""

    def __init__(self, weights_digest: str = "none"):
        self.inner = create_extractor("pixels")
        self.name, self.weights_digest, self.feature_dim = "pixels", weights_digest, self.inner.feature_dim
        self.embedded = 0

    def preprocess(self, image):
        return self.inner.preprocess(image)

    def embed(self, inputs):
        self.embedded += inputs.shape[0]
        return self.inner.embed(inputs)


def test_cache_returns_identical_features_without_recomputing(dataset, tmp_path):
    extractor = CountingPixels()
    first = dataset_features(dataset, extractor, cache=FeatureCache(tmp_path / "cache", extractor), batch_size=2)
    assert extractor.embedded == 5
    second = dataset_features(dataset, extractor, cache=FeatureCache(tmp_path / "cache", extractor))
    assert extractor.embedded == 5 and torch.equal(first, second)
    assert torch.allclose(first, extract_features(extractor.inner, dataset.load_images()))


@pytest.mark.parametrize("damage", ["overwrite", "truncate", "another image's entry", "old unsealed .npy"])
def test_a_changed_cache_entry_is_named_recomputed_and_replaced(dataset, tmp_path, damage):
    """Overwriting the holdout's cached features once turned a near-copy FAIL into a PASS."""
    extractor = CountingPixels()
    cache = FeatureCache(tmp_path / "cache", extractor)
    expected = dataset_features(dataset, extractor, cache=cache)
    digest = dataset.image_digests[2]
    path = cache._path(digest)
    if damage == "overwrite":
        content = bytearray(path.read_bytes())
        content[-8:] = bytes(8)
        path.write_bytes(bytes(content))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-4])
    elif damage == "another image's entry":
        path.write_bytes(cache._path(dataset.image_digests[0]).read_bytes())
    else:
        np.save(path.with_suffix(".npy"), np.zeros(extractor.feature_dim, dtype=np.float32))
        path.with_suffix(".npy").replace(path)
    said = []
    cache = FeatureCache(tmp_path / "cache", extractor, on_stale=said.append)
    again = dataset_features(dataset, extractor, cache=cache)
    assert torch.equal(again, expected) and extractor.embedded == 5 + 1
    assert len(said) == 1 and str(path) in said[0], said
    dataset_features(dataset, extractor, cache=FeatureCache(tmp_path / "cache", extractor, on_stale=said.append))
    assert extractor.embedded == 6 and len(said) == 1  # replaced: trusted again


def test_cache_key_includes_the_weights_digest_and_skips_random_weights(dataset, tmp_path):
    dataset_features(dataset, CountingPixels("aaa"), cache=FeatureCache(tmp_path, CountingPixels("aaa")))
    other = CountingPixels("bbb")
    dataset_features(dataset, other, cache=FeatureCache(tmp_path, other))
    assert other.embedded == 5
    random = CountingPixels("random")
    for _ in range(2):
        dataset_features(dataset, random, cache=FeatureCache(tmp_path, random))
    assert random.embedded == 10 and not (tmp_path / "pixels" / "random").exists()
