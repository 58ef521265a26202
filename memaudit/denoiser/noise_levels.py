"""Noise levels of the two kinds of schedule the families train on, and conversions to the noise.

A DDPM schedule (SD 1.x/2.x, SDXL, PixArt) noises x_t = sqrt(a_t) x0 + sqrt(1 - a_t) e with the
cumulative alpha a_t of training timestep t; its samplers (DDIM, Euler, DPM-Solver) each say which a
a sampling timestep stands for. Rectified flow (SD 3.x, Sana, Flux, Lumina 2) noises
x_s = (1 - s) x0 + s e, and every flow sampler in diffusers calls the network at timestep
t = s * num_train_timesteps, so s = t / num_train_timesteps at sampling and at training alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch

from memaudit.metrics.parameterization import as_epsilon, epsilon_from_flow

SAMPLER_KINDS = ("ddim", "checkpoint")


def _check_kind(kind: str) -> None:
    if kind not in SAMPLER_KINDS:
        raise ValueError(f"unknown scheduler {kind!r}; expected 'ddim' or 'checkpoint'")


class NoiseLevels(ABC):
    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler  # the checkpoint's own: its config is the training schedule

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    @abstractmethod
    def sampler(self, kind: str): ...

    def sampler_epsilon(self, sampler, output, *, model_input, timestep) -> torch.Tensor:
        """The noise an ``output`` at the network's input ``model_input`` stands for, at a sampling timestep."""
        return self.converter(sampler, timestep)(output, model_input)

    @abstractmethod
    def converter(self, sampler, timestep) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``(output, model_input) -> noise`` at one sampling timestep, its noise level read once (so that it
        can run inside a function transform such as ``torch.func.jvp``)."""
        ...

    @abstractmethod
    def noise_scale(self, sampler, timestep) -> float:
        """The noise's standard deviation in the network's input at a sampling timestep (score = -eps / it)."""
        ...

    @abstractmethod
    def add_noise(self, clean, noise, timesteps) -> torch.Tensor: ...

    @abstractmethod
    def train_epsilon(self, output, noisy, timesteps, *, prediction_type: str) -> torch.Tensor: ...

    @abstractmethod
    def target(self, clean, noise, timesteps, *, prediction_type: str) -> torch.Tensor: ...


class DdpmLevels(NoiseLevels):
    def sampler(self, kind: str):
        from diffusers import DDIMScheduler

        _check_kind(kind)
        if kind == "ddim":
            return DDIMScheduler.from_config(self.scheduler.config)
        return type(self.scheduler).from_config(self.scheduler.config)

    def converter(self, sampler, timestep):
        prediction_type = sampler.config.get("prediction_type", "epsilon")
        if prediction_type == "epsilon":
            return lambda output, model_input: output
        alpha = alpha_bar_at(sampler, timestep)
        return lambda output, model_input: as_epsilon(
            output, model_input, alpha_bar=alpha, prediction_type=prediction_type
        )

    def noise_scale(self, sampler, timestep) -> float:
        return (1 - alpha_bar_at(sampler, timestep)) ** 0.5

    def _alpha(self, timesteps) -> torch.Tensor:
        alphas = self.scheduler.alphas_cumprod.double()
        return alphas[torch.as_tensor(timesteps, device=alphas.device).long().cpu()]

    def add_noise(self, clean, noise, timesteps) -> torch.Tensor:
        alpha = self._alpha(timesteps)  # roots in float64, then the latents' type
        return _per_sample(alpha.sqrt(), clean) * clean + _per_sample((1 - alpha).sqrt(), clean) * noise

    def train_epsilon(self, output, noisy, timesteps, *, prediction_type: str) -> torch.Tensor:
        return as_epsilon(output, noisy, alpha_bar=self._alpha(timesteps), prediction_type=prediction_type)

    def target(self, clean, noise, timesteps, *, prediction_type: str) -> torch.Tensor:
        if prediction_type == "epsilon":
            return noise
        alpha = self._alpha(timesteps)
        if prediction_type == "v_prediction":
            return _per_sample(alpha.sqrt(), clean) * noise - _per_sample((1 - alpha).sqrt(), clean) * clean
        return clean


class FlowLevels(NoiseLevels):
    def sampler(self, kind: str):
        from diffusers import FlowMatchEulerDiscreteScheduler

        _check_kind(kind)
        config = self.scheduler.config
        if kind == "checkpoint":
            return type(self.scheduler).from_config(config)
        if isinstance(self.scheduler, FlowMatchEulerDiscreteScheduler):
            return FlowMatchEulerDiscreteScheduler.from_config(config)
        # A flow DPM-Solver (Sana): the Euler sampler of the same schedule, with its shift.
        return FlowMatchEulerDiscreteScheduler(
            num_train_timesteps=config.num_train_timesteps, shift=float(config.get("flow_shift") or 1.0)
        )

    def sigma(self, timesteps) -> torch.Tensor:
        return torch.as_tensor(timesteps, dtype=torch.float64).cpu() / self.num_train_timesteps

    def noise_scale(self, sampler, timestep) -> float:
        return float(self.sigma(timestep))

    def converter(self, sampler, timestep):
        sigma = self.sigma(timestep)
        return lambda output, model_input: epsilon_from_flow(output, model_input, sigma=sigma)

    def add_noise(self, clean, noise, timesteps) -> torch.Tensor:
        sigma = _per_sample(self.sigma(timesteps), clean)
        return (1 - sigma) * clean + sigma * noise

    def train_epsilon(self, output, noisy, timesteps, *, prediction_type: str) -> torch.Tensor:
        return epsilon_from_flow(output, noisy, sigma=self.sigma(timesteps))

    def target(self, clean, noise, timesteps, *, prediction_type: str) -> torch.Tensor:
        return noise - clean


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One number, or one per sample, shaped to broadcast over ``like`` ``[B, ...]``."""
    shape = (-1, *[1] * (like.dim() - 1)) if values.dim() else ()
    return values.reshape(shape).to(like.device, like.dtype)


def alpha_bar_at(scheduler, timestep) -> float:
    """Cumulative alpha at ``timestep``, the noise level the network is told, as the sampler defines it:
    from its sigma for that timestep (Euler, LMS, DPM-Solver: a = 1 / (1 + sigma^2), exact for their
    fractional and Karras timesteps), or from the training schedule (DDIM, PNDM)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and hasattr(scheduler, "index_for_timestep"):
        return 1.0 / (1.0 + float(sigmas[scheduler.index_for_timestep(timestep)]) ** 2)
    alphas = scheduler.alphas_cumprod.detach().cpu().double().numpy()
    return float(np.interp(float(timestep), np.arange(len(alphas)), alphas))
