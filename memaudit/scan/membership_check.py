"""The membership check: score training and holdout studies with their captions by PIA (DESIGN 3.8),
calibrated against the model's base when the policy says so (``reference: base``): a study's statistic
is then its PIA distance under the model over its distance under the base (metrics.membership)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from memaudit.data import ImageCaptionDataset
from memaudit.metrics.calibration import minimum_holdout
from memaudit.metrics.identification import identification_power
from memaudit.metrics.membership import reference_ratios
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.metrics.tail import benjamini_hochberg, fit_lower_tail
from memaudit.policy.holdout_needs import PATIENT_FALSE_ALARM, PATIENT_METRICS
from memaudit.results.attack_evidence import ItemScore, MembershipEvidence
from memaudit.results.scan_result import CheckOutcome
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.membership import loss_scores, membership_scores, secmi_scores
from memaudit.sampling.seeds import sample_seed
from memaudit.sampling.text import encode_prompts
from memaudit.scan.chunks import chunked_scores
from memaudit.scan.context import ScanContext

ENCODE_BATCH = 16  # studies VAE-encoded at once
ATTACK_NAMES = {"pia": "PIA", "loss": "The loss attack", "secmi": "SecMI"}


def _distinct_rows(dataset: ImageCaptionDataset, limit: int | None, *, seed: int, stream: str) -> list[int]:
    """One row per distinct (image, caption) item, then a seeded sample of ``limit`` of them in row order."""
    rows = dataset.first_rows("item")
    if limit is None or limit >= len(rows):
        return rows
    generator = torch.Generator().manual_seed(sample_seed(seed, stream, 0))
    return sorted(rows[i] for i in torch.randperm(len(rows), generator=generator)[:limit].tolist())


def attack_scores(pipeline, latents, embeddings, *, settings, seeds: list[int], batch_size: int, progress=None):
    """``[N]`` scores of the policy's attack (``settings``: checks.membership), higher for likelier members;
    ``seeds`` (one per study) seed the loss attack's noises, the other attacks are deterministic."""
    common = {"timestep": settings.timestep, "batch_size": batch_size, "progress": progress}
    if settings.attack == "loss":
        return loss_scores(pipeline, latents, embeddings, seeds=seeds, draws=settings.draws, **common)
    if settings.attack == "secmi":
        return secmi_scores(pipeline, latents, embeddings, interval=settings.interval, **common)
    return membership_scores(pipeline, latents, embeddings, p=settings.p, **common)


def _scores(
    context: ScanContext, dataset: ImageCaptionDataset, *, rows: list[int], label: str, pipeline=None
) -> torch.Tensor:
    """PIA scores of ``rows`` under ``pipeline`` (default the model's), encoded and embedded by that
    pipeline a chunk at a time (scores are per study); each chunk is a unit of work a resumed scan reads
    back."""
    settings, batch = context.policy.checks.membership, max(1, context.policy.sampling.batch_size)
    pipeline = pipeline if pipeline is not None else context.pipeline
    advance = context.progress.stage(f"membership: {label} studies", 2 * len(rows))

    def score(first: int, last: int) -> torch.Tensor:
        mine = rows[first:last]
        latents = encode_latents(
            pipeline, dataset, image_size=context.image_side, rows=mine, batch_size=ENCODE_BATCH, progress=advance
        )
        embeddings = encode_prompts(pipeline, [dataset.records[row].text for row in mine], batch_size=batch)
        seeds = [sample_seed(context.policy.sampling.seed, "membership-loss", row) for row in mine]
        common = {"settings": settings, "seeds": seeds, "batch_size": batch, "progress": advance}
        return attack_scores(pipeline, latents, embeddings, **common)

    return chunked_scores(
        context,
        len(rows),
        unit=f"membership-{label.replace(' ', '-')}",
        align=math.lcm(ENCODE_BATCH, batch),  # whole batches, as one process runs them
        score=score,
        skipped=lambda n: advance(2 * n),
    )


