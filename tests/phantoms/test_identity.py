"""Phantom patients with several studies: one identity across studies, never one image."""

from __future__ import annotations

import json

import numpy as np
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.metrics.roc import roc_auc
from memaudit.phantoms.identity import (
    identity_study,
    sample_identity,
    write_identity_cohort,
    write_longitudinal_cohort,
)


def test_a_study_is_drawn_from_its_seed_patient_and_index_alone():
    first, again = identity_study(5, 3, 2, size=32), identity_study(5, 3, 2, size=32)
    assert np.array_equal(first[0], again[0]) and first[1] == again[1]
    assert not np.array_equal(first[0], identity_study(5, 3, 1, size=32)[0])
    assert sample_identity(5, 3) == sample_identity(5, 3) != sample_identity(5, 4)


def test_studies_of_one_patient_share_anatomy_not_pixels():
    """Two studies of a patient are never one image (the smallest pair differs far beyond 8-bit rounding),
    and yet pixels alone tell same-patient pairs from different-patient pairs better than chance: the
    identity is in the anatomy, which a verifier can learn and a copy detector should not call a copy."""
    images = np.array([[identity_study(1, p, s, size=64)[0] for s in range(3)] for p in range(12)])
    same = [np.abs(images[p, a] - images[p, b]).mean() for p in range(12) for a in range(3) for b in range(a + 1, 3)]
    other = [np.abs(images[p, 0] - images[q, 0]).mean() for p in range(12) for q in range(p + 1, 12)]
    assert min(same) > 0.02  # 5 grey levels in 255 on average: never a copy
    assert roc_auc(-torch.tensor(same), -torch.tensor(other)) > 0.55


def test_without_its_own_texture_a_patient_keeps_anatomy_and_caption():
    """``own_texture=False``: each study draws a lung texture of its own (another image, the same caption), and
    studies of one patient still resemble each other more than other patients' do: the anatomy alone."""
    own, anatomy_only = identity_study(2, 4, 1, size=32), identity_study(2, 4, 1, size=32, own_texture=False)
    assert own[1] == anatomy_only[1] and not np.array_equal(own[0], anatomy_only[0])
    assert np.array_equal(anatomy_only[0], identity_study(2, 4, 1, size=32, own_texture=False)[0])
    images = np.array([[identity_study(1, p, s, size=64, own_texture=False)[0] for s in range(3)] for p in range(12)])
    same = [np.abs(images[p, a] - images[p, b]).mean() for p in range(12) for a in range(3) for b in range(a + 1, 3)]
    other = [np.abs(images[p, 0] - images[q, 0]).mean() for p in range(12) for q in range(p + 1, 12)]
    assert roc_auc(-torch.tensor(same), -torch.tensor(other)) > 0.55


def test_the_cohort_lists_every_study_with_its_patient(tmp_path):
    folder = write_identity_cohort(tmp_path / "a", patients=3, studies=2, seed=0, size=16, prefix="pt")
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == [f"pt-{p:06d}-s{s:02d}" for p in range(3) for s in range(2)]
    assert [row["patient_id"] for row in rows] == [f"pt-p{p:06d}" for p in range(3) for _ in range(2)]
    assert all((folder / row["file_name"]).is_file() for row in rows) and (folder / "SYNTHETIC.txt").is_file()
    later = write_identity_cohort(tmp_path / "b", patients=3, studies=1, seed=0, size=16, first_study=1, prefix="pt")
    again = json.loads((later / "metadata.jsonl").read_text().splitlines()[0])
    assert again["id"] == "pt-000000-s01" and again["text"] == rows[1]["text"]
    assert (later / again["file_name"]).read_bytes() == (folder / rows[1]["file_name"]).read_bytes()


def test_the_phantoms_command_writes_several_studies_per_patient(tmp_path, capsys):
    from memaudit.cli import run

    out = tmp_path / "patients"
    argv = ["phantoms", "--out", str(out), "--count", "5", "--studies", "3", "--size", "16", "--first-index", "10"]
    assert run(argv) == 0
    dataset = ImageCaptionDataset(out)
    assert len(dataset) == 15 and len({record.patient_id for record in dataset.records}) == 5
    assert dataset.records[0].id == "patient-000010-s00" and "15 synthetic phantoms" in capsys.readouterr().out


def test_a_longitudinal_archive_lists_the_frequent_patients_first_then_the_rest(tmp_path):
    folder = write_longitudinal_cohort(tmp_path, frequent=2, frequent_studies=5, patients=3, studies=2, seed=0, size=16)
    dataset = ImageCaptionDataset(folder)
    patients = [record.patient_id for record in dataset.records]
    assert patients == [f"patient-p{p:06d}" for p in range(2) for _ in range(5)] + [
        f"patient-p{p:06d}" for p in range(2, 5) for _ in range(2)
    ]
    assert len({record.id for record in dataset.records}) == 16 and (folder / "SYNTHETIC.txt").is_file()
    image, _ = identity_study(0, 1, 4, size=16)  # the frequent patients' studies are the identity cohort's own
    stored = np.asarray(dataset.load_images(size=16, channels=1)[9, 0])
    assert np.abs(stored - image).max() <= 1 / 255
