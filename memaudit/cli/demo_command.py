"""`memaudit demo`: run the embedded demo and tell its story."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.app import stdout
from memaudit.cli.progress import RichStages
from memaudit.errors import ExitCode
from memaudit.paths import REPORTS_DIR


def demo(out: Path = typer.Option(REPORTS_DIR / "demo", "--out", help="Where the demo writes its files.")) -> None:
    """Build tiny models, scan a memorizing one (fails) and a clean one (passes); exit 0 if that holds."""
    from memaudit.demo import run_demo

    with RichStages() as stages:
        result = run_demo(out, progress=stages)
    say = lambda text: stdout.print(text, markup=False)  # noqa: E731
    unet = next(c for c in result.folder.components if c.name == "unet")
    say(
        f"1. tiny model: {unet.parameters:,} UNet parameters, {len(result.folder.unet_transformer_blocks)} "
        f"transformer blocks, {result.folder.image_size}px images"
    )
    say(
        f"   saved as a diffusers folder ({result.folder.source}) and a single file "
        f"(sha256 {result.single_file.weight_files[0].sha256[:16]}...); both load to the same model: "
        f"{'yes' if result.formats_agree else 'NO'}"
    )
    say(f"   shipped policies valid: {', '.join(p.policy.name for p in result.policies)}")
    say(
        f"2. planted data: {len(result.planted_ids)} training images memorized on purpose: "
        f"{', '.join(result.planted_ids)}"
    )
    for label, scan in (("memorizing model", result.memorizer_scan), ("clean tiny model", result.clean_scan)):
        extraction = scan.checks["extraction"].extraction
        extracted = ", ".join(extraction.extracted_train_ids) if extraction else "-"
        say(f"3. scan of the {label}: {scan.summary}")
        say(
            f"   extracted training images: {extracted or 'none'}; "
            f"exit code a CI job would see: {1 if scan.verdict == 'fail' else 0 if scan.verdict == 'pass' else 2}"
        )
    say(
        f"4. reports: {out}/scan-memorizer/ and {out}/scan-tiny-model/ (report.html, report.pdf, result.json, "
        "junit.xml, model-card.md), signed: attestation.dsse.json; verified with the public key: "
        + ("yes" if result.attestations_verify else "NO")
    )
    remediation = result.remediation
    say(
        f"5. remediation ({out}/remediate/): before {remediation.before.verdict.upper()}, after "
        f"{remediation.after.verdict.upper()}; chosen {remediation.space} mask {remediation.mask.as_string()} from "
        f"{len(remediation.trials)} trials; report remediation.html/.pdf"
    )
    say("where the time went: " + ", ".join(f"{name} {value:.1f}s" for name, value in result.seconds.items()))
    say("demo story holds: " + ("yes" if result.story_holds else "NO"))
    if not result.story_holds:
        raise typer.Exit(ExitCode.FINDING)