def patients_needed(confidence: float) -> int:
    """Distinct patients each side needs for the patient metrics: enough that the 1% of unseen patients
    the TPR is read at is bounded at ``confidence`` (DESIGN 3.5; 299 at 95%). Fewer, and one patient
    decides the AUC: a holdout of one patient gives AUC 0 or 1."""
    return minimum_holdout(PATIENT_FALSE_ALARM, confidence)


def patient_scores(
    dataset: ImageCaptionDataset, rows: list[int], scores: torch.Tensor, *, seed: int
) -> dict[str, float] | None:
    """A patient's score is one of their scored studies' scores, drawn by a seed of (``seed``, patient id);
    None unless every scored row names its patient.

    One study per patient, not the maximum (or the mean) over a patient's studies: the maximum of m
    scores grows with m (an extreme value), so a patient with 500 studies outranks everyone by count
    alone, on either side; the mean keeps the location but narrows with m, so patients with many
    studies still sit apart from the others in the tails the TPR is read at. One drawn study scores as
    any study does whatever the patient's count, so training and holdout patients compare like with
    like, one exchangeable value per patient (what a calibrated 1% point assumes), at the price of
    the other studies' information. It is what an attacker holding one study of each patient sees.
    """
    patients = [dataset.records[row].patient_id for row in rows]
    if not patients or not all(patients):
        return None
    studies: dict[str, list[float]] = {}
    for patient, score in zip(patients, scores.tolist(), strict=True):
        studies.setdefault(patient, []).append(score)
    # Each patient's own seed: the draw does not change when other patients join or leave the sample.
    return {
        patient: studies[patient][sample_seed(seed, f"membership-patient:{patient}", 0) % len(studies[patient])]
        for patient in sorted(studies)
    }


@dataclass(frozen=True)
class PatientMetrics:
    metrics: dict[str, float]
    sample_sizes: dict[str, int]
    unmeasured: str | None = None  # why the patient metrics are missing, when a rule may ask for them
    warning: str | None = None


def _patient_metrics(context: ScanContext, *, rows: tuple[list[int], list[int]], scores) -> PatientMetrics:
    policy = context.policy
    seed = policy.sampling.seed
    train = patient_scores(context.train, rows[0], scores[0], seed=seed)
    holdout = patient_scores(context.holdout, rows[1], scores[1], seed=seed)
    if train is None or holdout is None:
        asked = any(rule.metric in PATIENT_METRICS for rule in policy.rules.values())
        side = "training" if train is None else "holdout"
        reason = f"patient metrics not measured: not every scored {side} study names its patient (patient_id)"
        return PatientMetrics({}, {}, unmeasured=reason if asked else None)
    needed = patients_needed(policy.calibration.confidence)
    if min(len(train), len(holdout)) < needed:
        reason = (
            f"patient metrics not measured: {len(train)} training and {len(holdout)} holdout patients scored; "
            f"each side needs at least {needed} for a {PATIENT_FALSE_ALARM:.0%} false-accusation point at "
            f"calibration.confidence {policy.calibration.confidence:g}"
        )
        return PatientMetrics({}, {}, unmeasured=reason, warning=reason)
    members, unseen = list(train.values()), list(holdout.values())
    return PatientMetrics(
        metrics={
            "membership.patient_auc": roc_auc(members, unseen),
            "membership.patient_tpr_at_1pct_fpr": tpr_at_fpr(members, unseen, PATIENT_FALSE_ALARM),
        },
        sample_sizes={"membership.patient_tpr_at_1pct_fpr": len(members)},
    )


