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


def _prior_factor(alphas, schedule) -> float:
    """SecMI's t-error factor under the prior denoiser eps(x, t) = sqrt(1 - a_t) x: every step is linear in x0."""

    def move(x, eps, start, end):
        a_start, b_start = alphas[start] ** 0.5, (1 - alphas[start]) ** 0.5
        a_end, b_end = alphas[end] ** 0.5, (1 - alphas[end]) ** 0.5
        return a_end * (x - b_start * eps) / a_start + b_end * eps

    x = 1.0
    for t in schedule[:-1]:
        x = move(x, (1 - alphas[t]) ** 0.5 * x, t, t + 10)
    t = schedule[-1]
    ahead = move(x, (1 - alphas[t]) ** 0.5 * x, t, t + 10)
    back = move(ahead, (1 - alphas[t + 10]) ** 0.5 * ahead, t + 10, t)
    return (x - back) ** 2


def test_secmi_is_zero_on_a_memorized_latent_and_a_known_multiple_of_an_unseen_ones_power(memorizer):
    from memaudit.sampling.membership import secmi_scores

    caption = "planted patient 0 small left pleural effusion"
    latent = memorizer.unet.planted[0][1].unsqueeze(0)
    planted = secmi_scores(memorizer, latent, encode_prompts(memorizer, [caption]), timestep=100, interval=10)
    assert planted.abs().item() < 1e-6
    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    alphas = [float(a) for a in memorizer.unet.alphas_cumprod]
    scores = secmi_scores(memorizer, z, encode_prompts(memorizer, ["stable heart size case 0"] * 3), timestep=100)
    expected = -_prior_factor(alphas, list(range(0, 101, 10))) * z.double().flatten(1).pow(2).mean(dim=1)
    assert torch.allclose(scores, expected, rtol=1e-3)


def test_the_loss_attack_is_zero_on_a_memorized_latent_and_known_under_the_prior(memorizer):
    from memaudit.sampling.membership import loss_scores
    from memaudit.sampling.seeds import sample_seed

    caption = "planted patient 1 small left pleural effusion"
    latent = memorizer.unet.planted[1][1].unsqueeze(0)
    planted = loss_scores(memorizer, latent, encode_prompts(memorizer, [caption]), timestep=200, seeds=[7], draws=2)
    assert planted.abs().item() < 1e-8
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    a = float(memorizer.unet.alphas_cumprod[200])
    embeddings = encode_prompts(memorizer, ["stable heart size case 0"] * 2)
    scores = loss_scores(memorizer, z, embeddings, timestep=200, seeds=[5, 6], draws=3)
    expected = []
    for latent, seed in zip(z.double(), [5, 6], strict=True):
        draws = [
            torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(sample_seed(seed, "membership-loss", k)))
            for k in range(3)
        ]  # eps(x_t) - e = sqrt(a (1 - a)) z - a e under the prior denoiser
        expected.append(-sum(((a * (1 - a)) ** 0.5 * latent - a * e.double()).pow(2).mean() for e in draws) / 3)
    assert torch.allclose(scores, torch.stack(expected), rtol=1e-4)


def test_the_other_attacks_do_not_depend_on_the_batch_and_check_their_arguments(tiny_pipeline):
    from memaudit.sampling.membership import loss_scores, secmi_scores

    latents = torch.randn(5, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    embeddings = encode_prompts(tiny_pipeline, [f"case {k}" for k in range(5)])
    seeds = list(range(5))
    for attack, kwargs in ((loss_scores, {"seeds": seeds}), (secmi_scores, {"interval": 10})):
        one = attack(tiny_pipeline, latents, embeddings, timestep=100, batch_size=1, **kwargs)
        many = attack(tiny_pipeline, latents, embeddings, timestep=100, batch_size=8, **kwargs)
        assert one.shape == (5,) and torch.allclose(one, many, rtol=1e-4, atol=1e-7), attack.__name__
    with pytest.raises(ValueError, match="multiple of `interval`"):
        secmi_scores(tiny_pipeline, latents, embeddings, timestep=105, interval=10)
    with pytest.raises(ValueError, match="one seed per latent"):
        loss_scores(tiny_pipeline, latents, embeddings, timestep=100, seeds=[1])
