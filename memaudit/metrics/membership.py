"""Membership inference by proximal initialization (PIA: Kong et al., ICLR 2024), as pure functions.

A diffusion model trained on x0 predicts, for x0 itself at t = 0, a noise eps_0 = eps(x0, 0, c) that is
consistent with its own trajectory: re-noising x0 deterministically with it, x_t = sqrt(a_t) x0 +
sqrt(1 - a_t) eps_0, the model predicts eps(x_t, t, c) close to eps_0 for images it was trained on
and farther for unseen ones. The distance ``|| eps(x_t, t, c) - eps_0 ||_p`` is the attack's statistic
(no random noise: two UNet passes per image); the membership score is its negative, so that, as for
every score here, higher means "more likely a training image".

Two other attacks share the interface (``sampling.membership``), each a non-negative distance whose
negative is the score: the *loss* attack (Matsumoto et al., 2023; Carlini et al.'s loss threshold):
the denoising loss ``|| eps(x_t, t, c) - e ||^2`` at timestep t for seeded noise draws e, lower on
trained images; and *SecMI* (Duan et al., ICML 2023, SecMI_stat): invert x0 deterministically (DDIM,
step k) to x_t, step on to x_{t+k} and back, and measure ``|| x_t - x'_t ||^2``, the t-error, which a
model reproduces better for images it was trained on.

Why PIA by default: it is deterministic (a rescan gives the same bytes), costs two conditional UNet passes per
image (SecMI needs tens), needs no shadow models (LiRA-style attacks need many fine-tunes, out of
reach for a 860M-parameter UNet per audit), and was evaluated on fine-tuned Stable Diffusion.
"""

from __future__ import annotations

import torch


def pia_scores(eps_zero: torch.Tensor, eps_t: torch.Tensor, *, p: float) -> torch.Tensor:
    """``[B]`` float64 membership scores: minus the L_p distance between the two noise predictions."""
    if eps_zero.shape != eps_t.shape or eps_zero.dim() < 2:
        raise ValueError(f"predictions must share a [B, ...] shape, got {tuple(eps_zero.shape)}, {tuple(eps_t.shape)}")
    if p < 1:
        raise ValueError(f"`p` must be at least 1, got {p}")
    return -(eps_t.double() - eps_zero.double()).flatten(1).norm(p=p, dim=1)


def reference_ratios(distances: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``[N]`` float64 attack distances of the audited model over the reference (base) model's, per study.

    The calibration against a reference model (offline LiRA / RMIA in spirit, with the base as the one
    reference): what is hard for any model (a rare anatomy, a noisy exposure) has a large distance under
    both, so the ratio keeps what the fine-tune learned about this very study. A ratio, not a difference:
    the attack's distances scale with the image, and a ratio is a non-negative distance-like value whose
    lower tail the family test fits as it fits any distance's.
    """
    if distances.shape != reference.shape or distances.dim() != 1:
        raise ValueError(f"distances {tuple(distances.shape)} and reference {tuple(reference.shape)} must be [N]")
    if bool((distances < 0).any()) or bool((reference < 0).any()):
        raise ValueError("attack distances must be non-negative")
    tiny = torch.finfo(torch.float64).tiny
    return distances.double() / reference.double().clamp_min(tiny)


def squared_errors(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``[B]`` float64 mean squared difference per sample: the loss attack's and SecMI's statistic."""
    if first.shape != second.shape or first.dim() < 2:
        raise ValueError(f"tensors must share a [B, ...] shape, got {tuple(first.shape)}, {tuple(second.shape)}")
    return (first.double() - second.double()).flatten(1).pow(2).mean(dim=1)
