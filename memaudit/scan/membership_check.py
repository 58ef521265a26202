"""The membership check: score training and holdout studies with their captions by PIA (DESIGN 3.8)."""

from __future__ import annotations

import math

import torch

from memaudit.data import ImageCaptionDataset
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.metrics.tail import benjamini_hochberg, fit_lower_tail
from memaudit.results.attack_evidence import ItemScore, MembershipEvidence
from memaudit.results.scan_result import CheckOutcome
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.membership import membership_scores
from memaudit.sampling.seeds import sample_seed
from memaudit.scan.chunks import chunked_scores
from memaudit.scan.context import ScanContext

ENCODE_BATCH = 16  # studies VAE-encoded at once


def _distinct_rows(dataset: ImageCaptionDataset, limit: int | None, *, seed: int, stream: str) -> list[int]:
    """One row per distinct (image, caption) item, then a seeded sample of ``limit`` of them in row order."""
    rows = dataset.first_rows("item")
    if limit is None or limit >= len(rows):
        return rows
    generator = torch.Generator().manual_seed(sample_seed(seed, stream, 0))
    return sorted(rows[i] for i in torch.randperm(len(rows), generator=generator)[:limit].tolist())


def _scores(context: ScanContext, dataset: ImageCaptionDataset, *, rows: list[int], label: str) -> torch.Tensor:
    """PIA scores of ``rows``, encoded and embedded a chunk at a time (scores are per study); each chunk
    is a unit of work a resumed scan reads back."""
    settings, batch = context.policy.checks.membership, max(1, context.policy.sampling.batch_size)
    advance = context.progress.stage(f"membership: {label} studies", 2 * len(rows))

    def score(first: int, last: int) -> torch.Tensor:
        mine = rows[first:last]
        latents = encode_latents(
            context.pipeline, dataset, image_size=context.image_side, rows=mine, batch_size=ENCODE_BATCH,
            progress=advance,
        )  # fmt: skip
        embeddings = context.embed([dataset.records[row].text for row in mine])
        return membership_scores(
            context.pipeline, latents, embeddings, timestep=settings.timestep, p=settings.p, batch_size=batch,
            progress=advance,
        )  # fmt: skip

    return chunked_scores(
        context,
        len(rows),
        unit=f"membership-{label}",
        align=math.lcm(ENCODE_BATCH, batch),  # whole batches, as one process runs them
        score=score,
        skipped=lambda n: advance(2 * n),
    )


def patient_scores(dataset: ImageCaptionDataset, rows: list[int], scores: torch.Tensor) -> dict[str, float] | None:
    """A patient's score is their most exposed study's (an attacker needs one study to place a patient);
    None unless every scored row names its patient."""
    patients = [dataset.records[row].patient_id for row in rows]
    if not patients or any(patient is None for patient in patients):
        return None
    best: dict[str, float] = {}
    for patient, score in zip(patients, scores.tolist(), strict=True):
        best[patient] = max(score, best.get(patient, float("-inf")))
    return dict(sorted(best.items()))


def _patient_metrics(context: ScanContext, *, rows: tuple[list[int], list[int]], scores) -> dict[str, float]:
    train = patient_scores(context.train, rows[0], scores[0])
    holdout = patient_scores(context.holdout, rows[1], scores[1])
    if train is None or holdout is None:
        return {}
    members, unseen = list(train.values()), list(holdout.values())
    return {
        "membership.patient_auc": roc_auc(members, unseen),
        "membership.patient_tpr_at_1pct_fpr": tpr_at_fpr(members, unseen, 0.01),
    }


def run_membership(context: ScanContext) -> CheckOutcome:
    settings, seed = context.policy.checks.membership, context.policy.sampling.seed
    train_rows = _distinct_rows(context.train, settings.max_train, seed=seed, stream="membership-train")
    holdout_rows = _distinct_rows(context.holdout, settings.max_holdout, seed=seed, stream="membership-holdout")
    train = _scores(context, context.train, rows=train_rows, label="training")
    holdout = _scores(context, context.holdout, rows=holdout_rows, label="holdout")
    auc, tpr1, tpr01 = roc_auc(train, holdout), tpr_at_fpr(train, holdout, 0.01), tpr_at_fpr(train, holdout, 0.001)
    # Scores are minus a non-negative distance: a study is exposed when its distance is smaller than
    # unseen studies' distances, the lower-tail question the extraction family test answers.
    tail = fit_lower_tail(-holdout, confidence=context.policy.calibration.confidence)
    p_values = [tail.p_value(float(-score)) for score in train]
    identified = benjamini_hochberg(p_values, settings.family_false_alarm)
    train_ids = [context.train.records[r].id for r in train_rows]
    identified_ids = [item for item, chosen in zip(train_ids, identified, strict=True) if chosen]
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=(
            f"PIA separates {len(train_rows)} training from {len(holdout_rows)} holdout studies with AUC {auc:.3f}; "
            f"at 1% false accusations it identifies {tpr1:.1%} of training studies; {len(identified_ids)} "
            f"singled out at a family-wise {settings.family_false_alarm:g}"
        ),
        metrics={
            "membership.identified_count": float(len(identified_ids)),
            "membership.auc": auc,
            "membership.tpr_at_1pct_fpr": tpr1,
            "membership.tpr_at_01pct_fpr": tpr01,
        }
        | _patient_metrics(context, rows=(train_rows, holdout_rows), scores=(train, holdout)),
        sample_sizes={"membership.tpr_at_1pct_fpr": len(train_rows), "membership.tpr_at_01pct_fpr": len(train_rows)},
        membership=MembershipEvidence(
            timestep=settings.timestep,
            p=settings.p,
            train=[
                ItemScore(id=item, score=float(score), p_value=p)
                for item, score, p in zip(train_ids, train, p_values, strict=True)
            ],
            holdout=[
                ItemScore(id=context.holdout.records[r].id, score=float(s))
                for r, s in zip(holdout_rows, holdout, strict=True)
            ],
            family_false_alarm=settings.family_false_alarm,
            identified_ids=identified_ids,
        ),
    )
