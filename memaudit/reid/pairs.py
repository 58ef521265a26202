"""Images grouped by patient, and the same-patient / different-patient pairs a verifier learns from."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError


@dataclass(frozen=True)
class PatientImages:
    """The distinct images of a data set at one side, as 8-bit (a quarter of float32's memory), by patient."""

    images: torch.Tensor  # [N, C, side, side] uint8
    patients: list[str]  # of each image
    by_patient: dict[str, list[int]]  # patient -> image rows

    def floats(self, rows) -> torch.Tensor:
        return self.images[rows].float() / 255.0

    @property
    def repeated(self) -> list[str]:
        """Patients with two images or more: the ones a same-patient pair can be drawn from."""
        return [patient for patient, rows in self.by_patient.items() if len(rows) >= 2]


def patient_images(dataset: ImageCaptionDataset, *, side: int, channels: int) -> PatientImages:
    """Each distinct image of ``dataset`` once, with its patient; every row must name its patient."""
    from memaudit.data import conform

    missing = [record.id for record in dataset.records if not record.patient_id]
    if missing:
        raise MemauditError(
            f"{dataset.source}: {len(missing)} row(s) name no patient (e.g. {missing[0]}); re-identification needs "
            "patient_id in the manifest (or --columns patient_id=COLUMN, --patient-from-path REGEX)"
        )
    rows = dataset.first_rows("image")
    images = [conform(dataset.load_image(row), size=side, channels=channels) for row in rows]
    patients = [str(dataset.records[row].patient_id) for row in rows]
    by_patient: dict[str, list[int]] = {}
    for index, patient in enumerate(patients):
        by_patient.setdefault(patient, []).append(index)
    stacked = torch.stack(images) if images else torch.empty(0, channels, side, side)
    return PatientImages((stacked * 255).round().to(torch.uint8), patients, by_patient)


def sample_pairs(
    data: PatientImages, count: int, generator: torch.Generator, *, hard: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` pairs (rows ``[count, 2]``, same-patient labels ``[count]``): the first half of one patient
    (two different images of a patient drawn uniformly), the rest of two different patients. With ``hard``
    (``hard_partners``), half of those are an image and one of its nearest images of another patient."""
    repeated, everyone = data.repeated, list(data.by_patient)
    if not repeated or len(everyone) < 2:
        raise MemauditError("pairs need a patient with two images and two patients at least")
    same = count // 2
    pairs = []
    for _ in range(same):
        rows = data.by_patient[repeated[int(torch.randint(len(repeated), (1,), generator=generator))]]
        first, second = torch.randperm(len(rows), generator=generator)[:2].tolist()
        pairs.append((rows[first], rows[second]))
    hard_count = (count - same) // 2 if hard is not None else 0
    for _ in range(hard_count):
        anchor = int(torch.randint(len(hard), (1,), generator=generator))
        pairs.append((anchor, int(hard[anchor, int(torch.randint(hard.shape[1], (1,), generator=generator))])))
    for _ in range(count - same - hard_count):
        one, other = torch.randperm(len(everyone), generator=generator)[:2].tolist()
        pairs.append((_any(data, everyone[one], generator), _any(data, everyone[other], generator)))
    labels = torch.cat([torch.ones(same), torch.zeros(count - same)])
    return torch.tensor(pairs, dtype=torch.long), labels


def _any(data: PatientImages, patient: str, generator: torch.Generator) -> int:
    rows = data.by_patient[patient]
    return rows[int(torch.randint(len(rows), (1,), generator=generator))]


def hard_partners(embeddings: torch.Tensor, patients: list[str], *, neighbours: int, chunk: int = 1024) -> torch.Tensor:
    """``[N, neighbours]``: each image's nearest images (Euclidean, by ``embeddings``) of another patient,
    the look-alikes an identification among many patients must tell apart (random pairs rarely are)."""
    codes = {patient: code for code, patient in enumerate(dict.fromkeys(patients))}
    patient = torch.tensor([codes[p] for p in patients])
    k = min(neighbours, len(patients) - 1)
    parts = []
    for start in range(0, len(patients), chunk):
        distances = torch.cdist(embeddings[start : start + chunk].float(), embeddings.float())
        distances[patient[start : start + chunk, None] == patient[None, :]] = float("inf")
        parts.append(distances.topk(k, dim=1, largest=False).indices)
    return torch.cat(parts)
