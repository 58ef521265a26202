"""`memaudit remediate` and `memaudit worker`."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stdout
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
from memaudit.errors import ExitCode
from memaudit.paths import REPORTS_DIR


def remediate(
    model: Path = typer.Argument(..., metavar="MODEL", help="The fine-tuned model that memorizes."),
    base: Path = typer.Option(
        ..., "--base", help="The base model it was fine-tuned from (MODEL itself when the fine-tune is --adapter)."
    ),
    adapter: list[Path] | None = ADAPTERS,
    adapter_scale: list[float] | None = ADAPTER_SCALES,
    train: Path = typer.Option(..., "--train", help="Training set."),
    holdout: Path = typer.Option(..., "--holdout", help="Holdout set."),
    columns: str | None = COLUMNS,
    patient_from_path: str | None = PATIENT_FROM_PATH,
    policy: str = typer.Option(..., "--policy", help="Policy YAML (its remediation: section sets the search)."),
    out: Path = typer.Option(REPORTS_DIR / "remediate", "--out", help="Output folder."),
    space: str | None = typer.Option(None, "--space", help="Comma-separated: svdiff,difffit,attention,lora."),
    trials: int | None = typer.Option(None, "--trials", min=1, help="Completed trials the study needs."),
    storage: str | None = typer.Option(None, "--storage", help="SQLAlchemy URL (default: SQLite in --out)."),
    study: str | None = typer.Option(None, "--study", help="Study name (workers join it by this name)."),
    mask: Path | None = typer.Option(
        None, "--mask", help="A mask.json from an earlier run, or a preset (memcontrol-sd15): skip the search."
    ),
    device: str = typer.Option("cpu", "--device"),
    feature_cache: Path = typer.Option(DEFAULT_CACHE, "--feature-cache"),
    config: Path | None = CONFIG_DIR,
    allow_pickle: bool = ALLOW_PICKLE,
    heartbeat: int = typer.Option(30, "--heartbeat", min=1, help="Seconds between trial heartbeats."),
    sign_key: Path | None = typer.Option(None, "--sign-key", help="Ed25519 private key: sign the results."),
    search_anyway: bool = typer.Option(
        False, "--search-anyway", help="Remediate even when the model already passes the policy."
    ),
) -> None:
    """MemControl: search which blocks may train, retrain the best mask, re-scan; exit 0 if the result passes.

    A model whose scan passes the policy needs no remediation: it says so and stops (exit 0).
    """
    from memaudit.cli.progress import RichStages
    from memaudit.remediate.request import RemediateRequest
    from memaudit.remediate.run import remediate as run_remediation
    from memaudit.scan.preflight import check_run_options

    data = manifest_columns(columns, patient_from_path)
    check_run_options(out=out, sign_key=sign_key, device=device, feature_cache=feature_cache)
    adapters = tuple(adapter_pairs(adapter, adapter_scale))
    request = RemediateRequest(
        adapters=adapters,
        data=data,
        model=model,
        base=base,
        train=train,
        holdout=holdout,
        policy=policy,
        out=out,
        spaces=tuple(s.strip() for s in space.split(",")) if space else None,
        trials=trials,
        storage=storage,
        study=study,
        mask=mask,
        device=device,
        feature_cache=feature_cache,
        config_dir=config,
        allow_pickle=allow_pickle,
        heartbeat=heartbeat,
        sign_key=sign_key,
        search_anyway=search_anyway,
    )
    with RichStages() as stages:
        result = run_remediation(request, progress=stages)
    if result is None:
        stdout.print(
            f"{model} passes policy {policy}: nothing to remediate (its scan is in {out / 'before'}; "
            "--search-anyway remediates all the same)",
            markup=False,
        )
        raise typer.Exit(ExitCode.OK)
    print_remediation(result, out)
    raise typer.Exit(EXIT_FOR_VERDICT[result.after.verdict])


def print_remediation(result, out: Path) -> None:
    stdout.print(f"before: {result.before.summary}", markup=False)
    stdout.print(f"after:  {result.after.summary}", markup=False)
    stdout.print(
        f"chosen: {result.space} mask {result.mask}"
        + (f" (trial {result.chosen_trial} of {len(result.trials)})" if result.searched else " (given)"),
        markup=False,
    )
    stdout.print(f"remediated model: {result.remediated_model}; records: {out / 'remediation.json'}", markup=False)


def worker(
    storage: str = typer.Option(..., "--storage", help="The study's SQLAlchemy URL."),
    study: str = typer.Option(..., "--study", help="The study name."),
    wait: int = typer.Option(0, "--wait", min=0, help="Seconds to wait for remediate to create the study."),
    heartbeat: int = typer.Option(30, "--heartbeat", min=1, help="Seconds between trial heartbeats."),
) -> None:
    """Join a remediation study and run trials until it has enough."""
    from memaudit.remediate.study import join_study

    ran = join_study(storage, study, heartbeat=heartbeat, wait=wait)
    stdout.print(f"worker finished: {ran} trial(s) run here", markup=False)
