"""Images whose patient is unmistakable, for testing the re-identification plumbing: each patient is a
random 4 x 4 pattern of grey levels (upsampled), each study of them the pattern shifted by up to two
pixels, rescaled in brightness and noised. A verifier learns these in a few hundred steps; on them the
check must name exactly the training patients a release shows (the phantom anatomy is the harder bench)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 32


def study(patient: int, index: int, *, seed: int = 0) -> np.ndarray:
    pattern = np.random.default_rng([seed, patient]).uniform(0.15, 0.85, (4, 4))
    rng = np.random.default_rng([seed, patient, index, 1])
    image = np.kron(pattern, np.ones((SIDE // 4, SIDE // 4)))
    image = np.roll(image, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    return np.clip(image * rng.uniform(0.9, 1.1) + rng.normal(0, 0.05, image.shape), 0, 1)


def write_patients(folder: Path, patients: range, studies: range, *, seed: int = 0) -> Path:
    """A data set (metadata.jsonl with patient_id) of every study of every patient."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for patient in patients:
        for index in studies:
            name = f"images/p{patient:04d}-s{index:02d}.png"
            Image.fromarray((study(patient, index, seed=seed) * 255).round().astype(np.uint8)).save(folder / name)
            rows.append({"id": name[7:-4], "file_name": name, "text": "frontal view", "patient_id": f"p{patient:04d}"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder
