"""Phantom patients with several studies each: one identity seen again under another pose, exposure,
breath and findings, as in a longitudinal archive.

A patient's identity is their anatomy (thorax, lungs, heart, diaphragm, ribs) and their own vessel
texture, drawn from (seed, patient) alone; each study redraws the acquisition (position, exposure,
gamma, noise), the depth of inspiration, and the findings, from (seed, patient, study). Two studies
of one patient share no pixels (the texture moves with the patient, the noise is new) but share what a
re-identification network learns to see. Captions are the cohort's (``cohort.caption``), from the
study's own findings. All data is labelled synthetic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from memaudit.atomic_files import write_atomic
from memaudit.phantoms.anatomy import Patient, draw, markings
from memaudit.phantoms.cohort import SYNTHETIC_NOTICE, caption, sample_patient, with_indication

POSE_SHIFT = 0.04  # sd of a study's position against the patient's own (normalised units; the grid is -1..1)
INSPIRATION = 0.04  # relative sd of the lung height and diaphragm level from breath to breath
TEXTURE_MARGIN = 8  # of 64: the patient's texture is drawn larger and cut where the pose puts it


@dataclass(frozen=True)
class Identity:
    """What stays a patient's from study to study."""

    anatomy: Patient  # without findings; a study adds its own
    texture_seed: int


def sample_identity(seed: int, patient: int) -> Identity:
    rng = np.random.default_rng([seed, patient, 7])  # a stream apart from the one-study cohort's
    anatomy = replace(sample_patient(rng), findings={})
    return Identity(anatomy=anatomy, texture_seed=int(rng.integers(2**32)))


def study_patient(identity: Identity, rng: np.random.Generator) -> Patient:
    """One study of ``identity``: its pose, exposure and breath, and findings drawn as the cohort draws them."""
    anatomy = identity.anatomy
    breath = float(rng.normal(1.0, INSPIRATION))
    acquisition = sample_patient(rng)  # exposure, gamma, noise and findings as in the one-study cohort
    return replace(
        anatomy,
        shift_x=anatomy.shift_x + float(rng.normal(0.0, POSE_SHIFT)),
        shift_y=anatomy.shift_y + float(rng.normal(0.0, POSE_SHIFT)),
        lung_height=anatomy.lung_height * breath,
        diaphragm_left=anatomy.diaphragm_left * breath,
        diaphragm_right=anatomy.diaphragm_right * breath,
        exposure=acquisition.exposure,
        gamma=acquisition.gamma,
        noise=acquisition.noise,
        findings=acquisition.findings,
    )


def patient_texture(identity: Identity, study: Patient, size: int) -> np.ndarray:
    """The patient's vessel texture, cut where the study's pose moved them (it moves with the anatomy)."""
    margin = max(1, size * TEXTURE_MARGIN // 64)
    canvas = markings(size + 2 * margin, np.random.default_rng(identity.texture_seed))
    dx = int(np.clip(round((study.shift_x - identity.anatomy.shift_x) * size / 2), -margin, margin))
    dy = int(np.clip(round((study.shift_y - identity.anatomy.shift_y) * size / 2), -margin, margin))
    top, left = margin - dy, margin - dx
    return canvas[top : top + size, left : left + size]


def identity_study(
    seed: int, patient: int, study: int, *, size: int, indication_share: float = 0.0, own_texture: bool = True
):
    """(image in [0, 1], caption) of study ``study`` of phantom patient ``patient``; without ``own_texture``
    each study draws a texture of its own and the patient's identity is their anatomy alone."""
    identity = sample_identity(seed, patient)
    rng = np.random.default_rng([seed, patient, study, 8])
    scanned = study_patient(identity, rng)
    texture = patient_texture(identity, scanned, size) if own_texture else None
    image = draw(scanned, size, rng, texture=texture)
    return image, with_indication(caption(scanned), [seed, patient, study, 9], share=indication_share)


def write_identity_cohort(
    out: Path,
    *,
    patients: int,
    studies: int,
    seed: int,
    size: int = 64,
    first_patient: int = 0,
    first_study: int = 0,
    prefix: str = "patient",
    indication_share: float = 0.0,
    own_texture: bool = True,
) -> Path:
    """Write ``studies`` studies of each of ``patients`` patients (PNG, 8-bit grayscale) and metadata.jsonl
    (``patient_id`` per row) into ``out``. ``first_study`` > 0 gives further studies of the same patients
    (a holdout of new studies of known patients, or a model's new study of one); ``own_texture``: as
    ``identity_study``."""
    if patients < 1 or studies < 1 or size < 8:
        raise ValueError(f"need patients >= 1, studies >= 1 and size >= 8, got {patients=}, {studies=}, {size=}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for patient in range(first_patient, first_patient + patients):
        for study in range(first_study, first_study + studies):
            image, text = identity_study(
                seed, patient, study, size=size, indication_share=indication_share, own_texture=own_texture
            )
            name = f"images/{prefix}-{patient:06d}-s{study:02d}.png"
            Image.fromarray((image * 255).round().astype(np.uint8)).save(out / name)
            row = {"id": f"{prefix}-{patient:06d}-s{study:02d}", "file_name": name, "text": text}
            rows.append(row | {"patient_id": f"{prefix}-p{patient:06d}"})
    write_atomic(out / "metadata.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    write_atomic(out / "SYNTHETIC.txt", SYNTHETIC_NOTICE)
    return out


def write_longitudinal_cohort(
    out: Path,
    *,
    frequent: int,
    frequent_studies: int,
    patients: int,
    studies: int,
    seed: int,
    size: int = 64,
    first_patient: int = 0,
    own_texture: bool = True,
) -> Path:
    """A training archive in which a few patients come back often: ``frequent`` patients (from
    ``first_patient`` on) with ``frequent_studies`` studies each (in ``out/frequent``), then ``patients``
    patients with ``studies`` each (``out/generic``), in one metadata.jsonl whose file names point into both.
    The patients a generative model trained on it learns by their anatomy, without any one study copied;
    ``own_texture``: as ``identity_study``."""
    out = Path(out)
    common = {"seed": seed, "size": size, "own_texture": own_texture}
    parts = [
        write_identity_cohort(
            out / "frequent", patients=frequent, studies=frequent_studies, first_patient=first_patient, **common
        ),
        write_identity_cohort(
            out / "generic", patients=patients, studies=studies, first_patient=first_patient + frequent, **common
        ),
    ]
    rows = [
        json.dumps(row | {"file_name": f"{part.name}/{row['file_name']}"}) + "\n"
        for part in parts
        for row in map(json.loads, (part / "metadata.jsonl").read_text().splitlines())
    ]
    write_atomic(out / "metadata.jsonl", "".join(rows))
    write_atomic(out / "SYNTHETIC.txt", SYNTHETIC_NOTICE)
    return out
