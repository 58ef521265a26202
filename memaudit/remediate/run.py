"""`memaudit remediate`: scan, search (or take a given mask), retrain the choice, re-scan, record.

Output folder:
  before/      the scan of MODEL (reports as `memaudit scan` writes them)
  study.db     the optuna study (SQLite) unless --storage names another database
  remediated/  the base fine-tuned on the full training set with the chosen mask (model/, mask.json, ...)
  after/       the scan of the remediated model with the same policy (signed like any scan)
  mask.json    the chosen space and mask, reusable with --mask
  remediation.json, provenance.json   every trial, the Pareto front, the choice, before/after
  work/        proxy-data manifest (it names training images and holds captions) and trial checkpoints
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import optuna
from sqlalchemy.exc import SQLAlchemyError

from memaudit import __version__
from memaudit.attest.sign import ATTESTATION_NAME, sign_scan, sign_statement
from memaudit.attest.statement import remediation_statement
from memaudit.checkpoint import Checkpoint, load_checkpoint, summarize
from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.features import ExtractorOptions
from memaudit.finetune.mask import BlockMask, parse_mask
from memaudit.finetune.run import finetune
from memaudit.policy import load_policy
from memaudit.remediate.objectives import ObjectiveInputs
from memaudit.remediate.proxy import memorization_set, write_proxy_manifest
from memaudit.remediate.search import TrialContext, open_study, run_search, storage_for, training_config
from memaudit.remediate.select import choose
from memaudit.render.files import write_atomic
from memaudit.render.outputs import SIGNED_REPORTS, write_scan_outputs
from memaudit.render.remediation_report import write_remediation_report
from memaudit.sampling.seeds import sample_seed
from memaudit.scan import ScanRequest, ScanResult, timed_scan
from memaudit.scan.context import ScanContext
from memaudit.scan.progress import Progress, SilentProgress
from memaudit.scan.result import RunRecord


@dataclass(frozen=True)
class RemediateRequest:
    model: Path
    base: Path
    train: Path
    holdout: Path
    policy: Path | str
    out: Path
    spaces: tuple[str, ...] | None = None
    trials: int | None = None
    storage: str | None = None
    study: str | None = None
    mask: Path | None = None
    sign_key: Path | None = None
    device: str = "cpu"
    feature_cache: Path | None = None
    config_dir: Path | None = None
    allow_pickle: bool = False
    heartbeat: int = 30


@dataclass
class RemediationResult:
    before: ScanResult
    after: ScanResult
    space: str
    mask: BlockMask
    trials: list[dict]
    chosen_trial: int | None


def _scan(
    request: RemediateRequest, model: Path, out: Path, progress: Progress, checkpoint: Checkpoint | None = None
) -> ScanResult:
    scan_request = ScanRequest(
        train=request.train,
        holdout=request.holdout,
        policy=request.policy,
        model=model,
        config_dir=request.config_dir if model == request.model else None,
        allow_pickle=request.allow_pickle,
        device=request.device,
        feature_cache=request.feature_cache,
    )
    result, run = timed_scan(scan_request, progress=progress, checkpoint=checkpoint)
    write_scan_outputs(result, out, run)
    return result


def read_mask_file(path: Path, unet) -> tuple[str, BlockMask]:
    """(space, mask) from a remediation's mask.json, or a preset by name (e.g. memcontrol-sd15)."""
    from memaudit.finetune.presets import PRESETS, preset_mask

    if str(path) in PRESETS:
        return preset_mask(str(path), unet)
    try:
        space = json.loads(Path(path).read_text(encoding="utf-8"))["space"]
    except (OSError, ValueError, KeyError) as error:
        raise MemauditError(f"{path}: a remediation mask file needs 'space', 'blocks' and 'bits' ({error})") from error
    return space, parse_mask(path, unet)


def _trial_record(trial: optuna.trial.FrozenTrial, front: set[int]) -> dict:
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "space": trial.user_attrs.get("space"),
        "mask": trial.user_attrs.get("mask"),
        "trainable_parameters": trial.user_attrs.get("trainable_parameters"),
        "memorization": trial.values[0] if trial.values else None,
        "fid": trial.values[1] if trial.values else None,
        "pareto": trial.number in front,
    }


