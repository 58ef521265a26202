"""Known answers for the conversions every check reads, against the diffusers schedulers' own arithmetic."""

from __future__ import annotations

import pytest
import torch

import memaudit  # noqa: F401
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.noise_levels import DdpmLevels, FlowLevels
from memaudit.metrics.parameterization import epsilon_from_flow


def _pair(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 3, 3, generator=generator), torch.randn(2, 4, 3, 3, generator=generator)


def test_a_flow_velocity_converts_to_the_noise_exactly():
    x0, noise = _pair()
    for sigma in (0.0, 0.3, 1.0):
        noisy = (1 - sigma) * x0 + sigma * noise
        assert torch.allclose(epsilon_from_flow(noise - x0, noisy, sigma=sigma), noise, atol=1e-6)
    per_sample = torch.tensor([0.2, 0.9])
    noisy = (1 - per_sample.view(-1, 1, 1, 1)) * x0 + per_sample.view(-1, 1, 1, 1) * noise
    assert torch.allclose(epsilon_from_flow(noise - x0, noisy, sigma=per_sample), noise, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        epsilon_from_flow(noise, noise, sigma=1.5)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_levels_agree_with_the_flow_matching_schedulers_step(shift):
    """At every sampling timestep s = t / 1000 is the scheduler's own sigma, the exact velocity steps
    x_s onto x_s' of the same (x0, e), and the conversion returns e."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    levels = FlowLevels(scheduler)
    sampler = levels.sampler("ddim")
    sampler.set_timesteps(4)
    x0, noise = _pair(1)
    noisy = levels.add_noise(x0, noise, sampler.timesteps[0])
    for index, timestep in enumerate(sampler.timesteps):
        sigma = float(sampler.sigmas[index])
        assert float(levels.sigma(timestep)) == pytest.approx(sigma, abs=1e-6)
        velocity = noise - x0
        assert torch.allclose(
            levels.sampler_epsilon(sampler, velocity, model_input=noisy, timestep=timestep), noise, atol=1e-5
        )
        noisy = sampler.step(velocity, timestep, noisy).prev_sample
        following = float(sampler.sigmas[index + 1])
        assert torch.allclose(noisy, (1 - following) * x0 + following * noise, atol=1e-5)
    assert torch.equal(levels.target(x0, noise, 500, prediction_type="flow"), noise - x0)


def test_a_flow_dpm_solver_calls_the_network_at_sigma_times_1000():
    """Sana's sampler (DPM-Solver on flow sigmas) keeps s = t / num_train_timesteps, which the
    conversion assumes; its deterministic counterpart is flow-matching Euler with the same shift."""
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

    scheduler = DPMSolverMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000
    )
    levels = FlowLevels(scheduler)
    sampler = levels.sampler("checkpoint")
    sampler.set_timesteps(5)
    for index, timestep in enumerate(sampler.timesteps):
        assert float(levels.sigma(timestep)) == pytest.approx(float(sampler.sigmas[index]), abs=1e-3)
    euler = levels.sampler("ddim")
    assert isinstance(euler, FlowMatchEulerDiscreteScheduler) and euler.config.shift == 3.0


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_ddpm_levels_agree_with_the_schedulers_noising_and_velocity(prediction_type):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    levels = DdpmLevels(scheduler)
    x0, noise = _pair(2)
    timesteps = torch.tensor([10, 700])
    noisy = levels.add_noise(x0, noise, timesteps)
    assert torch.allclose(noisy, scheduler.add_noise(x0, noise, timesteps), atol=1e-6)
    target = levels.target(x0, noise, timesteps, prediction_type=prediction_type)
    expected = {"epsilon": noise, "v_prediction": scheduler.get_velocity(x0, noise, timesteps), "sample": x0}
    assert torch.allclose(target, expected[prediction_type], atol=1e-6)
    recovered = levels.train_epsilon(target, noisy, timesteps, prediction_type=prediction_type)
    assert torch.allclose(recovered, noise, atol=1e-4)


def test_conditioning_rows_move_together():
    tokens, pooled, mask = torch.arange(24.0).view(3, 4, 2), torch.arange(6.0).view(3, 2), torch.ones(3, 4).long()
    cond = Conditioning(tokens=tokens, pooled=pooled, mask=mask)
    picked = cond[[2, 0, 2]]
    assert torch.equal(picked.tokens, tokens[[2, 0, 2]]) and torch.equal(picked.pooled, pooled[[2, 0, 2]])
    assert torch.equal(picked.mask, mask[[2, 0, 2]])
    assert len(Conditioning.cat([cond, cond[1:]])) == 5
    assert torch.equal(cond.repeat(2).pooled, pooled.repeat(2, 1))
    assert torch.equal(cond[[1]].broadcast(3).tokens, tokens[[1, 1, 1]])
    assert [len(row) for row in cond] == [1, 1, 1]
    halved = cond.to(dtype=torch.float16).map_float(lambda field: field / 2)
    assert halved.tokens.dtype == torch.float16 and halved.mask.dtype == torch.long
    assert torch.equal(halved.pooled.float(), pooled / 2)
    with pytest.raises(ValueError, match="only a single prompt"):
        cond.broadcast(2)
    with pytest.raises(ValueError, match="`pooled` has 2 rows but `tokens` has 3"):
        Conditioning(tokens=tokens, pooled=pooled[:2])
