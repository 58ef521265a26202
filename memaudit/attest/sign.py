"""Sign statements: a DSSE envelope (securesystemslib) over an in-toto Statement, Ed25519, offline."""

from __future__ import annotations

import json
from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.attest.keys import load_private_key
from memaudit.attest.statement import PAYLOAD_TYPE, scan_statement
from memaudit.results.scan_result import ScanResult

ATTESTATION_NAME = "attestation.dsse.json"


def sign_statement(statement: dict, private_key_path: Path, path: Path) -> Path:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner(load_private_key(private_key_path))
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(signer)
    return write_atomic(Path(path), json.dumps(envelope.to_dict(), indent=2) + "\n")


def sign_scan(result: ScanResult, report_files: list[Path], *, private_key_path: Path, out: Path) -> Path:
    return sign_statement(scan_statement(result, report_files), private_key_path, Path(out) / ATTESTATION_NAME)
