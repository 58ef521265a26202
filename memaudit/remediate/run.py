"""`memaudit remediate`: scan, search (or take a given mask), retrain the choice, re-scan, record.

It reads like the data flow: before-scan -> (stop if it passes) -> D_mem and proxy data -> search ->
choose -> retrain from the base -> after-scan -> RemediationResult -> publish and sign.

Output folder:
  before/      the scan of MODEL (reports as `memaudit scan` writes them)
  study.db     the optuna study (SQLite) unless --storage names another database
  remediated/  the base fine-tuned on the full training set with the chosen mask (model/, mask.json, ...)
  after/       the scan of the remediated model with the same policy (signed like any scan)
  mask.json    the chosen space and mask, reusable with --mask
  remediation.json (the RemediationResult), remediation.html/.pdf, provenance.json
  work/        proxy-data manifest (it names training images and holds captions) and trial checkpoints
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from memaudit import __version__
from memaudit.atomic_files import write_atomic
from memaudit.checkpoint import Checkpoint, load_checkpoint
from memaudit.checkpoint.base_check import check_base
from memaudit.checkpoint.families import denoising_network
from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.finetune.mask import BlockMask
from memaudit.finetune.run import finetune
from memaudit.policy import effective_policy
from memaudit.publish import publish_remediation, publish_scan
from memaudit.remediate.proxy import memorization_set, write_proxy_manifest
from memaudit.remediate.records import mask_file_text, provenance, read_mask_file, trial_record
from memaudit.remediate.request import RemediateRequest
from memaudit.remediate.search import open_study, run_search, storage_for, training_config
from memaudit.remediate.select import choose
from memaudit.remediate.study import JOB_ATTRIBUTE, job_record, trial_context
from memaudit.results.remediation_result import PolicyReference, RemediationResult, TrialRecord
from memaudit.results.scan_result import RunRecord, ScanResult
from memaudit.scan import FinishedScan, ScanRequest, finished_scan
from memaudit.scan.progress import Progress, SilentProgress


def scan_model(
    request: RemediateRequest,
    model: Path,
    *,
    progress: Progress,
    checkpoint: Checkpoint | None = None,
    before: Path | None = None,
) -> FinishedScan:
    """A scan of ``model`` with the remediation's policy and data; ``before``: the result whose memorized
    prompts the re-trigger check tests (when the policy enables it). Its work folder stays until the
    caller's ``publishing()`` block ends."""
    scan_request = ScanRequest(
        train=request.train,
        holdout=request.holdout,
        policy=request.policy,
        model=model,
        config_dir=request.config_dir if model == request.model else None,
        allow_pickle=request.allow_pickle,
        device=request.device,
        feature_cache=request.feature_cache,
        before=before,
        data=request.data,
        base=request.base,  # the membership check's reference, when the policy calibrates against it
        adapters=request.adapters if model == request.model else (),  # a remediated model is whole
    )
    return finished_scan(scan_request, progress=progress, checkpoint=checkpoint)


def _scan_and_publish(
    request: RemediateRequest, model: Path, out: Path, *, progress: Progress, before: Path | None = None
) -> tuple[ScanResult, RunRecord]:
    finished = scan_model(request, model, progress=progress, before=before)
    with finished.publishing():
        publish_scan(finished.result, finished.run, out, sign_key=request.sign_key)
    return finished.result, finished.run


