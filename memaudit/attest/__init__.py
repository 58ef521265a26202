"""Offline attestation: Ed25519 keys, in-toto Statements in DSSE envelopes, and their verification."""

from memaudit.attest.keys import generate_keypair, load_private_key, load_public_key
from memaudit.attest.sign import sign_scan
from memaudit.attest.verify import VerificationReport, verify_attestation

__all__ = [
    "VerificationReport",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "sign_scan",
    "verify_attestation",
]