def _calibrated(context: ScanContext, rows: tuple[list[int], list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (higher: more likely a member) of the training and holdout ``rows``: minus the PIA distance, or,
    calibrated against the base, minus its ratio to the base's distance."""
    sides = ((context.train, rows[0], "training"), (context.holdout, rows[1], "holdout"))
    scores = [_scores(context, dataset, rows=chosen, label=label) for dataset, chosen, label in sides]
    if context.reference is None or context.policy.checks.membership.reference != "base":
        return scores[0], scores[1]
    base = [
        _scores(context, dataset, rows=chosen, label=f"{label} (base)", pipeline=context.reference.pipeline)
        for dataset, chosen, label in sides
    ]
    train, holdout = (-reference_ratios(-mine, -theirs) for mine, theirs in zip(scores, base, strict=True))
    return train, holdout


def _caveat(context: ScanContext) -> str | None:
    if context.policy.checks.membership.reference == "base" and context.reference is None:
        return (
            "the membership scores are not calibrated against the model's base (no --base given): a study's score "
            "follows how hard its image is for any model as much as whether this one trained on it, so a memorizer "
            "can score below unseen studies; rerun with --base"
        )
    return None


def run_membership(context: ScanContext) -> CheckOutcome:
    settings, seed = context.policy.checks.membership, context.policy.sampling.seed
    train_rows = _distinct_rows(context.train, settings.max_train, seed=seed, stream="membership-train")
    holdout_rows = _distinct_rows(context.holdout, settings.max_holdout, seed=seed, stream="membership-holdout")
    train, holdout = _calibrated(context, (train_rows, holdout_rows))
    calibrated = context.reference is not None and settings.reference == "base"
    auc, tpr1, tpr01 = roc_auc(train, holdout), tpr_at_fpr(train, holdout, 0.01), tpr_at_fpr(train, holdout, 0.001)
    # Scores are minus a non-negative distance (or distance ratio): a study is exposed when it is smaller
    # than unseen studies', the lower-tail question the extraction family test answers.
    tail = fit_lower_tail(-holdout, confidence=context.policy.calibration.confidence)
    p_values = [tail.p_value(float(-score)) for score in train]
    power = identification_power(tail, candidates=len(train_rows), alpha=settings.family_false_alarm)
    identified = benjamini_hochberg(p_values, settings.family_false_alarm)
    train_ids = [context.train.records[r].id for r in train_rows]
    identified_ids = [item for item, chosen in zip(train_ids, identified, strict=True) if chosen]
    patients = _patient_metrics(context, rows=(train_rows, holdout_rows), scores=(train, holdout))
    name = ATTACK_NAMES[settings.attack]
    attack = f"{name}, calibrated against the base (distance ratio)," if calibrated else f"{name} (uncalibrated)"
    caveat = _caveat(context)
    metrics = {"membership.identified_count": float(len(identified_ids))} if power.can_identify else {}
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=(
            f"{attack} separates {len(train_rows)} training from {len(holdout_rows)} holdout studies with AUC "
            f"{auc:.3f}; at 1% false accusations it identifies {tpr1:.1%} of training studies; "
            f"{len(identified_ids)} singled out at a family-wise {settings.family_false_alarm:g} ({power.statement()})"
            + (f"; {patients.unmeasured}" if patients.unmeasured else "")
        ),
        warnings=[note for note in (patients.warning, caveat) if note],
        caveat=caveat,
        not_applicable={} if power.can_identify else {"membership.identified_count": power.statement()},
        metrics=metrics
        | {
            "membership.auc": auc,
            "membership.tpr_at_1pct_fpr": tpr1,
            "membership.tpr_at_01pct_fpr": tpr01,
        }
        | patients.metrics,
        sample_sizes={"membership.tpr_at_1pct_fpr": len(train_rows), "membership.tpr_at_01pct_fpr": len(train_rows)}
        | patients.sample_sizes,
        membership=MembershipEvidence(
            attack=settings.attack,
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
            reference="base" if calibrated else "none",
            reference_model=str(context.reference.source) if calibrated else None,
            reference_digest=context.reference.digest if calibrated else None,
            identification=power.statement(),
        ),
    )
