"""bench/reid_identity.py and its nulls (bench/reid_nulls.py): the two-reference count test's known answers,
the blur's, and the script's smoke run."""

from __future__ import annotations

import importlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
PATIENTS = [f"p{i:03d}" for i in range(200)]


@pytest.fixture
def dirichlet_named(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the bench scripts import each other from their folder
    return importlib.import_module("reid_nulls").dirichlet_named


def _draws(rng: random.Random, n: int, weights: list[float] | None = None) -> list[str]:
    return rng.choices(PATIENTS, weights=weights, k=n)


def test_a_patient_drawn_far_beyond_two_agreeing_references_is_named(dirichlet_named):
    rng = random.Random(0)
    first, second = _draws(rng, 2000), _draws(rng, 2000)
    model = _draws(rng, 1900) + ["p007"] * 100  # ~10 images expected, 110 drawn
    concentration, named = dirichlet_named(model, first, second, 0.01)
    assert named == ["p007"]
    assert concentration > 20  # references differing by sampling alone: little spread fitted


def test_a_third_reference_is_named_nobody(dirichlet_named):
    rng = random.Random(1)
    hubs = [rng.gammavariate(0.5, 2.0) for _ in PATIENTS]  # uneven attraction, shared by every model
    samples = [_draws(rng, 2000, hubs) for _ in range(3)]
    _, named = dirichlet_named(samples[2], samples[0], samples[1], 0.01)
    assert named == []


def test_references_that_disagree_raise_the_bar(dirichlet_named):
    """A patient three times as attractive to the model as to the references is named when every model shares
    one attraction per patient, and not when each model draws its own (gamma, shape 2): then the concentration
    fitted on the references is near that shape, and three times one model's share is within the spread."""
    rng = random.Random(2)
    shared = [rng.gammavariate(2.0, 1.0) for _ in PATIENTS]
    for own in (False, True):
        first, second = ([rng.gammavariate(2.0, 1.0) for _ in PATIENTS] if own else shared for _ in range(2))
        planted = [rng.gammavariate(2.0, 1.0) for _ in PATIENTS] if own else list(shared)
        planted[7] = 3 * (first[7] + second[7]) / 2
        concentration, named = dirichlet_named(*(_draws(rng, 4000, w) for w in (planted, first, second)), 0.01)
        assert named == ([] if own else ["p007"])
        assert (1.0 < concentration < 4.0) if own else concentration > 20


def test_samples_of_different_sizes_are_refused(dirichlet_named):
    with pytest.raises(ValueError, match="same size"):
        dirichlet_named(["p000"] * 3, ["p000"] * 3, ["p000"] * 2, 0.01)


@pytest.mark.slow
def test_reid_identity_runs_on_a_small_archive(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    command = [sys.executable, str(BENCH / "reid_model.py"), "--steps", "2", "--patients", "6", "--studies", "2"]
    command += ["--frequent", "2", "--frequent-studies", "4", "--verifier-steps", "4", "--models", "none"]
    subprocess.run([*command, "--out", str(data)], check=True, capture_output=True, text=True, timeout=900)
    command = [sys.executable, str(BENCH / "reid_identity.py"), "--data", str(data), "--steps", "2"]
    command += ["--per-caption", "1", "--models", "base,frequent-only,two-only,control-1,control-2,control-3"]
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr
    figures = json.loads((out / "figures.json").read_text())
    assert figures["real_new_studies"]["images"] == 20 and figures["base"]["images"] > 0
    assert len(figures["frequent-only"]["attributed_to_frequent"]) == 2
    assert "control-1 vs control-2" in figures["one_reference"]
    assert set(figures["two_references"]) >= {"base vs control-1+control-2", "control-3 vs control-1+control-2"}


def test_the_blur_keeps_a_flat_image_and_spreads_a_point_evenly(monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(BENCH))
    blurred = importlib.import_module("reid_identity")._blurred
    flat = torch.full((1, 3, 9, 9), 0.4)
    assert torch.allclose(blurred(flat, 1.0), flat)
    point = torch.zeros(1, 1, 15, 15)
    point[0, 0, 7, 7] = 1.0
    spread = blurred(point, 1.0)[0, 0]
    assert spread.shape == (15, 15) and abs(float(spread.sum()) - 1.0) < 1e-5
    assert torch.allclose(spread, spread.T) and torch.allclose(spread, spread.flip(0))
    assert float(spread[7, 7]) == float(spread.max()) < 0.2  # sigma 1: the centre keeps 1 / (2 pi) of it
