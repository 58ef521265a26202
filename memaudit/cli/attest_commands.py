"""`memaudit keygen` and `memaudit verify`."""

from __future__ import annotations

from pathlib import Path

import typer

from memaudit.cli.console import stderr, stdout
from memaudit.errors import ExitCode, MemauditError


def keygen(out: Path = typer.Option(..., "--out", help="Folder for the new key pair.")) -> None:
    """Create an Ed25519 signing key pair (private key 0600; never overwrites)."""
    from memaudit.attest import generate_keypair

    private, public = generate_keypair(out)
    stdout.print(f"private key: {private} (keep it secret)\npublic key:  {public} (give it to verifiers)", markup=False)


def verify(
    attestation: Path = typer.Argument(..., metavar="ATTESTATION", help="attestation.dsse.json"),
    key: Path = typer.Option(..., "--key", help="The signer's public key (PEM)."),
    model: Path | None = typer.Option(None, "--model", help="Checkpoint on disk that must still match."),
    reports: Path | None = typer.Option(None, "--reports", help="Folder of the signed reports (default: beside it)."),
    config: Path | None = typer.Option(
        None, "--config", help="A single-file MODEL's config folder, whose files must still match too."
    ),
    adapter: list[Path] | None = typer.Option(
        None, "--adapter", help="With --model: each LoRA file the scan fused into it, in the scan's order."
    ),
) -> None:
    """Check the signature and every subject's sha256; exit 0 valid, 1 invalid."""
    from memaudit.attest import verify_attestation

    if adapter and model is None:
        raise MemauditError("--adapter is checked with the model it was fused into: pass --model too")
    report = verify_attestation(attestation, key, model=model, reports=reports, config=config, adapters=adapter)
    if report.valid:
        verdict = report.statement["predicate"]["verdict"] if report.statement else "?"
        stdout.print(
            f"valid: signature and {len(report.checked)} subject digests match (scan verdict: {verdict})", markup=False
        )
        if model is None:
            stdout.print("note: checkpoint files were not checked; pass --model to check them", markup=False)
        return
    for problem in report.problems:
        stderr.print(f"invalid: {problem}", markup=False)
    raise typer.Exit(ExitCode.FINDING)
