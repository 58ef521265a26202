"""The shared search: a study in optuna storage carries a job record from which any worker rebuilds
what a trial needs, so that processes on several machines can join one remediation by its name."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import torch
from sqlalchemy.exc import SQLAlchemyError

from memaudit.checkpoint import Checkpoint, load_checkpoint, summarize, transformer_block_names
from memaudit.checkpoint.families import denoising_network
from memaudit.data import DataConfig, ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.features import ExtractorOptions
from memaudit.policy import effective_policy
from memaudit.remediate.objectives import ObjectiveInputs
from memaudit.remediate.request import PATH_FIELDS, RemediateRequest
from memaudit.remediate.search import TrialContext, open_study, run_search, storage_for
from memaudit.sampling.seeds import sample_seed
from memaudit.scan.context import ScanContext
from memaudit.scan.progress import Progress, SilentProgress

JOB_ATTRIBUTE = "memaudit_job"


def job_record(request: RemediateRequest, rows: list[int], manifest: Path) -> dict:
    """The request (paths absolute, no signing key), D_mem's rows and the proxy manifest, for workers."""
    fields = {
        name: (str(Path(value).resolve()) if name in PATH_FIELDS and value is not None else value)
        for name, value in request.__dict__.items()
        if name != "sign_key"  # workers never sign; the key's path stays out of the shared study
    }
    fields["policy"] = (
        str(Path(str(request.policy)).resolve()) if Path(str(request.policy)).exists() else request.policy
    )
    fields["spaces"] = list(request.spaces) if request.spaces else None
    fields["data"] = request.data.model_dump() if request.data else None
    fields["adapters"] = [[str(Path(file).resolve()), scale] for file, scale in request.adapters]
    return {"request": fields, "memorization_rows": rows, "proxy_manifest": str(manifest.resolve())}


def trial_context(job: dict, *, progress: Progress | None = None, base: Checkpoint | None = None) -> TrialContext:
    """Everything a trial needs, rebuilt from the job record a study carries (so any worker can join)."""
    progress = progress or SilentProgress()
    fields = {k: (Path(v) if k in PATH_FIELDS and v is not None else v) for k, v in job["request"].items()}
    if fields.get("data") is not None:
        fields["data"] = DataConfig.model_validate(fields["data"])
    fields["adapters"] = tuple((Path(file), float(scale)) for file, scale in fields.get("adapters") or ())
    request = RemediateRequest(**fields)
    policy = effective_policy(request.policy, request.overrides).policy
    settings = policy.remediation
    train = ImageCaptionDataset(request.train, config=request.data)
    holdout = ImageCaptionDataset(request.holdout, config=request.data)
    if base is None:
        base = load_checkpoint(request.base, allow_pickle=request.allow_pickle)
    base.pipeline.to(request.device)
    image_side = summarize(base).image_size
    context = ScanContext(
        policy=policy,
        train=train,
        holdout=holdout,
        progress=progress,
        pipeline=base.pipeline,
        image_side=image_side,
        feature_cache=request.feature_cache,
        extractor_options=ExtractorOptions(allow_pickle=request.allow_pickle, device=request.device),
    )
    generator = torch.Generator().manual_seed(sample_seed(policy.sampling.seed, "remediation-holdout", 0))
    picks = torch.randperm(len(holdout), generator=generator)[: settings.fid_prompts].tolist()
    rows = job["memorization_rows"]
    inputs = ObjectiveInputs(
        memorization_captions=sorted({train.captions[row] for row in rows}),
        holdout_captions=[holdout.captions[i] for i in picks],
        holdout_features=context.holdout_features,
        extractor=context.extractor,
        image_side=image_side,
    )
    return TrialContext(
        base_pipeline=base.pipeline,
        blocks=tuple(transformer_block_names(denoising_network(base.pipeline))),
        proxy=ImageCaptionDataset(job["proxy_manifest"]),
        inputs=inputs,
        policy=policy,
        work_dir=Path(request.out) / "work",
    )


def _find_job(storage, storage_url: str, study_name: str) -> tuple[bool, dict | None]:
    """(whether the study exists, its job record): `remediate` creates the study, then records the job."""
    try:
        summaries = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    except (SQLAlchemyError, ValueError, ImportError) as error:
        raise MemauditError(f"{storage_url}: cannot open the study storage ({error})") from error
    if study_name not in summaries:
        return False, None
    return True, summaries[study_name].user_attrs.get(JOB_ATTRIBUTE)


def join_study(
    storage_url: str, study_name: str, *, heartbeat: int = 30, wait: int = 0, progress: Progress | None = None
) -> int:
    """`memaudit worker`: work on an existing study until it has enough completed trials.

    ``wait`` seconds: workers may start before `memaudit remediate` has created the study, or between its
    creating the study and recording the job in it.
    """
    try:
        storage = storage_for(storage_url, heartbeat=heartbeat)
    except (SQLAlchemyError, ValueError, ImportError) as error:
        raise MemauditError(f"{storage_url}: cannot open the study storage ({error})") from error
    deadline = time.monotonic() + wait
    exists, job = _find_job(storage, storage_url, study_name)
    while job is None and time.monotonic() < deadline:
        time.sleep(1.0)
        exists, job = _find_job(storage, storage_url, study_name)
    if job is None and exists:
        raise MemauditError(f"study '{study_name}' was not made by memaudit remediate")
    if job is None:
        raise MemauditError(f"no study '{study_name}' in {storage_url}; start one with memaudit remediate")
    context = trial_context(job, progress=progress)
    study = open_study(study_name, storage, context.policy)
    before = len(study.trials)
    run_search(study, context, total_trials=context.policy.remediation.trials)
    return len(study.trials) - before
