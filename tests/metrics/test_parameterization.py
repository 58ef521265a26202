"""UNet outputs read as noise: known answers from the forward process, and diffusers' own definitions
(``get_velocity``, DDIM's step in each parameterization) as the reference."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from memaudit.metrics.parameterization import as_epsilon


def _forward_process(alpha: float, *, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    clean, noise = torch.randn(2, 4, 8, 8, generator=generator, dtype=torch.float64).unbind(0)
    noisy = alpha**0.5 * clean + (1 - alpha) ** 0.5 * noise
    velocity = alpha**0.5 * noise - (1 - alpha) ** 0.5 * clean
    return clean, noise, noisy, velocity


@pytest.mark.parametrize("alpha", [0.0047, 0.3, 0.9991])
def test_each_parameterization_gives_back_the_noise_that_made_the_sample(alpha):
    clean, noise, noisy, velocity = _forward_process(alpha)
    assert as_epsilon(noise, noisy, alpha_bar=alpha, prediction_type="epsilon") is noise
    assert torch.allclose(as_epsilon(velocity, noisy, alpha_bar=alpha, prediction_type="v_prediction"), noise)
    assert torch.allclose(as_epsilon(clean, noisy, alpha_bar=alpha, prediction_type="sample"), noise, atol=1e-9)


def test_one_cumulative_alpha_per_sample_broadcasts_over_a_batch():
    alphas = torch.tensor([0.1, 0.5, 0.95], dtype=torch.float64)
    made = [_forward_process(float(a), seed=i) for i, a in enumerate(alphas)]
    noisy, velocity, noise = (torch.stack([m[k] for m in made]) for k in (2, 3, 1))
    assert torch.allclose(as_epsilon(velocity, noisy, alpha_bar=alphas, prediction_type="v_prediction"), noise)


def test_velocity_as_diffusers_defines_it_converts_back_to_the_noise():
    scheduler = DDIMScheduler(prediction_type="v_prediction")
    clean, noise, _, _ = _forward_process(0.5)
    timesteps = torch.tensor([999, 500, 1])
    clean, noise = clean[:3].unsqueeze(1).float(), noise[:3].unsqueeze(1).float()
    noisy = scheduler.add_noise(clean, noise, timesteps)
    velocity = scheduler.get_velocity(clean, noise, timesteps)
    alpha = scheduler.alphas_cumprod[timesteps]
    assert torch.allclose(
        as_epsilon(velocity, noisy, alpha_bar=alpha, prediction_type="v_prediction"), noise, atol=1e-4
    )


@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
def test_a_ddim_step_on_the_converted_noise_matches_diffusers_own_step(prediction_type):
    native = DDIMScheduler(prediction_type=prediction_type)
    plain = DDIMScheduler(prediction_type="epsilon")
    for scheduler in (native, plain):
        scheduler.set_timesteps(10)
    timestep = native.timesteps[2]
    output, noisy = torch.randn(2, 1, 4, 8, 8, generator=torch.Generator().manual_seed(1)).unbind(0)
    alpha = float(native.alphas_cumprod[timestep])
    noise = as_epsilon(output, noisy, alpha_bar=alpha, prediction_type=prediction_type)
    expected = native.step(output, timestep, noisy).prev_sample
    assert torch.allclose(plain.step(noise, timestep, noisy).prev_sample, expected, atol=1e-4)


def test_bad_inputs_are_named():
    sample = torch.zeros(1, 4, 2, 2)
    with pytest.raises(ValueError, match="unknown prediction type 'flow'"):
        as_epsilon(sample, sample, alpha_bar=0.5, prediction_type="flow")
    with pytest.raises(ValueError, match=r"alpha_bar.*\[0, 1\]"):
        as_epsilon(sample, sample, alpha_bar=-0.1, prediction_type="v_prediction")
    with pytest.raises(ValueError, match="undefined at alpha_bar = 1"):
        as_epsilon(sample, sample, alpha_bar=1.0, prediction_type="sample")


@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
def test_at_zero_terminal_snr_the_noise_is_the_noisy_sample_itself(prediction_type):
    """x_T = eps when alpha_bar = 0 (a zero-terminal-SNR schedule's last step), whatever the output says."""
    scheduler = DDIMScheduler(prediction_type=prediction_type, rescale_betas_zero_snr=True)
    assert float(scheduler.alphas_cumprod[-1]) == 0.0
    noisy, output = torch.randn(2, 1, 4, 8, 8, generator=torch.Generator().manual_seed(3)).unbind(0)
    converted = as_epsilon(
        output, noisy, alpha_bar=float(scheduler.alphas_cumprod[-1]), prediction_type=prediction_type
    )
    assert torch.equal(converted, noisy)
