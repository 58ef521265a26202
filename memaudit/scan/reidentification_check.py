"""Re-identification (DESIGN 3.9): could an image be linked to one of the training patients?

A verification network (``memaudit reid train``, or a converted published one) embeds every scored image
(the model's generated sample, or every image of a release) and the training images; each scored image
is paired with its ``top_k`` nearest training images and takes the verifier's highest P(same patient),
as the distance 1 - P. The holdout's images are of patients the model never saw: their distances to the
training patients are the null, a lower tail is fitted to them as for copies (``metrics.tail``), and the
Benjamini-Hochberg step-up over all scored images names the training patients the selected images are
linked to, by id only. Beside it, when the policy turns it on (``count_test``), the patient count test
(``metrics.patient_counts``) names a patient who draws more of the scored images than unseen patients' images
give them: images of a learned patient come again and again, each no surer than a look-alike. It is exact
only where the scored images are real studies: a model's images are drawn to some training patients more
than real unseen patients' images are (bench/reid_model.py: a base that never saw the patients had 3 named,
and against the base's own images a fine-tune on other patients had 2; against one such shadow fine-tune, another
had 1 to 6, bench/reid_identity.py), so it is off by default and never runs on a model's images. Where it
runs, each test has half of ``family_false_alarm``. It does not prove that a patient can be recognised by a
person, nor that an unselected image is safe: it states what the verifier sees beyond unseen patients.
"""

from __future__ import annotations

import torch

from memaudit.data import ImageCaptionDataset, conform
from memaudit.errors import MemauditError
from memaudit.metrics.identification import identification_power
from memaudit.metrics.patient_counts import PatientCount, least_tail, named_by_count, patient_counts
from memaudit.metrics.reidentification import resemblance
from memaudit.metrics.tail import benjamini_hochberg, fit_lower_tail
from memaudit.policy import Policy
from memaudit.reid.training import check_disjoint_patients
from memaudit.reid.weights import LoadedVerifier, embed_images, load_verifier, read_config
from memaudit.results.identity_evidence import ReidentificationEvidence, ReidentifiedPatient, TailRecord
from memaudit.results.scan_result import CheckOutcome
from memaudit.scan.context import ScanContext

METRIC = "reidentification.reidentified_patients"
NO_VERIFIER = (
    "checks.reidentification.weights names no verifier folder; train one on the training set's own patients "
    "with `memaudit reid train --train T --holdout H --out DIR`"
)


NO_COUNT_NULL = (
    "the patient count test does not run on a model's images: it has no valid null for them (the holdout's real "
    "images, the base's images for the same prompts and one shadow fine-tune's images all named patients a model "
    "never saw; bench/reid_model.py, bench/reid_identity.py); it runs on an --images audit of real studies"
)


def verifier(context: ScanContext) -> LoadedVerifier:
    """The policy's verifier, loaded once per scan; an error names what is missing before any image work."""
    if "verifier" not in context.memo:
        settings = context.policy.checks.reidentification
        if settings.weights is None:
            raise MemauditError(NO_VERIFIER)
        context.memo["verifier"] = load_verifier(settings.weights, device=context.extractor_options.device)
    return context.memo["verifier"]


def embed(context: ScanContext, images: torch.Tensor) -> torch.Tensor:
    """Verifier embeddings of a batch of images in [0, 1]."""
    settings = context.policy.checks.reidentification
    return embed_images(verifier(context).network, images, batch_size=settings.batch_size)


def check_inputs(train: ImageCaptionDataset, holdout: ImageCaptionDataset, policy: Policy) -> None:
    """Before any model work: patient ids in every training row, a holdout of other patients, and a
    verifier folder whose config reads (each a named error)."""
    missing = [record.id for record in train.records if not record.patient_id]
    if missing:
        raise MemauditError(
            f"{train.source}: {len(missing)} training row(s) name no patient (e.g. {missing[0]}); "
            "re-identification names training patients: give patient_id (--columns patient_id=COLUMN or "
            "--patient-from-path REGEX), or disable checks.reidentification"
        )
    check_disjoint_patients(train, holdout)
    weights = policy.checks.reidentification.weights
    if weights is None:
        raise MemauditError(NO_VERIFIER)
    read_config(weights)


