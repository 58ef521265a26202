"""The battery: run the policy's enabled checks on a built context, in order, and collect their outcomes.

triage (noise magnitude over all distinct training prompts) -> extraction on the flagged prompts
plus a seeded sample (or all) -> membership inference (when enabled) -> nearest neighbour and FID on
a generated sample -> alignment.
A check that cannot run records an error outcome; the judge turns that into an error verdict if the
check is required (fail closed) and a warning otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.results.scan_result import CheckOutcome, ScanResult
from memaudit.scan.alignment_check import run_alignment
from memaudit.scan.context import ScanContext
from memaudit.scan.extraction_check import choose_prompts, run_extraction, run_image_matching
from memaudit.scan.generated_sample import generated_sample
from memaudit.scan.image_set import ImageSet
from memaudit.scan.membership_check import run_membership
from memaudit.scan.neighbour_check import (
    FEATURE_BATCH,
    generated_features,
    run_fid,
    run_nearest_neighbour,
)
from memaudit.scan.noise_check import run_noise_magnitude
from memaudit.scan.preflight import check_holdout_size
from memaudit.scan.reidentification_check import released_embeddings, run_reidentification
from memaudit.scan.retrigger_check import run_retrigger


def _guarded(required: bool, run: Callable[[], CheckOutcome]) -> CheckOutcome:
    """Run one check; an input or configuration problem becomes an error outcome naming it."""
    try:
        return run()
    except (MemauditError, ValueError) as error:
        return CheckOutcome(status="error", required=required, message=str(error))


def model_checks(context: ScanContext, *, before: ScanResult | None = None) -> dict[str, CheckOutcome]:
    """The battery on a model: triage, extraction, membership, the checks on a generated sample, and
    re-triggering of the memorized or flagged prompts (this scan's, or ``before``'s)."""
    checks = context.policy.checks
    outcomes: dict[str, CheckOutcome] = {}
    scores, flags = None, None
    if checks.noise_magnitude.enabled:
        # Preflight counted distinct captions before the model was loaded; to its tokenizer they may be
        # fewer prompts (a cut at 77 tokens). Too few for the calibration is refused here, before any UNet work.
        check_holdout_size(context.holdout, policy=context.policy, with_model=True, tokenizer=context.tokenizer)
        try:
            outcome, scores = run_noise_magnitude(context)
            flags = [p.flagged for p in outcome.noise_magnitude.train]
        except (MemauditError, ValueError) as error:
            outcome = CheckOutcome(status="error", required=checks.noise_magnitude.required, message=str(error))
        outcomes["noise_magnitude"] = outcome
    if checks.extraction.enabled:
        chosen = choose_prompts(context, scores, flags)
        outcomes["extraction"] = _guarded(checks.extraction.required, lambda: run_extraction(context, chosen))
    if checks.membership.enabled:
        outcomes["membership"] = _guarded(checks.membership.required, lambda: run_membership(context))
    if checks.nearest_neighbour.enabled or checks.alignment.enabled or checks.reidentification.enabled:
        try:
            sample = generated_sample(context)
            outcomes |= sample_checks(
                context,
                None,
                sample.captions,
                features=sample.features,
                feature_error=sample.feature_error,
                alignment=sample.alignment,
            )
            if checks.reidentification.enabled:
                outcomes["reidentification"] = _reidentified(context, sample.reid, sample.reid_error)
        except (MemauditError, ValueError) as error:
            outcomes |= sample_checks(context, None, [], failure=f"could not generate images: {error}")
            if checks.reidentification.enabled:
                outcomes["reidentification"] = _reidentified(context, None, f"could not generate images: {error}")
    if checks.retrigger.enabled and before is None and checks.retrigger.when == "before":
        outcomes["retrigger"] = CheckOutcome(
            status="not_applicable", required=False, message="no previous scan to re-trigger (remediation runs it)"
        )
    elif checks.retrigger.enabled:
        found = dict(outcomes)
        outcomes["retrigger"] = _guarded(checks.retrigger.required, lambda: run_retrigger(context, found, before))
    return outcomes


def _reidentified(context: ScanContext, embeddings: torch.Tensor | None, error: str | None) -> CheckOutcome:
    required = context.policy.checks.reidentification.required
    if embeddings is None:
        return CheckOutcome(status="error", required=required, message=error or "no images were embedded")
    return _guarded(required, lambda: run_reidentification(context, embeddings, generated=True))


def sample_checks(
    context: ScanContext,
    images: ImageSet | None,
    captions: list[str],
    *,
    failure: str = "",
    features: torch.Tensor | None = None,
    feature_error: str | None = None,
    alignment: CheckOutcome | None = None,
) -> dict[str, CheckOutcome]:
    """Nearest neighbour, FID and alignment on one set of generated (or released) images; ``features``
    and the ``alignment`` outcome when already computed as a generated sample streamed past (its
    images are not kept; ``images`` is then None)."""
    checks = context.policy.checks
    outcomes: dict[str, CheckOutcome] = {}
    given = features

    def neighbours() -> CheckOutcome:
        nonlocal features
        if feature_error is not None:
            raise MemauditError(feature_error)
        if features is None:
            features = torch.cat([generated_features(context, batch) for batch in images.batches(FEATURE_BATCH)])
        return run_nearest_neighbour(context, features)

    def fid() -> CheckOutcome:
        if features is None:
            raise ValueError("FID needs the nearest-neighbour features, which could not be computed")
        return run_fid(context, features)

    runners = (
        ("nearest_neighbour", neighbours),
        ("fid", fid),
        ("alignment", lambda: run_alignment(context, images, captions)),
    )
    for name, runner in runners:
        settings = getattr(checks, name)
        if not settings.enabled:
            continue
        if name == "alignment" and alignment is not None:
            outcomes[name] = alignment
        elif images is None and (name == "alignment" or (given is None and feature_error is None)):
            outcomes[name] = CheckOutcome(status="error", required=settings.required, message=failure)
        else:
            outcomes[name] = _guarded(settings.required, runner)
    return outcomes


def image_checks(context: ScanContext, released: ImageCaptionDataset) -> dict[str, CheckOutcome]:
    """The battery on a release of generated images: every image is checked against the training set.
    Images are read from their files a chunk or batch at a time, never held all at once."""
    checks = context.policy.checks
    outcomes: dict[str, CheckOutcome] = {}
    if checks.noise_magnitude.enabled:
        outcomes["noise_magnitude"] = CheckOutcome(
            status="not_applicable", required=False, message="noise magnitude needs the model, not its images"
        )
    if checks.extraction.enabled:
        outcomes["extraction"] = _guarded(checks.extraction.required, lambda: run_image_matching(context, released))
    for name, what in (("membership", "membership inference"), ("retrigger", "re-triggering")):
        if getattr(checks, name).enabled:
            outcomes[name] = CheckOutcome(
                status="not_applicable", required=False, message=f"{what} needs the model, not its images"
            )
    features, feature_error = None, None
    if checks.nearest_neighbour.enabled:  # FID reads the same features
        try:
            features = context.dataset_features(released, "released")
        except (MemauditError, ValueError) as error:
            feature_error = str(error)
    images = ImageSet.from_dataset(released, side=context.image_side)
    if checks.reidentification.enabled:
        outcomes["reidentification"] = _guarded(
            checks.reidentification.required,
            lambda: run_reidentification(context, released_embeddings(context, images)),
        )
    return outcomes | sample_checks(context, images, released.captions, features=features, feature_error=feature_error)
