"""The scan: load inputs, run the enabled checks in order, judge them against the policy.

triage (noise magnitude over all distinct training prompts) -> extraction on the flagged prompts
plus a seeded sample (or all) -> nearest neighbour and FID on a generated sample -> judgement.
A check that cannot run records an error; the judge turns that into an error verdict if the check
is required (fail closed) and a warning otherwise.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from memaudit import __version__
from memaudit.checkpoint import Checkpoint, load_checkpoint, summarize
from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.features import ExtractorOptions
from memaudit.policy import LoadedPolicy, load_policy
from memaudit.scan.alignment_check import run_alignment
from memaudit.scan.context import ScanContext
from memaudit.scan.extraction_check import choose_prompts, run_extraction, run_image_matching
from memaudit.scan.judge import judge
from memaudit.scan.neighbour_check import generated_features, generated_sample, run_fid, run_nearest_neighbour
from memaudit.scan.noise_check import run_noise_magnitude
from memaudit.scan.progress import Progress, SilentProgress
from memaudit.scan.result import (
    CheckOutcome,
    DatasetRecord,
    Environment,
    ModelRecord,
    PolicyRecord,
    RunRecord,
    ScanResult,
)


@dataclass(frozen=True)
class ScanRequest:
    """Everything a scan needs; exactly one of ``model`` and ``images``."""

    train: Path
    holdout: Path
    policy: Path | str
    model: Path | None = None
    images: Path | None = None
    config_dir: Path | None = None
    allow_pickle: bool = False
    seed: int | None = None
    batch_size: int | None = None
    device: str = "cpu"
    feature_cache: Path | None = None
    include_evidence_images: bool = False  # internal reports only: puts training pixels in the result


def _effective_policy(request: ScanRequest) -> tuple[LoadedPolicy, object, dict]:
    loaded = load_policy(request.policy)
    overrides = {}
    sampling = loaded.policy.sampling
    if request.seed is not None:
        overrides["seed"] = request.seed
    if request.batch_size is not None:
        overrides["batch_size"] = request.batch_size
    policy = loaded.policy.model_copy(update={"sampling": sampling.model_copy(update=overrides)})
    return loaded, policy, overrides


def _guarded(required: bool, run: Callable[[], CheckOutcome]) -> CheckOutcome:
    """Run one check; an input or configuration problem becomes an error outcome naming it."""
    try:
        return run()
    except (MemauditError, ValueError) as error:
        return CheckOutcome(status="error", required=required, message=str(error))


def _environment(device: str) -> Environment:
    import diffusers
    import transformers

    return Environment(
        memaudit=__version__,
        python=platform.python_version(),
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        transformers=transformers.__version__,
        device=device,
    )


def _dataset_record(dataset: ImageCaptionDataset) -> DatasetRecord:
    return DatasetRecord(source=str(dataset.source), digest=dataset.digest, items=len(dataset))


def _model_checks(context: ScanContext) -> dict[str, CheckOutcome]:
    checks = context.policy.checks
    outcomes: dict[str, CheckOutcome] = {}
    scores, flags = None, None
    if checks.noise_magnitude.enabled:
        try:
            outcome, scores = run_noise_magnitude(context)
            flags = [p.flagged for p in outcome.noise_magnitude.train]
        except (MemauditError, ValueError) as error:
            outcome = CheckOutcome(status="error", required=checks.noise_magnitude.required, message=str(error))
        outcomes["noise_magnitude"] = outcome
    if checks.extraction.enabled:
        chosen = choose_prompts(context, scores, flags)
        outcomes["extraction"] = _guarded(checks.extraction.required, lambda: run_extraction(context, chosen))
    if checks.nearest_neighbour.enabled or checks.alignment.enabled:
        try:
            outcomes |= _sample_checks(context, *generated_sample(context))
        except (MemauditError, ValueError) as error:
            outcomes |= _sample_checks(context, None, [], failure=f"could not generate images: {error}")
    return outcomes


def _sample_checks(
    context: ScanContext, images: torch.Tensor | None, captions: list[str], *, failure: str = ""
) -> dict[str, CheckOutcome]:
    """Nearest neighbour, FID and alignment on one set of generated (or released) images."""
    checks = context.policy.checks
    outcomes: dict[str, CheckOutcome] = {}
    features = None

    def neighbours() -> CheckOutcome:
        nonlocal features
        features = generated_features(context, images)
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
        if images is None:
            outcomes[name] = CheckOutcome(status="error", required=settings.required, message=failure)
        else:
            outcomes[name] = _guarded(settings.required, runner)
    return outcomes


def _image_checks(
    context: ScanContext, images: torch.Tensor, ids: list[str], captions: list[str]
) -> dict[str, CheckOutcome]:
    checks = context.policy.checks
    outcomes: dict[str, CheckOutcome] = {}
    if checks.noise_magnitude.enabled:
        outcomes["noise_magnitude"] = CheckOutcome(
            status="not_applicable", required=False, message="noise magnitude needs the model, not its images"
        )
    if checks.extraction.enabled:
        outcomes["extraction"] = _guarded(checks.extraction.required, lambda: run_image_matching(context, images, ids))
    return outcomes | _sample_checks(context, images, captions)


def run_scan(
    request: ScanRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> ScanResult:
    """Scan a model (or a folder of generated images) against a policy. ``checkpoint`` may be preloaded."""
    if (request.model is None) == (request.images is None):
        raise MemauditError("give exactly one of a model and --images")
    progress = progress or SilentProgress()
    loaded, policy, overrides = _effective_policy(request)
    train, holdout = ImageCaptionDataset(request.train), ImageCaptionDataset(request.holdout)
    options = ExtractorOptions(
        allow_pickle=request.allow_pickle,
        device=request.device,
    )
    context = ScanContext(
        policy=policy,
        train=train,
        holdout=holdout,
        progress=progress,
        feature_cache=request.feature_cache,
        extractor_options=options,
        include_evidence_images=request.include_evidence_images,
    )
    model_record, images_record = None, None
    torch.manual_seed(policy.sampling.seed)
    if request.model is not None:
        if checkpoint is None:
            checkpoint = load_checkpoint(
                request.model, config_dir=request.config_dir, allow_pickle=request.allow_pickle
            )
        checkpoint.pipeline.to(request.device)
        summary = summarize(checkpoint)
        context.pipeline = checkpoint.pipeline
        context.image_side = context.latent_side * summary.vae_scale_factor
        model_record = ModelRecord(
            source=str(request.model),
            format=checkpoint.format,
            weight_files=checkpoint.weight_files,
            image_size=context.image_side,
            transformer_blocks=len(summary.unet_transformer_blocks),
        )
        outcomes = _model_checks(context)
    else:
        released = ImageCaptionDataset(request.images, images_only=True)
        context.image_side = policy.sampling.resolution or int(released.load_image(0).shape[-1])
        images = released.load_images(size=context.image_side, channels=3)
        images_record = _dataset_record(released)
        outcomes = _image_checks(context, images, released.ids, released.captions)
    verdict, rules, summary_line = judge(policy, outcomes)
    return ScanResult(
        mode="model" if request.model is not None else "images",
        verdict=verdict,
        summary=summary_line,
        policy=PolicyRecord(
            name=policy.name,
            file=loaded.path.name,
            sha256=loaded.sha256,
            content=policy.model_dump(mode="json"),
            overrides=overrides,
        ),
        model=model_record,
        generated_images=images_record,
        train=_dataset_record(train),
        holdout=_dataset_record(holdout),
        checks=outcomes,
        rules=rules,
        environment=_environment(request.device),
        evidence_images=context.evidence_images if request.include_evidence_images else None,
    )


def timed_scan(
    request: ScanRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> tuple[ScanResult, RunRecord]:
    """``run_scan`` with the record of when it ran and for how long (run.json beside the reports)."""
    started, clock = datetime.now(UTC), time.perf_counter()
    result = run_scan(request, progress=progress, checkpoint=checkpoint)
    run = RunRecord(
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - clock, 3),
        platform=platform.platform(),
    )
    return result, run
