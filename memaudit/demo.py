"""`memaudit demo`: the embedded end-to-end story on the models memaudit ships, with no downloads.

1. Load the shipped demo models (models/demo): a base trained on broad phantom chest X-rays, and a
   "hospital" model, the base fully fine-tuned on data in which 12 studies were planted for
   memorization (see memaudit/tiny/recipe.py and hospital.py). Save the base as an original-layout
   single file too and show both formats load to the same model.
2. Regenerate the hospital data from the recipe recorded in the hospital model; its digest must be
   the one the training recorded, so the ground truth (the planted ids) is the model's.
3. Scan the hospital model with the demo policy (it fails, naming planted studies only) and the base
   model (it never saw the hospital data: it passes). Reports are signed with the demo's own key and
   verified.
4. Remediate the hospital model (MemControl search from the base, retrain the chosen mask, re-scan).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from memaudit.attest import generate_keypair, sign_scan, verify_attestation
from memaudit.attest.keys import PRIVATE_NAME, PUBLIC_NAME
from memaudit.attest.sign import ATTESTATION_NAME
from memaudit.checkpoint import Checkpoint, CheckpointSummary, load_checkpoint, summarize
from memaudit.paths import POLICIES_DIR
from memaudit.policy import LoadedPolicy, load_policy
from memaudit.remediate.run import RemediateRequest, RemediationResult, remediate
from memaudit.render.outputs import SIGNED_REPORTS, write_scan_outputs
from memaudit.scan import ScanRequest, ScanResult, timed_scan
from memaudit.scan.progress import Progress
from memaudit.scan.result import RunRecord
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model
from memaudit.tiny.pipeline import save_single_file_twin

DEMO_POLICY = POLICIES_DIR / "demo.yaml"


@dataclass
class DemoResult:
    base: CheckpointSummary
    single_file: CheckpointSummary
    policies: list[LoadedPolicy]
    planted_ids: list[str]
    planted_captions: list[str]
    hospital_scan: ScanResult
    base_scan: ScanResult
    attestations_verify: bool
    remediation: RemediationResult
    seconds: dict[str, float]

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
            and self.attestations_verify
            and self.remediation.before.verdict == "fail"
            and self.remediation.after.verdict == "pass"
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
        base, hospital = load_checkpoint(models / "base"), load_checkpoint(models / "hospital")
        weights, config = save_single_file_twin(
            base.pipeline, out_dir / "base-single-file" / "base.safetensors", out_dir / "base-single-file" / "config"
        )
        single_file = summarize(load_checkpoint(weights, config_dir=config))
        policies = [load_policy(path) for path in sorted(POLICIES_DIR.glob("*.yaml"))]
    with clock.time("regenerate the hospital data and check its digest"):
        data = data_for_model(models / "hospital", out_dir / "data")

    private_key, public_key = _demo_keys(out_dir / "keys")
    scans, runs, verified = {}, {}, {}
    for name, checkpoint in (("hospital", hospital), ("base", base)):
        with clock.time(f"scan, report and sign the {name} model"):
            scans[name], runs[name], verified[name] = _scan_and_sign(
                checkpoint, data, out_dir, name, private_key, public_key, progress
            )
    with clock.time("remediate the hospital model (search, retrain, re-scan)"):
        remediation = remediate(
            RemediateRequest(
                model=models / "hospital",
                base=models / "base",
                train=data.train,
                holdout=data.holdout,
                policy=DEMO_POLICY,
                out=out_dir / "remediate",
                feature_cache=out_dir / "feature-cache",
                sign_key=private_key,
            ),
            progress,
            model_checkpoint=hospital,
            before=(scans["hospital"], runs["hospital"]),
        )
    return DemoResult(
        base=summarize(base),
        single_file=single_file,
        policies=policies,
        planted_ids=list(data.planted_ids),
        planted_captions=list(data.planted_captions),
        hospital_scan=scans["hospital"],
        base_scan=scans["base"],
        attestations_verify=all(verified.values()),
        remediation=remediation,
        seconds=clock.seconds,
    )


def _scan_and_sign(
    checkpoint: Checkpoint, data, out_dir: Path, name: str, private_key: Path, public_key: Path, progress
) -> tuple[ScanResult, RunRecord, bool]:
    request = ScanRequest(
        train=data.train,
        holdout=data.holdout,
        policy=DEMO_POLICY,
        model=checkpoint.source,
        feature_cache=out_dir / "feature-cache",
    )
    result, run = timed_scan(request, progress=progress, checkpoint=checkpoint)
    reports = out_dir / f"scan-{name}"
    write_scan_outputs(result, reports, run)
    sign_scan(result, [reports / report for report in SIGNED_REPORTS], private_key, reports)
    verified = verify_attestation(reports / ATTESTATION_NAME, public_key, model=checkpoint.source).valid
    return result, run, verified


def _demo_keys(folder: Path) -> tuple[Path, Path]:
    """The demo's own signing key pair, made once (a real deployment keeps its key elsewhere)."""
    private, public = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    if private.is_file() and public.is_file():
        return private, public
    return generate_keypair(folder)
