"""`memaudit scan`: run the battery, write the reports (optionally signed), exit 0/1/2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from memaudit.cli.app import stderr, stdout
from memaudit.cli.options import ALLOW_PICKLE, CONFIG_DIR, require_signing_key
from memaudit.cli.progress import RichStages
from memaudit.errors import ExitCode
from memaudit.paths import REPORTS_DIR

EXIT_FOR_VERDICT = {"pass": ExitCode.OK, "fail": ExitCode.FINDING, "error": ExitCode.ERROR}
DEFAULT_CACHE = Path.home() / ".cache" / "memaudit" / "features"


def scan(
    model: Path | None = typer.Argument(None, metavar="[MODEL]", help="Diffusers folder or .safetensors file."),
    images: Path | None = typer.Option(None, "--images", help="Audit a folder of generated images instead of a model."),
    train: Path = typer.Option(..., "--train", help="Training set the model was fine-tuned on."),
    holdout: Path = typer.Option(..., "--holdout", help="Unseen images of the same kind, for calibration."),
    policy: str = typer.Option(..., "--policy", help="Policy YAML, or a shipped policy's name."),
    out: Path = typer.Option(REPORTS_DIR / "scan", "--out", help="Output folder."),
    config: Path | None = CONFIG_DIR,
    allow_pickle: bool = ALLOW_PICKLE,
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Override the policy's batch size."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the policy's seed."),
    feature_cache: Path = typer.Option(DEFAULT_CACHE, "--feature-cache", help="Feature cache folder."),
    sign_key: Path | None = typer.Option(None, "--sign-key", help="Ed25519 private key: write attestation.dsse.json."),
    include_evidence_images: bool = typer.Option(
        False,
        "--include-evidence-images",
        help="INTERNAL USE: put generated and training thumbnails of extracted images into the reports.",
    ),
) -> None:
    """Audit a model (or its synthetic images) for memorized training images against a policy."""
    from memaudit.attest import sign_scan
    from memaudit.errors import MemauditError
    from memaudit.render.outputs import SIGNED_REPORTS, write_scan_outputs
    from memaudit.scan import ScanRequest, timed_scan

    if (model is None) == (images is None):
        raise MemauditError("give a MODEL to scan, or --images DIR to audit generated images (not both)")
    require_signing_key(sign_key)
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
    )
    with RichStages() as stages:
        result, run = timed_scan(request, progress=stages)
    stage_seconds = {name: round(value, 3) for name, value in stages.timings.items()}
    run = run.model_copy(update={"stage_seconds": stage_seconds, "argv": sys.argv[1:]})
    write_scan_outputs(result, out, run)
    if sign_key is not None:
        sign_scan(result, [out / name for name in SIGNED_REPORTS], sign_key, out)
    stdout.print(result.summary, markup=False)
    for rule in result.rules:
        stdout.print(f"  [{rule.status:>5}] {rule.id}: {rule.metric} {rule.message}", markup=False)
    for name, check in result.checks.items():
        if check.status == "error":
            stderr.print(f"memaudit: check {name} could not run: {check.message}", markup=False)
    if include_evidence_images:
        stderr.print("memaudit: the reports contain training images (--include-evidence-images): internal use only")
    stdout.print(f"reports: {out}", markup=False)
    raise typer.Exit(EXIT_FOR_VERDICT[result.verdict])
