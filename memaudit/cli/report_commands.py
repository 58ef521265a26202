"""`memaudit report render|schema`: views of an existing result.json, without recomputing."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from memaudit.cli.console import stdout

app = typer.Typer(help="Re-render reports and export the result schema.", no_args_is_help=True)


@app.command("render")
def render(
    result: Path = typer.Argument(..., metavar="RESULT", help="A result.json written by memaudit scan."),
    out: Path = typer.Option(..., "--out", help="Folder for report.html, report.pdf, junit.xml, model-card.md."),
) -> None:
    """Render HTML, PDF, JUnit and the model-card snippet from result.json (and run.json beside it)."""
    from memaudit.render.outputs import write_views
    from memaudit.results.reading import read_run_record, read_scan_result

    parsed = read_scan_result(result)
    run_path = result.parent / "run.json"
    run = read_run_record(run_path) if run_path.is_file() else None
    for path in write_views(parsed, out, run):
        stdout.print(f"wrote {path}", markup=False)


@app.command("schema")
def schema(
    kind: str = typer.Option("scan", "--result", help="scan (result.json) or remediation (remediation.json)."),
) -> None:
    """Print the JSON Schema of result.json (or of remediation.json)."""
    from memaudit.errors import MemauditError
    from memaudit.results.remediation_result import RemediationResult
    from memaudit.results.scan_result import ScanResult

    models = {"scan": ScanResult, "remediation": RemediationResult}
    if kind not in models:
        raise MemauditError(f"--result {kind}: expected one of {', '.join(models)}")
    document = models[kind].model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    typer.echo(json.dumps(document, indent=2, sort_keys=True))
