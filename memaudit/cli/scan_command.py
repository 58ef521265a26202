"""`memaudit scan`: run the battery, write the reports (optionally signed), exit 0/1/2; with
--remediate-on-fail, the whole gate: a failing model is remediated and the release judged by the result."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from memaudit.cli.console import stderr, stdout
from memaudit.cli.options import (
    ADAPTER_SCALES,
    ADAPTERS,
    ALLOW_PICKLE,
    COLUMNS,
    CONFIG_DIR,
    DEFAULT_CACHE,
    EXIT_FOR_VERDICT,
    PATIENT_FROM_PATH,
    adapter_pairs,
    manifest_columns,
)
from memaudit.cli.progress import RichStages
from memaudit.errors import MemauditError
from memaudit.paths import REPORTS_DIR


def scan(
    model: Path | None = typer.Argument(None, metavar="[MODEL]", help="Diffusers folder or .safetensors file."),
    images: Path | None = typer.Option(None, "--images", help="Audit a folder of generated images instead of a model."),
    train: Path = typer.Option(..., "--train", help="Training set the model was fine-tuned on."),
    holdout: Path = typer.Option(..., "--holdout", help="Unseen images of the same kind, for calibration."),
    policy: str = typer.Option(..., "--policy", help="Policy YAML, or a shipped policy's name."),
    columns: str | None = COLUMNS,
    patient_from_path: str | None = PATIENT_FROM_PATH,
    out: Path = typer.Option(REPORTS_DIR / "scan", "--out", help="Output folder."),
    config: Path | None = CONFIG_DIR,
    adapter: list[Path] | None = ADAPTERS,
    adapter_scale: list[float] | None = ADAPTER_SCALES,
    allow_pickle: bool = ALLOW_PICKLE,
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Override the policy's batch size."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the policy's seed."),
    feature_cache: Path = typer.Option(
        DEFAULT_CACHE, "--feature-cache", help="Cache folder: image features and comparison pixels, keyed by content."
    ),
    sign_key: Path | None = typer.Option(None, "--sign-key", help="Ed25519 private key: write attestation.dsse.json."),
    include_evidence_images: bool = typer.Option(
        False,
        "--include-evidence-images",
        help="INTERNAL USE: put generated and training thumbnails of extracted images into the reports.",
    ),
    remediate_on_fail: bool = typer.Option(
        False,
        "--remediate-on-fail",
        help="The gate: if MODEL fails, remediate it from --base (MemControl) into OUT/remediation, re-scan, "
        "and exit with the remediated model's verdict.",
    ),
    base: Path | None = typer.Option(
        None,
        "--base",
        help="The model MODEL was fine-tuned from: the membership check's reference (policy "
        "checks.membership.reference: base), and with --remediate-on-fail the model to remediate from.",
    ),
    before: Path | None = typer.Option(
        None, "--before", help="A previous scan's result.json: re-trigger its extracted and flagged prompts."
    ),
    plan: bool = typer.Option(
        False, "--plan", help="Print what the scan will cost (counts, disk, memory, time from one batch); scan nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="With --plan: print the plan as JSON."),
) -> None:
    """Audit a model (or its synthetic images) for memorized training images against a policy."""
    if (model is None) == (images is None):
        raise MemauditError("give a MODEL to scan, or --images DIR to audit generated images (not both)")
    from memaudit.scan.preflight import check_run_options

    data = manifest_columns(columns, patient_from_path)
    check_run_options(out=out, sign_key=sign_key, device=device, feature_cache=feature_cache)
    from memaudit.scan.shard import join_launch

    shard, device = join_launch(device)  # under torchrun: this rank's part and device
    if shard.world > 1 and (plan or remediate_on_fail):
        raise MemauditError("--plan and --remediate-on-fail run in one process, not under torchrun")
    if as_json and not plan:
        raise MemauditError("--json prints a plan: give it with --plan (a scan writes result.json under --out)")
    if plan and remediate_on_fail:
        raise MemauditError("--plan plans a scan; it does not plan --remediate-on-fail")
    if before is not None:
        from memaudit.results.reading import read_scan_result

        read_scan_result(before)  # refused now, naming the file, rather than after the model work
    if images is not None and base is not None:
        raise MemauditError("--base names a model's base; --images audits images, not a model")
    adapters = adapter_pairs(adapter, adapter_scale)
    if adapters and images is not None:
        raise MemauditError("--adapter is fused into a MODEL; --images audits images, not a model")
    if adapters and remediate_on_fail and base is None:
        base = model  # the fine-tune is MODEL + its adapters: the remediation retrains from MODEL
    if remediate_on_fail:
        from memaudit.remediate.request import RemediateRequest

        _check_gate_options(
            base=base,
            images=images,
            seed=seed,
            batch_size=batch_size,
            include_evidence_images=include_evidence_images,
            before=before,
        )
        _gate(
            RemediateRequest(
                model=model,
                base=base,
                train=train,
                holdout=holdout,
                policy=policy,
                out=out,
                sign_key=sign_key,
                device=device,
                feature_cache=feature_cache,
                config_dir=config,
                allow_pickle=allow_pickle,
                data=data,
                adapters=tuple(adapters),
            )
        )
    from memaudit.publish import publish_scan
    from memaudit.scan import ScanRequest, finished_scan

    request = ScanRequest(
        train=train,
        holdout=holdout,
        policy=policy,
        model=model,
        images=images,
        config_dir=config,
        allow_pickle=allow_pickle,
        seed=seed,
        batch_size=batch_size,
        device=device,
        feature_cache=feature_cache,
        include_evidence_images=include_evidence_images,
        before=before,
        base=base,
        data=data,
        adapters=tuple(adapters),
    )
    if plan:
        from memaudit.cli.plan_output import print_plan, process_start_time
        from memaudit.scan import plan_request

        with RichStages() as stages:
            planned = plan_request(request, progress=stages, process_started=process_start_time())
        print_plan(planned, as_json=as_json)
        raise typer.Exit(0)
    if shard.rank != 0:  # rank 0 judges and writes; the others exit with the same verdict
        finished = finished_scan(request)
        with finished.publishing():
            pass
        raise typer.Exit(EXIT_FOR_VERDICT[finished.result.verdict])
    with RichStages() as stages:
        finished = finished_scan(request, progress=stages)
    result = finished.result
    stage_seconds = {name: round(value, 3) for name, value in stages.timings.items()}
    run = finished.run.model_copy(update={"stage_seconds": stage_seconds, "argv": sys.argv[1:]})
    with finished.publishing():
        published = publish_scan(result, run, out, sign_key=sign_key)
    _print_scan(result)
    _name_others(published)
    if include_evidence_images:
        stderr.print("memaudit: the reports contain training images (--include-evidence-images): internal use only")
    stdout.print(f"reports: {out}", markup=False)
    raise typer.Exit(EXIT_FOR_VERDICT[result.verdict])


def _print_scan(result) -> None:
    stdout.print(result.summary, markup=False)
    for rule in result.rules:
        stdout.print(f"  [{rule.shown_status:>5}] {rule.id}: {rule.metric} {rule.message}", markup=False)
    for name, check in result.checks.items():
        if check.status == "error":
            stderr.print(f"memaudit: check {name} could not run: {check.message}", markup=False)


def _name_others(published) -> None:
    if published.others:
        names = ", ".join(path.name + ("/" if path.is_dir() else "") for path in published.others)
        folder = published.folder
        stderr.print(f"memaudit: note: {folder} also holds what this run did not write: {names}", markup=False)


def _check_gate_options(*, base, images, seed, batch_size, include_evidence_images, before=None) -> None:
    if base is None:
        raise MemauditError("--remediate-on-fail needs --base: the model MODEL was fine-tuned from")
    refused = {"--images": images is not None, "--seed": seed is not None, "--batch-size": batch_size is not None}
    refused["--include-evidence-images"] = include_evidence_images
    refused["--before"] = before is not None  # the gate re-triggers against its own before-scan
    given = [name for name, present in refused.items() if present]
    if given:
        raise MemauditError(
            f"--remediate-on-fail scans a MODEL with the policy as written; it does not take {', '.join(given)}"
        )


def _gate(request) -> None:
    from memaudit.cli.remediate_commands import print_remediation
    from memaudit.remediate.gate import REMEDIATION_FOLDER, gate

    model, out = request.model, request.out
    with RichStages() as stages:
        outcome = gate(request, progress=stages)
    _print_scan(outcome.submitted)
    if outcome.remediation is not None:
        folder = out / REMEDIATION_FOLDER
        stdout.print(f"submitted model {model} FAILED the policy; remediated into {folder}:", markup=False)
        print_remediation(outcome.remediation, folder)
        remediated = outcome.remediation.remediated_model
        stdout.print(
            f"release verdict: {outcome.verdict.upper()} for the remediated model {remediated} (not for {model})",
            markup=False,
        )
    _name_others(outcome.published)
    stdout.print(f"reports: {out}", markup=False)
    raise typer.Exit(EXIT_FOR_VERDICT[outcome.verdict])
