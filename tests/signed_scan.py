"""A signed scan of a copy of the tiny model, shared by the report (render/) and attestation (attest/) tests."""

from __future__ import annotations

import shutil

import pytest

from memaudit.cli import run
from memaudit.tiny.memorizer import build_memorizer
from tests.scan.test_ground_truth import POLICY

SENTINEL = "SENTINEL7391 confidential caption"


@pytest.fixture(scope="session")
def signed_scan(tiny_pipeline, tiny_folder, tmp_path_factory):
    """(output folder, model copy, key folder) of `memaudit scan --sign-key` on a fresh model copy."""
    root = tmp_path_factory.mktemp("signed")
    model = shutil.copytree(tiny_folder, root / "model")
    _, train, holdout, _ = build_memorizer(tiny_pipeline, root / "data", caption_prefix=SENTINEL + " ")
    (root / "policy.yaml").write_text(POLICY)
    assert run(["keygen", "--out", str(root / "keys")]) == 0
    code = run(
        [
            "scan",
            str(model),
            "--train",
            str(train),
            "--holdout",
            str(holdout),
            "--policy",
            str(root / "policy.yaml"),
            "--out",
            str(root / "out"),
            "--feature-cache",
            str(root / "cache"),
            "--sign-key",
            str(root / "keys" / "memaudit-signing.key"),
        ]
    )
    assert code == 0
    return root / "out", model, root / "keys", (train, holdout, root / "policy.yaml")
