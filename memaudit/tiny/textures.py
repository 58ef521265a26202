"""A second small domain, unlike the phantom radiographs, for checks that must hold beyond them
(tests/scan/test_membership_second_domain.py, bench/membership.py --textures).

Colour textures: a tinted field, two oriented gratings and a disc, 16 px RGB; each with a caption in
the domain's own vocabulary (colour, coarseness, orientation, where the disc sits: 320 captions). The
caption names the coarse attributes only; phase, exact angle, the second grating, the disc's size and
the noise are each study's own, so two studies with one caption still differ. A "specimen" is one
study (its own patient id).

`train_pair` trains a base on one sample of the domain and fully fine-tunes it on another in which a
few planted studies are repeated, as the hospital model is built from the phantoms (memaudit/tiny/
hospital.py): the planted studies are what a memorizer learns; fresh studies are the holdout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from memaudit.atomic_files import write_atomic

COLOURS = {
    "red": (0.9, 0.2, 0.2), "green": (0.2, 0.8, 0.3), "blue": (0.2, 0.3, 0.9), "yellow": (0.9, 0.85, 0.2),
    "cyan": (0.2, 0.85, 0.85), "magenta": (0.85, 0.2, 0.8), "orange": (0.95, 0.55, 0.1), "violet": (0.5, 0.3, 0.85),
}  # fmt: skip
ORIENTATIONS = {"horizontal": 0.0, "vertical": 90.0, "diagonal": 45.0, "antidiagonal": 135.0}
COARSENESS = {"fine": 4.0, "coarse": 2.0}  # grating cycles across the image
PLACES = {"left": (0.5, 0.3), "right": (0.5, 0.7), "top": (0.3, 0.5), "bottom": (0.7, 0.5), "centre": (0.5, 0.5)}
WORDS = sorted({*COLOURS, *ORIENTATIONS, *COARSENESS, *PLACES, "grating", "disc"})


def texture(seed: int, index: int, *, size: int = 16) -> tuple[np.ndarray, str]:
    """Study ``index`` of the domain drawn from ``seed``: a uint8 [size, size, 3] image and its caption."""
    rng = np.random.default_rng([seed, index])
    colour, orientation = rng.choice(list(COLOURS)), rng.choice(list(ORIENTATIONS))
    coarseness, place = rng.choice(list(COARSENESS)), rng.choice(list(PLACES))
    y, x = np.mgrid[0:size, 0:size] / size
    angle = np.deg2rad(ORIENTATIONS[orientation] + rng.uniform(-10, 10))
    phase = rng.uniform(0, 2 * np.pi)
    grating = np.sin(2 * np.pi * COARSENESS[coarseness] * (x * np.cos(angle) + y * np.sin(angle)) + phase)
    second_angle, second_cycles = rng.uniform(0, np.pi), rng.uniform(1.0, 5.0)
    grating = grating + 0.5 * np.sin(2 * np.pi * second_cycles * (x * np.cos(second_angle) + y * np.sin(second_angle)))
    tint = np.array(COLOURS[colour]) * rng.uniform(0.8, 1.0)
    image = 0.5 + 0.25 * grating[..., None] * tint + 0.15 * (tint - 0.5)
    centre, radius = np.array(PLACES[place]) + rng.uniform(-0.05, 0.05, 2), rng.uniform(0.12, 0.22)
    disc = (y - centre[0]) ** 2 + (x - centre[1]) ** 2 < radius**2
    image[disc] = 1.0 - image[disc]
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1)
    return (image * 255).round().astype(np.uint8), f"{colour} {coarseness} {orientation} grating disc {place}"


@dataclass(frozen=True)
class Part:
    """Studies ``indices`` of the domain, ids ``<prefix>-<k>``, each written ``repeats`` times (copies of one
    study: one image file, the copies' ids ``<prefix>-<k>-copy-<c>``, one patient)."""

    indices: range
    prefix: str
    repeats: int = 1


def write_domain(folder: Path, parts: list[Part], *, seed: int) -> Path:
    """A dataset folder (PNGs and metadata.jsonl with file_name, text, patient_id) of ``parts``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for part in parts:
        for index in part.indices:
            image, caption = texture(seed, index)
            name = f"{part.prefix}-{index}"
            Image.fromarray(image).save(folder / f"{name}.png")
            for copy in range(part.repeats):
                item = name + (f"-copy-{copy}" if copy else "")
                rows.append({"id": item, "file_name": f"{name}.png", "text": caption, "patient_id": name})
    write_atomic(folder / "metadata.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    return folder


SEED = 7
PLANTED_FIRST = 20_000  # planted studies' indices; the base's from 0, generic training's 10_000, holdout's 30_000


@dataclass(frozen=True)
class DomainPair:
    base: Path
    model: Path
    train: Path
    holdout: Path
    planted: tuple[str, ...]  # the planted studies' first ids (what a scan names a study by)


def texture_pair(root: Path, *, planted: int = 8, holdout: int = 60) -> DomainPair:
    """Where ``train_pair`` writes under ``root`` (a holdout of ``holdout`` studies: the first of a longer
    holdout are the shorter one's)."""
    root = Path(root)
    ids = tuple(f"planted-{index}" for index in range(PLANTED_FIRST, PLANTED_FIRST + planted))
    model, held = root / "finetune" / "model", root / f"holdout-{holdout}"
    return DomainPair(base=root / "base", model=model, train=root / "train", holdout=held, planted=ids)


def train_pair(root: Path, *, planted: int = 8, repeats: int = 25, generic: int = 200, holdout: int = 60,
               steps: int = 600) -> DomainPair:  # fmt: skip
    """A tiny SD-layout base trained on ``2 * generic`` studies of the domain, and its full fine-tune on
    ``generic`` other studies plus ``planted`` studies repeated ``repeats`` times; ``holdout`` fresh
    studies (the holdout plays no part in training: a pair already under ``root`` is kept as it is, and only
    a holdout of another size is written)."""
    from memaudit.checkpoint.saving import save_diffusers_folder
    from memaudit.data import ImageCaptionDataset
    from memaudit.finetune.config import TrainConfig
    from memaudit.finetune.run import finetune
    from memaudit.tiny.pipeline import TinySDConfig, build_tiny_pipeline
    from memaudit.tiny.recipe import train_network

    pair, root = texture_pair(root, planted=planted, holdout=holdout), Path(root)
    if not pair.holdout.is_dir():
        write_domain(pair.holdout, [Part(range(30_000, 30_000 + holdout), "specimen")], seed=SEED)
    if pair.model.is_dir():
        return pair
    if not pair.base.is_dir():
        data = write_domain(root / "base-data", [Part(range(2 * generic), "specimen")], seed=SEED)
        pipeline = build_tiny_pipeline(TinySDConfig(latent_size=8, words=tuple(WORDS)), seed=0)
        train_network(
            pipeline, ImageCaptionDataset(data), steps=steps, batch_size=16, learning_rate=1e-3, seed=0,
            image_size=16, out=root / "base-training", on_step=None,
        )  # fmt: skip
        save_diffusers_folder(pipeline, pair.base)
    members = [Part(range(10_000, 10_000 + generic), "specimen"), Part(range(PLANTED_FIRST, PLANTED_FIRST + planted),
               "planted", repeats)]  # fmt: skip
    write_domain(pair.train, members, seed=SEED)
    config = TrainConfig(method="full", mask="all", steps=steps, batch_size=16, learning_rate=1e-3, seed=0)
    finetune(pair.base, pair.train, config, out=root / "finetune")
    return pair
