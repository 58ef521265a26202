"""A scan, as the data flows: load (policy, data, model) -> build the context -> run the battery ->
judge against the policy -> ScanResult. `timed_scan` adds the record of when it ran."""

from __future__ import annotations

import platform
import time
from datetime import UTC, datetime

import torch

from memaudit import __version__
from memaudit.checkpoint import Checkpoint, load_checkpoint, summarize
from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.features import ExtractorOptions
from memaudit.policy import EffectivePolicy, effective_policy
from memaudit.results.reading import read_scan_result
from memaudit.results.scan_result import (
    DatasetRecord,
    Environment,
    ModelRecord,
    PolicyRecord,
    RunRecord,
    ScanResult,
)
from memaudit.scan.battery import image_checks, model_checks
from memaudit.scan.context import ScanContext
from memaudit.scan.judge import judge
from memaudit.scan.preflight import check_datasets, check_images
from memaudit.scan.progress import Progress, SilentProgress
from memaudit.scan.request import ScanRequest


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


def _policy_record(effective: EffectivePolicy) -> PolicyRecord:
    policy = effective.policy
    return PolicyRecord(
        name=policy.name,
        file=effective.loaded.path.name,
        sha256=effective.loaded.sha256,
        content=policy.model_dump(mode="json"),
        overrides=effective.overrides,
    )


def run_scan(
    request: ScanRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> ScanResult:
    """Scan a model (or a folder of generated images) against a policy. ``checkpoint`` may be preloaded."""
    if (request.model is None) == (request.images is None):
        raise MemauditError("give exactly one of a model and --images")
    progress = progress or SilentProgress()
    effective = effective_policy(request.policy, request.overrides)
    policy = effective.policy
    train, holdout = ImageCaptionDataset(request.train), ImageCaptionDataset(request.holdout)
    check_datasets(train, holdout, policy=policy, progress=progress, with_model=request.model is not None)
    before = read_scan_result(request.before) if request.before is not None else None
    shared = {
        "policy": policy,
        "train": train,
        "holdout": holdout,
        "progress": progress,
        "feature_cache": request.feature_cache,
        "extractor_options": ExtractorOptions(allow_pickle=request.allow_pickle, device=request.device),
        "include_evidence_images": request.include_evidence_images,
    }
    model_record, images_record = None, None
    torch.manual_seed(policy.sampling.seed)
    if request.model is not None:
        if checkpoint is None:
            checkpoint = load_checkpoint(
                request.model, config_dir=request.config_dir, allow_pickle=request.allow_pickle
            )
        pipeline = checkpoint.pipeline.to(request.device)
        summary = summarize(checkpoint)
        image_side = summary.vae_scale_factor * _latent_side(pipeline, policy.sampling.resolution)
        context = ScanContext(pipeline=pipeline, image_side=image_side, **shared)
        model_record = ModelRecord(
            source=str(request.model),
            format=checkpoint.format,
            weight_files=checkpoint.weight_files,
            image_size=image_side,
            transformer_blocks=len(summary.unet_transformer_blocks),
        )
        outcomes = model_checks(context, before=before)
    else:
        released = ImageCaptionDataset(request.images, images_only=True)
        check_images(released, "released", progress)
        image_side = policy.sampling.resolution or int(released.load_image(0).shape[-1])
        context = ScanContext(pipeline=None, image_side=image_side, **shared)
        images = released.load_images(size=image_side, channels=3)
        images_record = _dataset_record(released)
        outcomes = image_checks(context, images, ids=released.ids, captions=released.captions)
    verdict, rules, summary_line = judge(policy, outcomes)
    evidence = [image for outcome in outcomes.values() for image in outcome.evidence_images]
    return ScanResult(
        mode="model" if request.model is not None else "images",
        verdict=verdict,
        summary=summary_line,
        policy=_policy_record(effective),
        model=model_record,
        generated_images=images_record,
        train=_dataset_record(train),
        holdout=_dataset_record(holdout),
        checks=outcomes,
        rules=rules,
        environment=_environment(request.device),
        evidence_images=evidence if request.include_evidence_images else None,
    )


def _latent_side(pipeline, resolution: int | None) -> int:
    from memaudit.sampling.denoise import latent_side

    return latent_side(pipeline, resolution)


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
