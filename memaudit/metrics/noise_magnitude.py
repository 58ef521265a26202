"""Text-conditional noise magnitude (Wen et al., ICLR 2024). Higher means more likely memorized.

For one denoising step, the magnitude is ``|| eps(x_t, t, e_p) - eps(x_t, t, e_empty) ||_2`` over the
whole latent, before guidance scaling. A prompt's score is the mean over its generations and the
first S steps (the model calls live in ``memaudit.sampling.probe``). Scores are not comparable
across models or latent sizes, so a prompt is flagged against a threshold calibrated on holdout
prompts scored the same way.
"""

from __future__ import annotations

import torch


def step_magnitude(eps_conditional: torch.Tensor, eps_unconditional: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of the text-conditional noise difference: ``[B, ...]`` x 2 -> ``[B]`` float64."""
    if eps_conditional.shape != eps_unconditional.shape or eps_conditional.dim() < 2:
        raise ValueError(
            f"noise predictions must share a [B, ...] shape, got {tuple(eps_conditional.shape)} "
            f"and {tuple(eps_unconditional.shape)}"
        )
    return (eps_conditional.double() - eps_unconditional.double()).flatten(1).norm(dim=1)



def flagged(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask of scores strictly above the threshold."""
    return scores.double() > threshold
