"""FID: closed-form known answers and agreement with torchmetrics and scipy on identical features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memaudit.metrics.fid import frechet_distance, gaussian_fit


def _features(seed: int, n: int, d: int, shift: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=generator) / d**0.5
    return (torch.randn(n, d, generator=generator) @ mixing + shift).double()


def test_one_dimensional_closed_form():
    # FID of N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    a = torch.tensor([[-1.0], [1.0]])  # mean 0, unbiased variance 2
    b = torch.tensor([[2.0], [6.0]])  # mean 4, unbiased variance 8
    assert frechet_distance(a, b) == pytest.approx(16 + (2**0.5 - 8**0.5) ** 2)


def test_identical_sets_are_at_zero():
    x = _features(0, 200, 8)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_rounding_never_makes_a_distance_negative():
    # Unclamped, about half of these came out near -3e-13: a report would print "FID -0.000".
    distances = [frechet_distance(x, x) for x in (_features(seed, 40, 16) * 3 + 1 for seed in range(30))]
    assert min(distances) >= 0.0 and max(distances) < 1e-9


def test_agrees_with_torchmetrics_on_identical_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _features(1, 300, 16), _features(2, 250, 16, shift=0.3)

    class Identity(torch.nn.Module):
        num_features = 16

        def forward(self, x):
            return x

    reference = FrechetInceptionDistance(feature=Identity(), normalize=True)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    expected = float(reference.compute())
    ours = frechet_distance(real, fake)
    assert abs(ours - expected) / abs(expected) < 1e-6


def test_agrees_with_the_scipy_sqrtm_formula():
    from scipy import linalg

    real, fake = _features(3, 400, 12), _features(4, 400, 12, shift=-0.5)
    mu1, s1 = (t.numpy() for t in gaussian_fit(real))
    mu2, s2 = (t.numpy() for t in gaussian_fit(fake))
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-8)


def test_validation():
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="equal D"):
        frechet_distance(torch.zeros(4, 3), torch.zeros(5, 2))