def run_reidentification(context: ScanContext, embeddings: torch.Tensor, *, generated: bool = False) -> CheckOutcome:
    """The check on the scored images' verifier ``embeddings`` (in the order they were made). ``generated``:
    they are the model's images, on which the count test does not run (it has no valid null for them)."""
    settings = context.policy.checks.reidentification  # its inputs were checked in preflight (check_inputs)
    loaded = verifier(context)
    train_rows = context.train.first_rows("image")
    patients = [str(context.train.records[row].patient_id) for row in train_rows]
    train = _embedded(context, context.train, rows=train_rows, label="training")
    holdout = _embedded(context, context.holdout, rows=context.holdout.first_rows("image"), label="holdout")
    device = next(loaded.network.parameters()).device

    def head(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:  # embeddings live on the CPU
        with torch.no_grad():
            return loaded.network.pair_logits(first.to(device), second.to(device)).float().cpu()

    null = resemblance(holdout, train, head, top_k=settings.top_k)
    found = resemblance(embeddings, train, head, top_k=settings.top_k)
    tail = fit_lower_tail(null.distances, confidence=context.policy.calibration.confidence)
    p_values = [tail.p_value(float(d)) for d in found.distances]
    counting = settings.count_test and not generated  # the count test has no valid null on a model's images
    # the per-image test and, when it runs, the patient count test, half each
    level = settings.family_false_alarm / (2 if counting else 1)
    power = identification_power(tail, candidates=len(p_values), alpha=level)
    selected = benjamini_hochberg(p_values, level) if p_values else []
    drawn = [patients[int(row)] for row in found.train_rows]
    counted, count_tested, count_power, warnings = [], None, False, []
    if settings.count_test and generated:
        warnings.append(NO_COUNT_NULL)
    elif counting:
        counts = patient_counts(drawn, [patients[int(row)] for row in null.train_rows])
        counted, count_tested = named_by_count(counts, level)
        # it can name someone when all m scored images drawn by one patient would be significant
        scored = len(p_values)
        count_power = bool(p_values) and least_tail(scored, scored=scored, holdout=len(null.distances)) <= level
    named = _patients(found, p_values=p_values, selected=selected, drawn=drawn, counts=counted)
    config = loaded.network.config
    evidence = ReidentificationEvidence(
        verifier=str(loaded.folder),
        verifier_sha256=loaded.sha256,
        architecture=config.architecture,
        input_side=config.input_side,
        trained_on=config.trained_on,
        top_k=settings.top_k,
        family_false_alarm=settings.family_false_alarm,
        images_scored=len(p_values),
        holdout_images=len(null.distances),
        training_patients=len(set(patients)),
        tail=TailRecord.of(tail),
        identification=power.statement(),
        image_distances=[float(d) for d in found.distances],
        holdout_distances=[float(d) for d in null.distances],
        patients=named,
        count_tested=count_tested,
    )
    message = (
        f"{len(named)} of {len(set(patients))} training patients re-identified from {len(p_values)} images "
        f"at a family-wise {settings.family_false_alarm:g} ({power.statement()})"
    )
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=message,
        metrics={METRIC: float(len(named))} if power.can_identify or count_power else {},
        not_applicable={} if power.can_identify or count_power else {METRIC: power.statement()},
        reidentification=evidence,
        warnings=warnings,
    )


def released_embeddings(context: ScanContext, images) -> torch.Tensor:
    """Verifier embeddings of every image of a release (an ``ImageSet``), a batch at a time."""
    size = context.policy.checks.reidentification.batch_size
    advance = context.progress.stage("re-identification: released images", len(images))
    parts = []
    for batch in images.batches(size):
        parts.append(embed(context, batch))
        advance(len(batch))
    return torch.cat(parts) if parts else torch.empty(0, verifier(context).network.config.embedding_dim)


def _embedded(context: ScanContext, dataset: ImageCaptionDataset, *, rows: list[int], label: str) -> torch.Tensor:
    """Verifier embeddings of ``rows`` of ``dataset`` (computed once per scan, a batch in memory at a time)."""
    key = f"reid-{label}"
    if key not in context.memo:
        settings = context.policy.checks.reidentification
        advance = context.progress.stage(f"re-identification: {label} images", len(rows))
        parts = []
        for start in range(0, len(rows), settings.batch_size):
            batch = rows[start : start + settings.batch_size]
            side = verifier(context).network.config.input_side
            images = torch.stack([conform(dataset.load_image(row), size=side, channels=3) for row in batch])
            parts.append(embed(context, images))
            advance(len(batch))
        context.memo[key] = (
            torch.cat(parts) if parts else torch.empty(0, verifier(context).network.config.embedding_dim)
        )
    return context.memo[key]


def _patients(
    found, *, p_values: list[float], selected: list[bool], drawn: list[str], counts: list[PatientCount]
) -> list[ReidentifiedPatient]:
    """The patients the per-image test selected an image of, or the count test named (``counts``), with
    the patient's attributed images (``drawn``: each scored image's patient) and both tests' p-values."""
    counted = {count.patient: count for count in counts}
    by_image = {drawn[i] for i, keep in enumerate(selected) if keep}
    named = []
    for patient in sorted(by_image | set(counted)):
        mine = [i for i, who in enumerate(drawn) if who == patient]
        count = counted.get(patient)
        named.append(
            ReidentifiedPatient(
                patient_id=patient,
                images=sum(1 for i in mine if selected[i]),
                probability=float(1.0 - min(found.distances[i] for i in mine)),
                p_value=min(p_values[i] for i in mine),
                attributed=len(mine),
                count_p_value=count.p_value if count else None,
                holdout_attributed=count.holdout if count else None,
            )
        )
    return named
