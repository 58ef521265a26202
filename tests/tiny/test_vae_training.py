"""Training the tiny VAE on phantoms lowers its reconstruction error, reproducibly."""

from __future__ import annotations

import copy

import pytest
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.phantoms.cohort import write_cohort
from memaudit.tiny.vae_training import load_images, reconstruction_error, train_vae


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = write_cohort(tmp_path_factory.mktemp("phantoms"), count=24, seed=0, size=16)
    return load_images(ImageCaptionDataset(folder), 16)


def test_vae_learns_phantoms(tiny_pipeline, images):
    assert images.shape == (24, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    vae = copy.deepcopy(tiny_pipeline.vae)
    before = reconstruction_error(vae, images)
    losses = train_vae(vae, images, steps=60, batch_size=8, learning_rate=3e-3, seed=0)
    assert reconstruction_error(vae, images) < 0.7 * before
    assert sum(losses[-10:]) < sum(losses[:10])


def test_vae_training_is_seeded(tiny_pipeline, images):
    first, second = copy.deepcopy(tiny_pipeline.vae), copy.deepcopy(tiny_pipeline.vae)
    kwargs = dict(steps=5, batch_size=8, learning_rate=3e-3, seed=3)
    assert train_vae(first, images, **kwargs) == train_vae(second, images, **kwargs)
    pairs = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
