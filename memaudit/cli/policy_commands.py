"""`memaudit policy validate FILE`, `memaudit policy schema` and `memaudit policy init`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from memaudit.cli.console import stderr, stdout
from memaudit.cli.options import COLUMNS, PATIENT_FROM_PATH, manifest_columns

app = typer.Typer(help="Validate policies and export their JSON Schema.", no_args_is_help=True)


@app.command("validate")
def validate(
    policy: Path = typer.Argument(..., metavar="POLICY", help="Policy YAML file, or a shipped policy's name."),
) -> None:
    """Check a policy file; exit 2 with every problem named if it is invalid."""
    from memaudit.policy import METRICS, load_policy

    loaded = load_policy(policy)
    stdout.print(f"{loaded.path}: valid policy '{loaded.policy.name}' (sha256 {loaded.sha256})", markup=False)
    for rule_id, rule in loaded.policy.rules.items():
        comparison = "<=" if rule.direction == "at_most" else ">="
        spec = METRICS[rule.metric]
        stdout.print(
            f"  {rule_id}: {rule.metric} {comparison} {rule.threshold:g} -> {rule.severity}  ({spec.description})",
            markup=False,
        )


@app.command("schema")
def schema(out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout.")) -> None:
    """Print the policy JSON Schema."""
    from memaudit.policy import policy_json_schema

    text = json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@app.command("init")
def init(
    holdout: Path = typer.Option(..., "--holdout", help="The holdout set the scans will calibrate on."),
    out: Path = typer.Option(..., "--out", help="The policy file to write (refused if it exists)."),
    start: str = typer.Option("hospital-release", "--from", help="The shipped policy (or policy file) to start from."),
    name: str | None = typer.Option(None, "--name", help="The new policy's name (default: <from>-<holdout folder>)."),
    columns: str | None = COLUMNS,
    patient_from_path: str | None = PATIENT_FROM_PATH,
    hours: float | None = typer.Option(
        None,
        "--hours",
        min=1e-6,
        help="Fit the sample sizes so that a scan of --model on --device takes at most this.",
    ),
    model: Path | None = typer.Option(None, "--model", help="With --hours: the model whose scan is planned."),
    train_set: Path | None = typer.Option(None, "--train", help="With --hours: the training set the scan reads."),
    device: str = typer.Option("cpu", "--device", help="With --hours: where the scan will run (timed there)."),
) -> None:
    """Write a commented policy from a shipped one, its quantiles widened just enough for the holdout
    (and, with --hours, its sample sizes cut to what a scan on the device fits in that time)."""
    from memaudit.data import ImageCaptionDataset
    from memaudit.errors import MemauditError
    from memaudit.policy import load_policy
    from memaudit.policy.holdout_needs import holdout_counts
    from memaudit.policy.initial import initial_policy

    if out.exists():
        raise MemauditError(f"--out {out}: the file exists; give a new path")
    if hours is None and (model is not None or train_set is not None):
        raise MemauditError("--model and --train are read to fit the budgets: give --hours too")
    if hours is not None and (model is None or train_set is None):
        raise MemauditError("--hours fits the budgets to a planned scan: give --model and --train too")
    if hours is not None:
        from memaudit.scan.preflight import check_device

        check_device(device)
    base = load_policy(start)
    data = manifest_columns(columns, patient_from_path)
    holdout_set = ImageCaptionDataset(holdout, config=data)
    name = name or f"{base.policy.name}-{holdout.stem if holdout.is_file() else holdout.name}"
    written = initial_policy(base, holdout_counts(holdout_set), name=name, source=str(holdout))
    if hours is not None:
        from memaudit.cli.progress import RichStages
        from memaudit.scan import ScanRequest
        from memaudit.scan.budget import fit_initial_policy

        request = ScanRequest(train=train_set, holdout=holdout, policy=out, model=model, device=device, data=data)
        with RichStages() as stages:
            written = fit_initial_policy(written, request, hours=hours, progress=stages)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(written.text, encoding="utf-8")
    stdout.print(f"{out}: policy '{name}' from '{base.policy.name}'", markup=False)
    for line in written.changes:
        stdout.print(f"  changed {line}", markup=False)
    for line in written.unmet:
        stderr.print(f"  not met: {line}", markup=False)