JOB_ATTRIBUTE = "memaudit_job"


def _effective_policy(request: RemediateRequest):
    loaded = load_policy(request.policy)
    policy, settings = loaded.policy, loaded.policy.remediation
    update = {}
    if request.spaces:
        update["spaces"] = list(request.spaces)
    if request.trials:
        update["trials"] = request.trials
    if update:
        settings = type(settings).model_validate(settings.model_dump() | update)
        policy = policy.model_copy(update={"remediation": settings})
    return loaded, policy


def trial_context(job: dict, *, progress: Progress | None = None, base: Checkpoint | None = None) -> TrialContext:
    """Everything a trial needs, rebuilt from the job record a study carries (so any worker can join)."""
    import torch

    progress = progress or SilentProgress()
    request = RemediateRequest(
        **{k: (Path(v) if k in _PATH_FIELDS and v is not None else v) for k, v in job["request"].items()}
    )
    _, policy = _effective_policy(request)
    settings = policy.remediation
    train, holdout = ImageCaptionDataset(request.train), ImageCaptionDataset(request.holdout)
    if base is None:
        base = load_checkpoint(request.base, allow_pickle=request.allow_pickle)
    base.pipeline.to(request.device)
    context = ScanContext(
        policy=policy,
        train=train,
        holdout=holdout,
        progress=progress,
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
        image_side=summarize(base).image_size,
    )
    return TrialContext(
        base_pipeline=base.pipeline,
        blocks=tuple(_blocks(base.pipeline.unet)),
        proxy=ImageCaptionDataset(job["proxy_manifest"]),
        inputs=inputs,
        policy=policy,
        work_dir=Path(request.out) / "work",
    )


_PATH_FIELDS = {"model", "base", "train", "holdout", "out", "mask", "feature_cache", "config_dir"}


def _job_record(request: RemediateRequest, rows: list[int], manifest: Path) -> dict:
    fields = {
        name: (str(Path(value).resolve()) if name in _PATH_FIELDS and value is not None else value)
        for name, value in request.__dict__.items()
        if name != "sign_key"  # workers never sign; the key's path stays out of the shared study
    }
    fields["policy"] = (
        str(Path(str(request.policy)).resolve()) if Path(str(request.policy)).exists() else request.policy
    )
    fields["spaces"] = list(request.spaces) if request.spaces else None
    return {"request": fields, "memorization_rows": rows, "proxy_manifest": str(manifest.resolve())}


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
    import time

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