def remediate(
    request: RemediateRequest,
    progress: Progress | None = None,
    *,
    model_checkpoint: Checkpoint | None = None,
    before: tuple[ScanResult, RunRecord] | None = None,
) -> RemediationResult | None:
    """Remediate ``request.model`` (or ``model_checkpoint``, an already loaded stand-in for it).

    ``before``: a scan of that model already run with the request's policy and data, with the record
    of that run, reused rather than repeated (its reports are written to OUT/before all the same).
    Returns None, having written only before/, when the model needs no remediation: its scan passes
    (unless ``request.search_anyway``). A scan that could not judge the model is an error.
    """
    progress = progress or SilentProgress()
    out = Path(request.out)
    effective = effective_policy(request.policy, request.overrides)
    policy, settings = effective.policy, effective.policy.remediation
    train = ImageCaptionDataset(request.train, config=request.data)
    if before is not None:
        _check_reusable(before[0], effective.loaded.sha256, train.digest)
        publish_scan(*before, out / "before")
    else:
        if model_checkpoint is None:
            model_checkpoint = load_checkpoint(
                request.model,
                config_dir=request.config_dir,
                allow_pickle=request.allow_pickle,
                adapters=list(request.adapters),
            )
        check_base(request.base, model_checkpoint, allow_pickle=request.allow_pickle)  # before the scan
        finished = scan_model(request, request.model, progress=progress, checkpoint=model_checkpoint)
        with finished.publishing():
            publish_scan(finished.result, finished.run, out / "before")
        before = finished.result, finished.run
    before_scan = before[0]
    if before_scan.verdict == "error":
        raise MemauditError(f"the scan of {request.model} could not judge it ({before_scan.summary}); see {out}/before")
    if before_scan.verdict == "pass" and not request.search_anyway:
        return None
    base = load_checkpoint(request.base, allow_pickle=request.allow_pickle)
    trials: list[TrialRecord] = []
    chosen_number = None
    if request.mask is not None:
        space, mask = read_mask_file(request.mask, denoising_network(base.pipeline))
    else:
        rows = memorization_set(before_scan, train, settings=settings, seed=policy.sampling.seed)
        manifest = write_proxy_manifest(
            train, rows, settings=settings, seed=policy.sampling.seed, path=out / "work" / "proxy.jsonl"
        )
        job = job_record(request, rows, manifest)
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
        trials = [trial_record(t, front) for t in study.get_trials(deepcopy=False)]
    mask_path = write_atomic(out / "mask.json", mask_file_text(space, mask))
    config = training_config(policy, space, mask, steps=settings.retrain_steps)
    retrained = finetune(
        base,
        request.train,
        config,
        out=out / "remediated",
        device=request.device,
        data=request.data,
        on_step=_step_progress(progress.stage("retraining the chosen mask (steps)", settings.retrain_steps)),
    )
    # The after-scan re-triggers the prompts the before-scan found memorized: hidden, or gone?
    after_scan, _ = _scan_and_publish(
        request, retrained.model_dir, out / "after", progress=progress, before=out / "before" / "result.json"
    )
    result = RemediationResult(
        memaudit=__version__,
        policy=PolicyReference(name=policy.name, sha256=effective.loaded.sha256),
        space=space,
        blocks=list(mask.blocks),
        mask=mask.as_string(),
        chosen_trial=chosen_number,
        trials=trials,
        trainable_parameters=retrained.trainable,
        trainable_fraction=retrained.trainable_fraction,
        remediated_model=str(retrained.model_dir),
        before=before_scan,
        after=after_scan,
    )
    record = provenance(
        base_files=base.weight_files,
        train_digest=train.digest,
        policy_sha256=effective.loaded.sha256,
        config=config,
        model_files=after_scan.model.weight_files,
    )
    provenance_path = write_atomic(out / "provenance.json", json.dumps(record, indent=2) + "\n")
    publish_remediation(result, out, records=[provenance_path, mask_path], sign_key=request.sign_key)
    return result


def _check_reusable(before: ScanResult, policy_sha256: str, train_digest: str) -> None:
    """A reused scan must be of this policy and this training set, else before/after compare unlike things."""
    if before.policy.sha256 != policy_sha256 or before.train.digest != train_digest:
        raise MemauditError("the scan passed as 'before' used another policy or training set than this remediation")


def _step_progress(advance: Callable[[int], None]) -> Callable[[int, float], None]:
    """Turn the fine-tune's absolute step numbers (a resumed run starts past 0) into progress units."""
    done = 0

    def on_step(step: int, loss: float) -> None:
        nonlocal done
        advance(step - done)
        done = step

    return on_step
