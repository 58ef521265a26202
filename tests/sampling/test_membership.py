"""PIA's UNet calls: the closed-form memorizer gives exact answers, and scores do not depend on batching."""

from __future__ import annotations

import pytest
import torch

from memaudit.sampling.membership import membership_scores
from memaudit.sampling.text import encode_prompts
from memaudit.tiny.memorizer import build_memorizer


@pytest.fixture(scope="module")
def memorizer(tiny_pipeline, tmp_path_factory):
    checkpoint, *_ = build_memorizer(tiny_pipeline, tmp_path_factory.mktemp("pia"), planted=2)
    return checkpoint.pipeline


def test_a_memorized_latent_with_its_caption_scores_exactly_zero(memorizer):
    """For a planted (caption, latent) the exact denoiser's t = 0 noise re-noises onto the same prediction."""
    caption = "planted patient 0 small left pleural effusion"
    latent = memorizer.unet.planted[0][1].unsqueeze(0)
    score = membership_scores(memorizer, latent, encode_prompts(memorizer, [caption]), timestep=200, p=4)
    assert score.abs().item() < 1e-4


def test_an_unseen_latent_scores_the_prior_denoisers_distance(memorizer):
    """Under the standard normal prior eps(x, t) = sqrt(1 - a_t) x, so the distance is a known multiple of |z|_p."""
    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    embeddings = encode_prompts(memorizer, ["stable heart size case 0"] * 3)
    a0, at = (float(memorizer.unet.alphas_cumprod[t]) for t in (0, 200))
    factor = abs((1 - at) ** 0.5 * (at**0.5 + ((1 - at) * (1 - a0)) ** 0.5) - (1 - a0) ** 0.5)
    expected = -factor * z.double().flatten(1).norm(p=4, dim=1)
    scores = membership_scores(memorizer, z, embeddings, timestep=200, p=4)
    assert torch.allclose(scores, expected, rtol=1e-4)


def test_scores_do_not_depend_on_the_batch(tiny_pipeline):
    latents = torch.randn(5, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    embeddings = encode_prompts(tiny_pipeline, [f"case {k}" for k in range(5)])
    one = membership_scores(tiny_pipeline, latents, embeddings, timestep=300, p=4, batch_size=1)
    many = membership_scores(tiny_pipeline, latents, embeddings, timestep=300, p=4, batch_size=8)
    assert one.shape == (5,) and torch.allclose(one, many, rtol=1e-4, atol=1e-6)


def test_timestep_and_counts_are_checked(tiny_pipeline):
    latents, embeddings = torch.zeros(2, 4, 8, 8), encode_prompts(tiny_pipeline, ["a", "b"])
    with pytest.raises(ValueError, match="timestep"):
        membership_scores(tiny_pipeline, latents, embeddings, timestep=0, p=4)
    with pytest.raises(ValueError, match="2 latents but 1 caption embeddings"):
        membership_scores(tiny_pipeline, latents, embeddings[:1], timestep=10, p=4)
