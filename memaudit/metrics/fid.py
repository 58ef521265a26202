"""Frechet distance between Gaussian fits of two feature sets (FID on any extractor). Lower is better.

d^2 = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)), all in float64, covariances unbiased
(N - 1). Tr((S_r S_g)^(1/2)) equals Tr((A S_g A)^(1/2)) with A = S_r^(1/2): the eigenvalues of the
symmetric A S_g A are those of S_r S_g, so symmetric eigensolvers (fast, stable) suffice; rounding
noise below zero is clamped, in the eigenvalues and in the distance (a sample against itself is 0, not
-3e-13).
"""

from __future__ import annotations

import torch


def gaussian_fit(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` of ``[N, D]`` features, float64."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"`features` must have shape [N, D] with N >= 2, got {tuple(features.shape)}")
    x = features.double()
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


def frechet_distance_from_stats(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Frechet distance of two Gaussians, each given as (mean, covariance)."""
    (mean_a, cov_a), (mean_b, cov_b) = a, b
    values, vectors = torch.linalg.eigh(cov_a.double())
    root_a = (vectors * values.clamp_min(0.0).sqrt()) @ vectors.T
    middle = root_a @ cov_b.double() @ root_a
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0.0).sqrt().sum()
    squared_mean = (mean_a.double() - mean_b.double()).square().sum()
    return max(0.0, float(squared_mean + cov_a.trace() + cov_b.trace() - 2.0 * trace_sqrt))


def frechet_distance(real: torch.Tensor, generated: torch.Tensor) -> float:
    """FID between ``[N, D]`` real and ``[M, D]`` generated features."""
    if real.dim() != 2 or generated.dim() != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {tuple(real.shape)} and {tuple(generated.shape)}")
    return frechet_distance_from_stats(gaussian_fit(real), gaussian_fit(generated))
