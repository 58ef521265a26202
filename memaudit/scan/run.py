"""A scan, as the data flows: load (policy, data, model) -> build the context -> run the battery ->
judge against the policy -> ScanResult. `timed_scan` adds the record of when it ran."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from memaudit.checkpoint import Checkpoint, load_checkpoint, summarize
from memaudit.checkpoint.families import BY_NAME
from memaudit.checkpoint.loading import load_tokenizer
from memaudit.checkpoint.summary import CheckpointSummary
from memaudit.data import ImageCaptionDataset
from memaudit.denoiser import denoiser_for
from memaudit.errors import CheckpointError, MemauditError, PolicyError
from memaudit.features import ExtractorOptions
from memaudit.metrics.parameterization import PREDICTION_TYPES
from memaudit.policy import EffectivePolicy, effective_policy
from memaudit.results.reading import read_scan_result
from memaudit.results.scan_result import ModelRecord, RunRecord, ScanResult
from memaudit.scan.battery import image_checks, model_checks
from memaudit.scan.context import ScanContext
from memaudit.scan.judge import judge
from memaudit.scan.preflight import check_datasets, check_images
from memaudit.scan.previous_result import check_before
from memaudit.scan.progress import Progress, SilentProgress
from memaudit.scan.records import dataset_record, environment_record, policy_record
from memaudit.scan.reference import load_reference
from memaudit.scan.request import ScanRequest, sampling_dtype, with_family_defaults
from memaudit.scan.shard import Shard, current_shard
from memaudit.scan.work_log import WorkLog, scan_work_log


@dataclass(frozen=True)
class PreparedScan:
    """A scan's inputs checked and loaded, its context built: what the battery and the plan start from."""

    effective: EffectivePolicy
    context: ScanContext
    checkpoint: Checkpoint | None  # None when auditing --images
    summary: CheckpointSummary | None  # the checkpoint's, summarized once
    released: ImageCaptionDataset | None  # --images
    before: ScanResult | None


def prepare_scan(
    request: ScanRequest,
    *,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
) -> PreparedScan:
    """Check the inputs (preflight: every image decoded, for a scan and its plan alike), load the policy,
    data and model, and build the context."""
    if (request.model is None) == (request.images is None):
        raise MemauditError("give exactly one of a model and --images")
    if request.base is not None and (request.images is not None or not Path(request.base).exists()):
        what = "no such file or folder" if request.images is None else "a model's base; --images audits no model"
        raise CheckpointError(f"--base {request.base}: {what}")
    progress = progress or SilentProgress()
    effective = effective_policy(request.policy, request.overrides)
    policy = effective.policy
    train = ImageCaptionDataset(request.train, config=request.data)
    holdout = ImageCaptionDataset(request.holdout, config=request.data)
    with_model = request.model is not None
    tokenizer = None  # distinct prompts are counted as the text encoder reads them, before any model work
    if with_model:
        tokenizer = denoiser_for(checkpoint.pipeline).tokenizer if checkpoint is not None else load_tokenizer(
            request.model, config_dir=request.config_dir
        )
    check_datasets(train, holdout, policy=policy, progress=progress, with_model=with_model, tokenizer=tokenizer)
    before = read_scan_result(request.before) if request.before is not None else None
    if before is not None:
        check_before(before, request.before, train=train)
    shared = {
        "policy": policy,
        "train": train,
        "holdout": holdout,
        "progress": progress,
        "feature_cache": request.feature_cache,
        "extractor_options": ExtractorOptions(allow_pickle=request.allow_pickle, device=request.device),
        "include_evidence_images": request.include_evidence_images,
        "shard": current_shard(),
    }
    if shared["shard"].world > 1 and request.include_evidence_images:
        raise MemauditError("--include-evidence-images runs in one process: thumbnails are not gathered across ranks")
    torch.manual_seed(policy.sampling.seed)
    released, summary = None, None
    if request.model is not None:
        if checkpoint is None:
            checkpoint = load_checkpoint(
                request.model,
                config_dir=request.config_dir,
                allow_pickle=request.allow_pickle,
                adapters=list(request.adapters),
            )
        policy = shared["policy"] = with_family_defaults(policy, checkpoint.family)
        pipeline = checkpoint.pipeline.to(request.device)
        dtype = sampling_dtype(policy.sampling.dtype, request.device)
        if dtype != torch.float32:
            pipeline = pipeline.to(dtype)
        summary = summarize(checkpoint)
        readable = ("flow",) if BY_NAME[checkpoint.family].flow else PREDICTION_TYPES
        if summary.prediction_type not in readable:  # every score reads the output as noise
            raise CheckpointError(
                f"{request.model}: the scheduler says the UNet predicts {summary.prediction_type!r}; memaudit "
                f"reads {', '.join(readable)} models (scheduler/scheduler_config.json: prediction_type)"
            )
        denoiser = denoiser_for(pipeline, guidance=policy.sampling.guidance_scale)
        triage = policy.checks.noise_magnitude
        if triage.enabled and triage.detector == "attention" and not denoiser.has_cross_attention:
            raise PolicyError(
                f"checks.noise_magnitude.detector: 'attention' records cross-attention, and this "
                f"{checkpoint.family} model attends to text jointly (no attn2 layers); use wen, asthana, "
                "consistency or jeon"
            )
        try:
            image_side = denoiser.latent_factor * denoiser.latent_side(policy.sampling.resolution)
        except ValueError as error:
            raise PolicyError(f"sampling.resolution: {error}") from error
        reference = load_reference(request, checkpoint, policy=policy, progress=progress)
        work = scan_work_log(
            request, checkpoint, train=train, holdout=holdout, policy=policy, progress=progress, reference=reference
        )
        finished = work.finished() if work is not None else 0  # one listing of the folder
        if finished:
            progress.note(f"resuming: {finished:,} finished units of an earlier run of this scan in {work.folder}")
        context = ScanContext(pipeline=denoiser, image_side=image_side, work=work, reference=reference, **shared)
    else:
        released = ImageCaptionDataset(request.images, images_only=True)
        check_images(released, "released", progress)
        image_side = policy.sampling.resolution or int(released.load_image(0).shape[-1])
        context = ScanContext(pipeline=None, image_side=image_side, **shared)
    return PreparedScan(
        effective=effective, context=context, checkpoint=checkpoint, summary=summary, released=released, before=before
    )