def remediate(
    request: RemediateRequest,
    progress: Progress | None = None,
    *,
    model_checkpoint: Checkpoint | None = None,
    before: tuple[ScanResult, RunRecord] | None = None,
) -> RemediationResult:
    """Remediate ``request.model`` (or ``model_checkpoint``, an already loaded stand-in for it).

    ``before``: a scan of that model already run with the request's policy and data, with the record
    of that run, reused rather than repeated (its reports are written to OUT/before all the same).
    """
    progress = progress or SilentProgress()
    out = Path(request.out)
    loaded, policy = _effective_policy(request)
    settings = policy.remediation
    train = ImageCaptionDataset(request.train)
    if before is None:
        before = _scan(request, request.model, out / "before", progress, model_checkpoint)
    else:
        before, before_run = before
        _check_reusable(before, loaded.sha256, train.digest)
        write_scan_outputs(before, out / "before", before_run)
    base = load_checkpoint(request.base, allow_pickle=request.allow_pickle)
    trials: list[dict] = []
    chosen_number = None
    if request.mask is not None:
        space, mask = read_mask_file(request.mask, base.pipeline.unet)
    else:
        rows = memorization_set(before, train, settings, policy.sampling.seed)
        manifest = write_proxy_manifest(train, rows, settings, policy.sampling.seed, out / "work" / "proxy.jsonl")
        job = _job_record(request, rows, manifest)
        context = trial_context(job, progress=progress, base=base)
        url = request.storage or f"sqlite:///{(out / 'study.db').resolve()}"
        study = open_study(
            request.study or f"memaudit-{policy.name}", storage_for(url, heartbeat=request.heartbeat), policy
        )
        study.set_user_attr(JOB_ATTRIBUTE, job)
        advance = progress.stage("MemControl search (trials)", settings.trials)
        run_search(study, context, total_trials=settings.trials, on_trial=lambda trial: advance(1))
        chosen = choose(study, settings.selection, settings.max_memorization)
        chosen_number = chosen.number
        space = chosen.user_attrs["space"]
        mask = BlockMask(context.blocks, tuple(c == "1" for c in chosen.user_attrs["mask"]))
        front = {trial.number for trial in study.best_trials}
        trials = [_trial_record(t, front) for t in study.get_trials(deepcopy=False)]
    write_atomic(out / "mask.json", json.dumps({"space": space, **json.loads(mask.to_json())}, indent=2) + "\n")
    config = training_config(policy, space, mask, steps=settings.retrain_steps)
    retrained = finetune(
        request.base,
        request.train,
        config,
        out / "remediated",
        allow_pickle=request.allow_pickle,
        device=request.device,
    )
    after = _scan(request, retrained.model_dir, out / "after", progress)
    record = {
        "memaudit": __version__,
        "policy": {"name": policy.name, "sha256": loaded.sha256},
        "space": space,
        "mask": mask.as_string(),
        "chosen_trial": chosen_number,
        "trials": trials,
        "trainable_parameters": retrained.trainable,
        "trainable_fraction": retrained.trainable_fraction,
        "before": {rule.id: {"value": rule.value, "status": rule.status} for rule in before.rules},
        "after": {rule.id: {"value": rule.value, "status": rule.status} for rule in after.rules},
        "verdict": {"before": before.verdict, "after": after.verdict},
    }
    write_atomic(out / "remediation.json", json.dumps(record, indent=2) + "\n")
    reports = write_remediation_report(record, list(mask.blocks), before.summary, after.summary, out)
    write_atomic(
        out / "provenance.json",
        json.dumps(_provenance(request, base, train, loaded.sha256, config, after), indent=2) + "\n",
    )
    if request.sign_key is not None:
        sign_scan(after, [out / "after" / name for name in SIGNED_REPORTS], request.sign_key, out / "after")
        records = [out / "remediation.json", *reports, out / "provenance.json", out / "mask.json"]
        statement = remediation_statement(record, after.model.weight_files, records)
        sign_statement(statement, request.sign_key, out / ATTESTATION_NAME)
    return RemediationResult(
        before=before, after=after, space=space, mask=mask, trials=trials, chosen_trial=chosen_number
    )


def _check_reusable(before: ScanResult, policy_sha256: str, train_digest: str) -> None:
    """A reused scan must be of this policy and this training set, else before/after compare unlike things."""
    if before.policy.sha256 != policy_sha256 or before.train.digest != train_digest:
        raise MemauditError("the scan passed as 'before' used another policy or training set than this remediation")


def _blocks(unet) -> list[str]:
    from memaudit.checkpoint.blocks import transformer_block_names

    return transformer_block_names(unet)


def _provenance(request, base, train, policy_sha256: str, config, after: ScanResult) -> dict:
    """A SLSA-style provenance record of the remediated model: what went in, how, and what came out."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": f"model/{w.path}", "digest": {"sha256": w.sha256}} for w in after.model.weight_files],
        "predicate": {
            "buildDefinition": {
                "buildType": "urn:memaudit:remediate:v1",
                "externalParameters": {"policy_sha256": policy_sha256, "training": config.model_dump(mode="json")},
                "resolvedDependencies": [
                    *({"name": f"base/{w.path}", "digest": {"sha256": w.sha256}} for w in base.weight_files),
                    {"name": "training-data", "digest": {"sha256": train.digest}},
                ],
            },
            "runDetails": {"builder": {"id": f"memaudit {__version__}"}},
        },
    }
