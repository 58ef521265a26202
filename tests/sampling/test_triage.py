"""The triage detectors' model calls: the same latents as the probe, batch-independent, closed-form
answers on the exact memorizer, and cross-attention captured without changing the UNet's output."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from memaudit.metrics.triage import DETECTORS, channel_cosine
from memaudit.sampling.attention import recording
from memaudit.sampling.probe import noise_magnitude_scores
from memaudit.sampling.scheduler import make_scheduler
from memaudit.sampling.seeds import initial_latents, sample_seed
from memaudit.sampling.text import encode_prompts
from memaudit.sampling.triage import ASTHANA_COSINE_WEIGHT, triage_scores
from memaudit.tiny.memorizer import build_memorizer

CAPTIONS = ["small left effusion", "no acute process", "cardiomegaly with edema"]
COMMON = dict(steps=1, num_inference_steps=10, guidance_scale=7.5, seed=3, scheduler="ddim")


def _scores(pipeline, detector, *, generations, batch_size=8, captions=CAPTIONS):
    return triage_scores(
        pipeline,
        encode_prompts(pipeline, captions),
        encode_prompts(pipeline, [""]),
        detector=detector,
        generations=generations,
        latent_size=int(pipeline.unet.config.sample_size),
        batch_size=batch_size,
        **COMMON,
    )


def test_cross_attention_recording_leaves_the_output_unchanged_and_restores_processors(tiny_pipeline):
    unet = tiny_pipeline.unet
    latents = torch.randn(2, unet.config.in_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    context = encode_prompts(tiny_pipeline, CAPTIONS[:2]).tokens
    before = dict(unet.attn_processors)
    with torch.no_grad():
        plain = unet(latents, 500, encoder_hidden_states=context).sample
        with recording(unet) as recorder:
            recorded = unet(latents, 500, encoder_hidden_states=context).sample
    assert torch.allclose(plain, recorded, atol=1e-5)
    cross_layers = [name for name in before if name.endswith("attn2.processor")]
    assert len(recorder.layers) == len(cross_layers) > 0
    for layer in recorder.layers:  # per sample, a distribution over the text tokens
        assert layer.shape == (2, context.shape[1])
        assert torch.allclose(layer.sum(dim=1), torch.ones(2), atol=1e-5)
    assert {name: type(p) for name, p in unet.attn_processors.items()} == {n: type(p) for n, p in before.items()}


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_scores_do_not_depend_on_the_batch(tiny_pipeline, detector):
    generations = max(2, DETECTORS[detector].min_generations)
    one = _scores(tiny_pipeline, detector, generations=generations, batch_size=1)
    many = _scores(tiny_pipeline, detector, generations=generations, batch_size=64)
    assert one.shape == (len(CAPTIONS),) and one.dtype == torch.float64 and torch.isfinite(one).all()
    assert torch.allclose(one, many, rtol=1e-4, atol=1e-6)


def test_wen_through_the_registry_is_the_noise_probe(tiny_pipeline):
    probe = noise_magnitude_scores(
        tiny_pipeline,
        encode_prompts(tiny_pipeline, CAPTIONS),
        encode_prompts(tiny_pipeline, [""]),
        generations=2,
        latent_size=8,
        batch_size=8,
        **COMMON,
    )
    assert torch.equal(_scores(tiny_pipeline, "wen", generations=2), probe)


def test_unknown_detectors_and_too_few_seeds_are_named(tiny_pipeline):
    with pytest.raises(ValueError, match="unknown triage detector 'hessian'; available: wen, asthana"):
        _scores(tiny_pipeline, "hessian", generations=1)
    with pytest.raises(ValueError, match="'consistency' needs at least 2 generations"):
        _scores(tiny_pipeline, "consistency", generations=1)


@pytest.fixture(scope="module")
def memorizer(tiny_pipeline, tmp_path_factory):
    checkpoint, _train, _, _ = build_memorizer(tiny_pipeline, tmp_path_factory.mktemp("memorizer"), planted=2)
    planted = [f"planted patient {k} small left pleural effusion" for k in range(2)]
    return checkpoint.pipeline, planted, ["stable heart size case 0", "holdout patient 1 cardiomegaly"]


def _closed_form_differences(pipeline, latent: torch.Tensor, timestep, seeds: list[int]):
    """eps(x, c) - eps(x, empty) of the exact memorizer for planted latent z: sqrt(a) (sqrt(a) x - z) / sqrt(1 - a)."""
    alpha = pipeline.unet.alphas_cumprod[int(timestep)]
    x = initial_latents(tuple(latent.shape), seeds).double()
    return alpha.sqrt() * (alpha.sqrt() * x - latent.double()) / (1 - alpha).sqrt(), x, alpha


def test_closed_form_memorizer_consistency_and_asthana(memorizer):
    pipeline, planted, generic = memorizer
    generations = 3
    consistency = _scores(pipeline, "consistency", generations=generations, captions=planted + generic)
    asthana = _scores(pipeline, "asthana", generations=generations, captions=planted + generic)
    # Prompts it does not memorize: the caption changes nothing, so every difference is exactly 0.
    assert consistency[2:].tolist() == [0.0, 0.0] and asthana[2:].tolist() == [0.0, 0.0]
    sampler = make_scheduler(pipeline, "ddim", COMMON["num_inference_steps"])
    first, low = sampler.timesteps[0], sampler.timesteps[-3]
    for index in range(2):
        latent = pipeline.unet.planted[index][1]
        seeds = [sample_seed(COMMON["seed"], "noise-probe", index * generations + g) for g in range(generations)]
        difference, x, _ = _closed_form_differences(pipeline, latent, first, seeds)
        flat = torch.nn.functional.normalize(difference.flatten(1), dim=1)
        pairs = [float(flat[i] @ flat[j]) for i in range(generations) for j in range(generations) if i < j]
        assert consistency[index].item() == pytest.approx(sum(pairs) / len(pairs), abs=1e-5)
        assert consistency[index].item() > 0.9  # the copy's direction dominates the seeds' noise
        low_difference, _, low_alpha = _closed_form_differences(pipeline, latent, low, seeds)
        uncond_low = (1 - low_alpha).sqrt() * x  # the prior's exact denoiser: eps = sqrt(1 - a) x
        expected = difference.flatten(1).norm(dim=1) + ASTHANA_COSINE_WEIGHT * channel_cosine(
            uncond_low, low_difference
        )
        assert asthana[index].item() == pytest.approx(expected.mean().item(), rel=1e-4)


def test_attention_needs_a_unet_with_cross_attention(memorizer):
    pipeline, planted, _ = memorizer
    with pytest.raises(ValueError, match="has no cross-attention layers"):
        _scores(pipeline, "attention", generations=1, captions=planted)


def test_closed_form_memorizer_sharpness(memorizer):
    """Exact memorizer: eps_c = (x - sqrt(a) z) / sqrt(1 - a) and eps_u = sqrt(1 - a) x, so
    J_c - J_u = a / sqrt(1 - a) and Jeon's score is a / (1 - a)^(3/2) times the difference's norm."""
    pipeline, planted, generic = memorizer
    generations = 2
    scores = _scores(pipeline, "jeon", generations=generations, captions=planted + generic)
    assert scores[2:].tolist() == [0.0, 0.0]  # the caption changes nothing
    first = make_scheduler(pipeline, "ddim", COMMON["num_inference_steps"]).timesteps[0]
    for index in range(2):
        seeds = [sample_seed(COMMON["seed"], "noise-probe", index * generations + g) for g in range(generations)]
        difference, _, alpha = _closed_form_differences(pipeline, pipeline.unet.planted[index][1], first, seeds)
        expected = alpha / (1 - alpha) ** 1.5 * difference.flatten(1).norm(dim=1)
        assert scores[index].item() == pytest.approx(expected.mean().item(), rel=1e-4)


def test_sharpness_equals_the_published_formula_by_reverse_mode(tiny_pipeline):
    """Jeon et al.'s code: score s(x) = -eps(x) / sigma, s_delta = s_c - s_u, the metric is the norm of
    H_c s_delta - H_u s_delta; here each Hessian-vector product by reverse-mode double backward."""
    unet = tiny_pipeline.unet
    generations = 2
    scores = _scores(tiny_pipeline, "jeon", generations=generations, captions=CAPTIONS[:1])
    sampler = make_scheduler(tiny_pipeline, "ddim", COMMON["num_inference_steps"])
    first = sampler.timesteps[0]
    sigma = (1 - sampler.alphas_cumprod[int(first)]).sqrt().item()
    shape = (unet.config.in_channels, 8, 8)
    x = initial_latents(shape, [sample_seed(COMMON["seed"], "noise-probe", g) for g in range(generations)])
    cond, uncond = (encode_prompts(tiny_pipeline, captions).tokens for captions in (CAPTIONS[:1], [""]))

    def score(context):
        return lambda z: -unet(z, first, encoder_hidden_states=context.expand(z.shape[0], -1, -1)).sample / sigma

    with torch.no_grad():
        s_delta = score(cond)(x) - score(uncond)(x)
    with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernel has no double backward either
        _, h_cond = torch.autograd.functional.jvp(score(cond), x, s_delta)
        _, h_uncond = torch.autograd.functional.jvp(score(uncond), x, s_delta)
    reference = (h_cond - h_uncond).flatten(1).norm(dim=1).double().mean()
    assert scores[0].item() == pytest.approx(reference.item(), rel=1e-3)
