"""`memaudit demo`: the embedded end-to-end story on the models memaudit ships, with no downloads.

1. Load the shipped demo models (models/demo): a base trained on broad phantom chest X-rays, and a
   "hospital" model, the base fully fine-tuned on data in which 12 studies were planted for
   memorization (see memaudit/tiny/recipe.py and hospital.py). Save the base as an original-layout
   single file too and show both formats load to the same model.
2. Regenerate the hospital data from the recipe recorded in the hospital model; its digest must be
   the one the training recorded, so the ground truth (the planted ids) is the model's.
3. Gate both models with the demo policy, as `memaudit scan MODEL --remediate-on-fail --base BASE`
   does: the hospital model fails (naming planted studies only), so it is remediated (MemControl search
   from the base, the chosen mask retrained, re-scanned); the base never saw the hospital data, passes,
   and no search runs. Reports are signed with the demo's own key and verified.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from memaudit.attest import generate_keypair, verify_attestation
from memaudit.attest.keys import PRIVATE_NAME, PUBLIC_NAME
from memaudit.attest.sign import ATTESTATION_NAME
from memaudit.checkpoint import CheckpointSummary, load_checkpoint, summarize
from memaudit.checkpoint.saving import save_single_file_twin
from memaudit.paths import POLICIES_DIR
from memaudit.policy import LoadedPolicy, load_policy
from memaudit.remediate.gate import GateResult, gate
from memaudit.remediate.request import RemediateRequest
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import ScanResult
from memaudit.scan.progress import Progress
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

DEMO_POLICY = POLICIES_DIR / "demo.yaml"


@dataclass
class DemoResult:
    base: CheckpointSummary
    single_file: CheckpointSummary
    policies: list[LoadedPolicy]
    planted_ids: list[str]
    planted_captions: list[str]
    hospital_gate: GateResult
    base_gate: GateResult
    attestations_verify: bool
    seconds: dict[str, float]

    @property
    def hospital_scan(self) -> ScanResult:
        return self.hospital_gate.submitted

    @property
    def base_scan(self) -> ScanResult:
        return self.base_gate.submitted

    @property
    def remediation(self) -> RemediationResult | None:
        return self.hospital_gate.remediation

    @property
    def formats_agree(self) -> bool:
        return self.base.architecture() == self.single_file.architecture()

    @property
    def extracted_ids(self) -> list[str]:
        extraction = self.hospital_scan.checks["extraction"].extraction
        return extraction.extracted_train_ids if extraction else []

    @property
    def story_holds(self) -> bool:
        return (
            self.formats_agree
            and self.hospital_scan.verdict == "fail"
            and bool(self.extracted_ids)
            and set(self.extracted_ids) <= set(self.planted_ids)
            and self.base_scan.verdict == "pass"
            and self.base_gate.remediation is None
            and self.attestations_verify
            and self.remediation is not None
            and self.remediation.after.verdict == "pass"
            and self.hospital_gate.verdict == "pass"
        )


class _Clock:
    """Seconds per labelled stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, label: str):
        started = time.perf_counter()
        yield
        self.seconds[label] = time.perf_counter() - started


def run_demo(out_dir: Path, *, models: Path = DEMO_MODELS_DIR, progress: Progress | None = None) -> DemoResult:
    out_dir = Path(out_dir)
    clock = _Clock()
    with clock.time("load the shipped models, save and reload the base as a single file"):
        loaded = {name: load_checkpoint(models / name) for name in ("base", "hospital")}
        base = loaded["base"]
        weights, config = save_single_file_twin(
            base.pipeline, out_dir / "base-single-file" / "base.safetensors", out_dir / "base-single-file" / "config"
        )
        single_file = summarize(load_checkpoint(weights, config_dir=config))
        policies = [load_policy(path) for path in sorted(POLICIES_DIR.glob("*.yaml"))]
    with clock.time("regenerate the hospital data and check its digest"):
        data = data_for_model(models / "hospital", out_dir / "data")

    private_key, public_key = _demo_keys(out_dir / "keys")
    gates, verified = {}, []
    for name, label in (("hospital", "gate the hospital model: scan, remediate, re-scan"), ("base", "gate the base")):
        with clock.time(label):
            gates[name] = gate(
                RemediateRequest(
                    model=models / name,
                    base=models / "base",
                    train=data.train,
                    holdout=data.holdout,
                    policy=DEMO_POLICY,
                    out=out_dir / f"scan-{name}",
                    feature_cache=out_dir / "feature-cache",
                    sign_key=private_key,
                ),
                progress=progress,
                checkpoint=loaded[name],
            )
        reports = out_dir / f"scan-{name}"
        verified.append(verify_attestation(reports / ATTESTATION_NAME, public_key, model=models / name).valid)
    return DemoResult(
        base=summarize(base),
        single_file=single_file,
        policies=policies,
        planted_ids=list(data.planted_ids),
        planted_captions=list(data.planted_captions),
        hospital_gate=gates["hospital"],
        base_gate=gates["base"],
        attestations_verify=all(verified),
        seconds=clock.seconds,
    )


def _demo_keys(folder: Path) -> tuple[Path, Path]:
    """The demo's own signing key pair, made once (a real deployment keeps its key elsewhere)."""
    private, public = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    if private.is_file() and public.is_file():
        return private, public
    return generate_keypair(folder)
