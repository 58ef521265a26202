"""Train a patient verifier on a training set's own patient ids, early-stopped on the holdout's patients.

Each step draws a seeded batch of pairs (half two studies of one patient, half two patients) and
minimises the binary cross-entropy of the pair head. Every ``evaluate_every`` steps the verification
AUC on fixed pairs of holdout patients (never trained on) is measured; the best network so far is
kept, and training stops when ``patience`` evaluations in a row bring no better AUC. A checkpoint after
each evaluation lets a stopped run resume where it was, to the same result.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from memaudit.atomic_files import write_atomic
from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.metrics.roc import roc_auc
from memaudit.reid.network import Architecture, Verifier, VerifierConfig
from memaudit.reid.pairs import PatientImages, hard_partners, patient_images, sample_pairs
from memaudit.reid.weights import save_verifier

TRAINING_FILE = "training.json"
CHECKPOINT = ".checkpoint.pt"


@dataclass(frozen=True)
class ReidTraining:
    architecture: Architecture = "small-cnn"
    input_side: int = 64
    channels: int = 1
    embedding_dim: int = 64
    width: int = 16
    steps: int = 3000
    batch_size: int = 64  # pairs per step
    learning_rate: float = 1e-3
    seed: int = 0
    evaluate_every: int = 100
    patience: int = 5
    validation_pairs: int = 2000
    # After each evaluation a quarter of the pairs are look-alikes (hard_partners), what the check's 1:N comparisons
    # meet; 0: random pairs only. bench/results/README.md, "Re-identifying longitudinal patients".
    hard_neighbours: int = 10

    def verifier_config(self, trained_on: str) -> VerifierConfig:
        return VerifierConfig(
            architecture=self.architecture,
            input_side=self.input_side,
            channels=self.channels,
            embedding_dim=self.embedding_dim,
            width=self.width,
            trained_on=trained_on,
        )


@dataclass
class TrainingRecord:
    best_step: int = 0
    best_auc: float = 0.0
    evaluations: list[dict] = field(default_factory=list)  # {step, loss, auc}
    stopped_early: bool = False


def check_disjoint_patients(train: ImageCaptionDataset, holdout: ImageCaptionDataset) -> None:
    """Refuse a holdout that shares patients with training: its pairs would not be unseen patients'."""
    shared = {r.patient_id for r in train.records} & {r.patient_id for r in holdout.records} - {None}
    if shared:
        raise MemauditError(
            f"{holdout.source}: shares {len(shared)} patient(s) with the training set {train.source} "
            f"(e.g. {sorted(shared)[0]}); holdout patients must be ones the model never saw"
        )


def train_verifier(
    train: ImageCaptionDataset,
    holdout: ImageCaptionDataset,
    settings: ReidTraining,
    *,
    out: Path,
    on_step: Callable[[float], None] | None = None,
    on_evaluation: Callable[[dict], None] | None = None,
) -> TrainingRecord:
    """Train into ``out`` (config.json, model.safetensors of the best evaluation, training.json)."""
    out = Path(out)
    check_disjoint_patients(train, holdout)
    data = patient_images(train, side=settings.input_side, channels=settings.channels)
    unseen = patient_images(holdout, side=settings.input_side, channels=settings.channels)
    for name, part in (("training set", data), ("holdout", unseen)):
        if not part.repeated or len(part.by_patient) < 2:
            source = train.source if part is data else holdout.source
            raise MemauditError(
                f"{source}: the {name} has {len(part.repeated)} patient(s) with two images or more and "
                f"{len(part.by_patient)} patient(s) in all; a verifier needs same-patient pairs and two patients"
            )
    validation = sample_pairs(unseen, settings.validation_pairs, torch.Generator().manual_seed(settings.seed + 1))
    torch.manual_seed(settings.seed)
    network = Verifier(settings.verifier_config(trained_on=f"{train.source} (sha256 {train.digest[:12]})"))
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate)
    digest = _digest(settings, train, holdout)
    record, best_state, start, hard = TrainingRecord(), None, 0, None
    resumed = _resume(out / CHECKPOINT, digest=digest, network=network, optimizer=optimizer)
    if resumed is not None:
        record, best_state, start = resumed
        hard = _look_alikes(network, data, settings) if start else None
        for _ in range(start if on_step else 0):
            on_step(float("nan"))  # a resumed run's progress starts where it stopped (no loss to show)
    for step in range(start, settings.steps):
        if record.stopped_early:
            break
        network.train()
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
        pairs, labels = sample_pairs(data, settings.batch_size, generator, hard=hard)
        logits = network(data.floats(pairs[:, 0]), data.floats(pairs[:, 1]))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step:
            on_step(float(loss.detach()))
        if (step + 1) % settings.evaluate_every == 0 or step + 1 == settings.steps:
            auc = verification_auc(network, unseen, pairs=validation[0], labels=validation[1])
            evaluation = {"step": step + 1, "loss": float(loss.detach()), "auc": auc}
            record.evaluations.append(evaluation)
            if auc > record.best_auc or best_state is None:
                record.best_auc, record.best_step = auc, step + 1
                best_state = {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}
            record.stopped_early = (step + 1 - record.best_step) >= settings.patience * settings.evaluate_every
            _save(
                out / CHECKPOINT,
                digest=digest,
                network=network,
                optimizer=optimizer,
                record=record,
                best_state=best_state,
            )
            if on_evaluation:
                on_evaluation(evaluation)
            hard = _look_alikes(network, data, settings)
    network.load_state_dict(best_state)
    save_verifier(network.eval(), out)
    summary = {"settings": asdict(settings), **asdict(record), "train": train.digest, "holdout": holdout.digest}
    write_atomic(out / TRAINING_FILE, json.dumps(summary, indent=2) + "\n")
    return record


@torch.no_grad()
def _embeddings(network: Verifier, data: PatientImages) -> torch.Tensor:
    network.eval()
    return torch.cat([network.embed(data.floats(slice(i, i + 256))) for i in range(0, len(data.patients), 256)])


def _look_alikes(network: Verifier, data: PatientImages, settings: ReidTraining) -> torch.Tensor | None:
    """The hard partners of the network as it is now (None when the settings draw random pairs only)."""
    if settings.hard_neighbours < 1:
        return None
    return hard_partners(_embeddings(network, data), data.patients, neighbours=settings.hard_neighbours)


@torch.no_grad()
def verification_auc(network: Verifier, data: PatientImages, *, pairs: torch.Tensor, labels: torch.Tensor) -> float:
    """AUC of the pair scores: same-patient pairs against different-patient pairs."""
    embeddings = _embeddings(network, data)
    scores = network.pair_logits(embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])
    return roc_auc(scores[labels == 1], scores[labels == 0])


def _digest(settings: ReidTraining, train: ImageCaptionDataset, holdout: ImageCaptionDataset) -> str:
    text = json.dumps([asdict(settings), train.digest, holdout.digest], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _save(path: Path, *, digest: str, network, optimizer, record: TrainingRecord, best_state) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "digest": digest,
        "network": network.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best": best_state,
        "record": json.dumps(asdict(record)),
    }
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _resume(path: Path, *, digest: str, network, optimizer):
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)  # our own file, tensors and strings only
    if state["digest"] != digest:
        raise MemauditError(f"{path.parent}: a verifier training of other settings or data is there; use a new --out")
    network.load_state_dict(state["network"])
    optimizer.load_state_dict(state["optimizer"])
    record = TrainingRecord(**json.loads(state["record"]))
    step = record.evaluations[-1]["step"] if record.evaluations else 0
    return record, state["best"], step
