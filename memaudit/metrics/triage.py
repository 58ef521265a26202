"""Triage scores of the first denoising step, as pure functions of UNet outputs (DESIGN 3.1, 3.7).

Higher always means "more likely memorized". The model calls that produce the inputs live in
``memaudit.sampling.triage``; the formulas here are tested on closed-form cases.

- Wen et al. (ICLR 2024): ``|| eps(x_T, c) - eps(x_T, empty) ||_2`` (``noise_magnitude.step_magnitude``).
- Asthana et al. (ICLR 2026): that norm plus ``weight`` times the cosine, per latent position over
  channels and averaged over positions, between the unconditional prediction and the text-conditional
  difference at a low-noise timestep, evaluated on the same starting latent (4 UNet passes).
- Seed consistency (as used by Hintersdorf et al., NeMo, NeurIPS 2024): a memorized prompt's
  first-step difference points at the same image whatever the starting noise, so the mean pairwise
  cosine of the G seeds' differences is high.
- Cross-attention dispersion (Ren et al., ECCV 2024, their first-step variant): the entropy of the
  token distribution of cross-attention, averaged over heads and query positions, is higher for
  memorized prompts at the first step.
- Sharpness (Jeon et al., ICML 2025): with scores ``s(x) = -eps(x) / sigma_t`` and Hessians
  ``H = ds/dx``, the norm of ``(H(x_T, c) - H(x_T, empty)) s_delta`` where ``s_delta = s(x_T, c) -
  s(x_T, empty)``: how sharply the text condition curves the log-density along its own pull, from
  one Jacobian-vector product at the first step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    source: str  # where the method comes from
    min_generations: int  # seeds per prompt the score needs
    first_step_only: bool  # False: averages the first ``steps`` denoising steps

    def unet_passes(self, steps: int) -> int:
        """UNet sample evaluations per prompt-generation (cond and uncond count as two)."""
        # jeon: the cond/uncond pair forward, then its Jacobian-vector product (costed as a second pair).
        return {"wen": 2 * steps, "asthana": 4, "consistency": 2, "attention": 1, "jeon": 4}[self.name]


DETECTORS = {
    spec.name: spec
    for spec in (
        DetectorSpec("wen", "Wen et al., ICLR 2024: noise-difference norm", 1, False),
        DetectorSpec("asthana", "Asthana et al., ICLR 2026: norm at t=T plus low-noise cosine", 1, True),
        DetectorSpec("consistency", "NeMo (Hintersdorf et al., NeurIPS 2024): agreement across seeds", 2, True),
        DetectorSpec("attention", "Ren et al., ECCV 2024: cross-attention entropy at the first step", 1, True),
        DetectorSpec("jeon", "Jeon et al., ICML 2025: Hessian-score product at the first step", 1, True),
    )
}


def channel_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` x 2 -> ``[B]`` float64: the cosine over channels at each position, averaged over
    positions (0 where either vector is 0)."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"inputs must share a [B, C, H, W] shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.double(), b.double()
    norms = a.norm(dim=1) * b.norm(dim=1)
    cosine = torch.where(norms > 0, (a * b).sum(dim=1) / norms.clamp_min(1e-300), torch.zeros_like(norms))
    return cosine.flatten(1).mean(dim=1)


def seed_consistency(differences: torch.Tensor) -> torch.Tensor:
    """``[P, G, ...]`` text-conditional differences of G seeds per prompt -> ``[P]`` float64: the mean
    cosine over the G(G-1)/2 pairs of seeds (G >= 2)."""
    if differences.dim() < 3 or differences.shape[1] < 2:
        raise ValueError(f"need [P, G >= 2, ...] differences, got {tuple(differences.shape)}")
    flat = torch.nn.functional.normalize(differences.double().flatten(2), dim=2)
    similarity = flat @ flat.transpose(1, 2)  # [P, G, G]
    seeds = differences.shape[1]
    off_diagonal = similarity.sum(dim=(1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(dim=1)
    return off_diagonal / (seeds * (seeds - 1))


def token_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` distributions over text tokens -> ``[B]`` float64 entropy in nats (0 log 0 = 0)."""
    if probabilities.dim() != 2:
        raise ValueError(f"need [B, tokens] probabilities, got {tuple(probabilities.shape)}")
    p = probabilities.double()
    return -(torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p))).sum(dim=1)


def sharpness(jvp_difference: torch.Tensor, sigma: float) -> torch.Tensor:
    """Jeon et al.'s first-step score from ``jvp_difference = (J_c - J_u) v``, the conditional minus the
    unconditional noise Jacobian applied to ``v = eps(x, c) - eps(x, empty)`` (``[B, ...]``), at noise
    level ``sigma = sqrt(1 - alpha_bar_t)``. As ``s = -eps / sigma``, ``(H_c - H_u) s_delta =
    (J_c - J_u) v / sigma^2``; returns its L2 norm per sample, ``[B]`` float64."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return jvp_difference.double().flatten(1).norm(dim=1) / sigma**2
