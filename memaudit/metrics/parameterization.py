"""A UNet's output as the noise it predicts, whatever it was trained to predict.

Every score memaudit computes from UNet outputs (Wen's noise magnitude, the first-step triage
detectors, PIA membership, the re-trigger search) is defined on the predicted noise eps. Stable
Diffusion 1.x predicts eps; 2.x at 768 px and many fine-tunes predict the velocity
v = sqrt(a) eps - sqrt(1 - a) x0 (Salimans and Ho, 2022); a few predict x0 itself ("sample"). With
x_t = sqrt(a) x0 + sqrt(1 - a) eps at the timestep's cumulative alpha a, both convert exactly:

    eps = sqrt(a) v + sqrt(1 - a) x_t            (v_prediction)
    eps = (x_t - sqrt(a) x0) / sqrt(1 - a)       (sample)

Read on v, a score would be scaled by 1/sqrt(a) between the branches (about 15x at t = T for SD's
schedule, differently at every step) and a cosine with the unconditional output would compare other
quantities altogether.
"""

from __future__ import annotations

import torch

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def as_epsilon(
    output: torch.Tensor, noisy: torch.Tensor, *, alpha_bar: float | torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """The noise that ``output`` stands for at the noisy sample ``noisy`` (variance-preserving x_t,
    i.e. the UNet's own input) and cumulative alpha ``alpha_bar``: one number, or one per sample
    (``[B]``, as in a training batch of mixed timesteps). At ``alpha_bar = 0`` (pure noise, the last
    step of a zero-terminal-SNR schedule) both conversions give the noisy sample itself."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction type {prediction_type!r}; expected one of {', '.join(PREDICTION_TYPES)}")
    if prediction_type == "epsilon":
        return output
    alpha = torch.as_tensor(alpha_bar, dtype=torch.float64)
    if not bool(((alpha >= 0) & (alpha <= 1)).all()):  # 0 at t = T under a zero-terminal-SNR schedule
        raise ValueError(f"`alpha_bar` must be in [0, 1], got {alpha_bar}")
    if prediction_type == "sample" and bool((alpha == 1).any()):
        raise ValueError("an x0-predicting UNet's noise is undefined at alpha_bar = 1 (no noise added)")
    shape = (-1, *[1] * (output.dim() - 1)) if alpha.dim() else ()
    signal, noise = (root.reshape(shape).to(output.device, output.dtype) for root in (alpha.sqrt(), (1 - alpha).sqrt()))
    if prediction_type == "v_prediction":
        return signal * output + noise * noisy
    return (noisy - signal * output) / noise


def epsilon_from_flow(velocity: torch.Tensor, noisy: torch.Tensor, *, sigma: float | torch.Tensor) -> torch.Tensor:
    """The noise a rectified-flow velocity stands for (SD 3.x, Sana, Flux, Lumina 2).

    With x_s = (1 - s) x0 + s e and v = e - x0 (what the network predicts and the flow sampler integrates
    from s = 1 to 0), x0 = x_s - s v and so e = x_s + (1 - s) v. At s = 1 (pure noise) e is x_s itself;
    a difference of two velocities at one x_s is (1 - s) times itself as noise. ``sigma``: one number or
    one per sample (``[B]``).
    """
    level = torch.as_tensor(sigma, dtype=torch.float64)
    if not bool(((level >= 0) & (level <= 1)).all()):
        raise ValueError(f"a flow's `sigma` must be in [0, 1], got {sigma}")
    shape = (-1, *[1] * (velocity.dim() - 1)) if level.dim() else ()
    keep = (1 - level).reshape(shape).to(velocity.device, velocity.dtype)
    return noisy + keep * velocity
