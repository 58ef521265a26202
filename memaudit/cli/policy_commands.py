"""`memaudit policy validate FILE` and `memaudit policy schema`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from memaudit.cli.console import stdout

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
