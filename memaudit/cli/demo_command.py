"""`memaudit demo`: run the embedded demo and tell its story."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stdout
from memaudit.cli.options import EXIT_FOR_VERDICT
from memaudit.cli.progress import RichStages
from memaudit.errors import ExitCode
from memaudit.paths import MODELS_DIR, REPORTS_DIR


def demo(
    out: Path = typer.Option(REPORTS_DIR / "demo", "--out", help="Where the demo writes its files."),
    models: Path = typer.Option(
        MODELS_DIR / "demo", "--models", help="A folder with base/ and hospital/ (default: the shipped ones)."
    ),
) -> None:
    """Gate the shipped hospital model (fails, remediated, passes) and base (passes); exit 0 if that holds."""
    from memaudit.demo import run_demo

    with RichStages() as stages:
        result = run_demo(out, models=models, progress=stages)
    say = lambda text: stdout.print(text, markup=False)  # noqa: E731
    unet = next(c for c in result.base.components if c.name == "unet")
    say(
        f"1. shipped models: base and hospital, {unet.parameters:,} UNet parameters, "
        f"{len(result.base.unet_transformer_blocks)} transformer blocks, {result.base.image_size}px images; "
        f"the base saved as a single file loads to the same model: {'yes' if result.formats_agree else 'NO'}"
    )
    say(f"   shipped policies valid: {', '.join(p.policy.name for p in result.policies)}")
    say(
        f"2. hospital data regenerated from the model's recipe (digest checked): "
        f"{len(result.planted_captions)} planted studies ({len(result.planted_ids)} rows) among "
        f"{result.hospital_scan.train.items} training rows, {result.hospital_scan.holdout.items} holdout studies"
    )
    for label, outcome in (("hospital model", result.hospital_gate), ("base model", result.base_gate)):
        scan = outcome.submitted
        extraction = scan.checks["extraction"].extraction
        extracted = ", ".join(extraction.extracted_train_ids) if extraction else "-"
        say(f"3. gate of the {label}: {scan.summary}")
        say(f"   extracted training images: {extracted or 'none'}")
        if outcome.remediation is None:
            say("   no remediation needed: no search ran")
        else:
            remediation = outcome.remediation
            say(
                f"   remediated ({out}/scan-hospital/remediation/): chosen {remediation.space} mask "
                f"{remediation.mask} from {len(remediation.trials)} trials, re-scan {remediation.after.verdict.upper()}"
                "; report remediation.html/.pdf"
            )
            for name in ("extraction.extracted_count", "nearest_neighbour.amd", "fid.fid"):
                values = [_metric(scan, name) for scan in (remediation.before, remediation.after)]
                say(f"   {name}: before {values[0]:.4g}, after {values[1]:.4g}")
        say(
            f"   exit code of `memaudit scan MODEL --remediate-on-fail` a CI job would see: "
            f"{int(EXIT_FOR_VERDICT[outcome.verdict])}"
        )
    planted = set(result.planted_ids)
    say(
        f"   extracted images that are planted studies: {sum(i in planted for i in result.extracted_ids)} of "
        f"{len(result.extracted_ids)}"
    )
    say(
        f"4. reports: {out}/scan-hospital/ and {out}/scan-base/ (report.html, report.pdf, result.json, "
        "junit.xml, model-card.md), signed: attestation.dsse.json; verified with the public key: "
        + ("yes" if result.attestations_verify else "NO")
    )
    say("where the time went: " + ", ".join(f"{name} {value:.0f}s" for name, value in result.seconds.items()))
    say(f"total: {sum(result.seconds.values()):.0f}s")
    say("demo story holds: " + ("yes" if result.story_holds else "NO"))
    if not result.story_holds:
        raise typer.Exit(ExitCode.FINDING)


def _metric(scan, name: str) -> float:
    check = scan.checks[name.split(".")[0]]
    return check.metrics.get(name, float("nan"))