@dataclass(frozen=True)
class FinishedScan:
    """A scan's result and the record of its run, with its work folder kept until its outputs are in
    place: a rerun after a failed publish (a full disk, Ctrl-C) reads the finished work back."""

    result: ScanResult
    run: RunRecord
    work: WorkLog | None
    shard: Shard

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Around putting the outputs in place (rank 0 writes them; every rank enters): when the block
        ends without an error on every rank, the work folder is removed, else it stays for the rerun."""
        done = False
        try:
            yield
            done = True
        finally:
            # A collective: no rank removes a folder ranks may share while rank 0 still publishes.
            if self.shard.everyone(done) and self.work is not None:
                self.work.remove()


def run_scan(
    request: ScanRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> ScanResult:
    """Scan a model (or a folder of generated images) against a policy. ``checkpoint`` may be preloaded.
    Nothing is published, so the work folder goes at once (``finished_scan`` keeps it)."""
    return timed_scan(request, progress=progress, checkpoint=checkpoint)[0]


def _scan(
    request: ScanRequest, *, progress: Progress | None, checkpoint: Checkpoint | None
) -> tuple[ScanResult, WorkLog | None, Shard]:
    prepared = prepare_scan(request, progress=progress, checkpoint=checkpoint)
    context, policy = prepared.context, prepared.effective.policy
    model_record, images_record = None, None
    if prepared.checkpoint is not None:
        checkpoint = prepared.checkpoint
        model_record = ModelRecord(
            source=str(request.model),
            format=checkpoint.format,
            weight_files=checkpoint.weight_files,
            config_files=checkpoint.config_files,
            digest=checkpoint.digest if checkpoint.weight_files else None,
            image_size=context.image_side,
            transformer_blocks=len(prepared.summary.unet_transformer_blocks),
            prediction_type=prepared.summary.prediction_type,
            family=checkpoint.family,
            adapters=checkpoint.adapters,
            guidance_scale=context.policy.sampling.guidance_scale,
        )
        outcomes = model_checks(context, before=prepared.before)
    else:
        images_record = dataset_record(prepared.released)
        outcomes = image_checks(context, prepared.released)
    verdict, rules, summary_line = judge(policy, outcomes)
    evidence = [image for outcome in outcomes.values() for image in outcome.evidence_images]
    result = ScanResult(
        mode="model" if request.model is not None else "images",
        verdict=verdict,
        summary=summary_line,
        policy=policy_record(prepared.effective),
        model=model_record,
        generated_images=images_record,
        train=dataset_record(context.train),
        holdout=dataset_record(context.holdout),
        checks=outcomes,
        rules=rules,
        # The same for every rank of a shard.
        environment=environment_record(
            torch.device(request.device).type, context.pipeline and context.pipeline.dtype
        ),
        evidence_images=evidence if request.include_evidence_images else None,
    )
    return result, context.work, context.shard


def finished_scan(
    request: ScanRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> FinishedScan:
    """The scan with the record of when it ran and for how long (run.json beside the reports); its work
    folder stays until ``FinishedScan.publishing`` ends (the caller puts the outputs in place there)."""
    started, clock = datetime.now(UTC), time.perf_counter()
    result, work, shard = _scan(request, progress=progress, checkpoint=checkpoint)
    run = RunRecord(
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - clock, 3),
        platform=platform.platform(),
    )
    return FinishedScan(result=result, run=run, work=work, shard=shard)


def timed_scan(
    request: ScanRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> tuple[ScanResult, RunRecord]:
    """``finished_scan`` for a caller that publishes nothing: the work folder is removed at once."""
    finished = finished_scan(request, progress=progress, checkpoint=checkpoint)
    with finished.publishing():
        pass
    return finished.result, finished.run
