"""`memaudit demo`: the embedded end-to-end story, runnable on a fresh machine with no downloads.

1. Build a tiny SD-layout model from configs; save it as a diffusers folder and as an
   original-layout single file; load both through the safe loader and show they agree.
2. Write a small image-caption set in which some training images are planted for memorization.
3. Scan a closed-form model that memorizes exactly those images with the demo policy: it fails,
   naming the planted training ids. Scan the tiny random model from disk: it passes.
4. Both scans write HTML/PDF/JSON/JUnit reports, signed with the demo's own key, and verified.
5. Remediate the memorizer: search masks from the tiny base, retrain the choice, re-scan (passes).
Remediation joins the story when it lands.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from memaudit.attest import generate_keypair, sign_scan, verify_attestation
from memaudit.attest.keys import PRIVATE_NAME, PUBLIC_NAME
from memaudit.attest.sign import ATTESTATION_NAME
from memaudit.checkpoint import CheckpointSummary, load_checkpoint, summarize
from memaudit.paths import POLICIES_DIR
from memaudit.policy import LoadedPolicy, load_policy
from memaudit.remediate.run import RemediateRequest, RemediationResult, remediate
from memaudit.render.outputs import SIGNED_REPORTS, write_scan_outputs
from memaudit.scan import ScanRequest, ScanResult, run_scan
from memaudit.scan.progress import Progress
from memaudit.scan.result import RunRecord
from memaudit.tiny.memorizer import build_memorizer
from memaudit.tiny.pipeline import build_tiny_pipeline, save_diffusers_folder, save_single_file_twin


@dataclass
class DemoResult:
    folder: CheckpointSummary
    single_file: CheckpointSummary
    policies: list[LoadedPolicy]
    planted_ids: list[str]
    memorizer_scan: ScanResult
    clean_scan: ScanResult
    attestations_verify: bool
    remediation: RemediationResult
    seconds: dict[str, float]

    @property
    def formats_agree(self) -> bool:
        return self.folder.architecture() == self.single_file.architecture()

    @property
    def story_holds(self) -> bool:
        extracted = self.memorizer_scan.checks["extraction"].extraction
        return (
            self.formats_agree
            and self.memorizer_scan.verdict == "fail"
            and extracted is not None
            and extracted.extracted_train_ids == sorted(self.planted_ids)
            and self.clean_scan.verdict == "pass"
            and self.attestations_verify
            and self.remediation.before.verdict == "fail"
            and self.remediation.after.verdict == "pass"
        )


def run_demo(out_dir: Path, *, seed: int = 0, progress: Progress | None = None) -> DemoResult:
    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    pipeline = build_tiny_pipeline(seed=seed)
    folder = save_diffusers_folder(pipeline, out_dir / "tiny-model")
    weights, config = save_single_file_twin(pipeline, out_dir / "tiny-model.safetensors", out_dir / "tiny-config")
    summaries = summarize(load_checkpoint(folder)), summarize(load_checkpoint(weights, config_dir=config))
    policies = [load_policy(path) for path in sorted(POLICIES_DIR.glob("*.yaml"))]
    seconds["build, save and load the tiny model"] = time.perf_counter() - clock

    clock = time.perf_counter()
    memorizer, train, holdout, planted = build_memorizer(pipeline, out_dir / "data")
    seconds["write the planted data set"] = time.perf_counter() - clock

    private_key, public_key = _demo_keys(out_dir / "keys")
    scans, verified = {}, {}
    for name, request_model, checkpoint in (("memorizer", memorizer.source, memorizer), ("tiny-model", folder, None)):
        clock = time.perf_counter()
        request = ScanRequest(
            train=train,
            holdout=holdout,
            policy=POLICIES_DIR / "demo.yaml",
            model=request_model,
            feature_cache=out_dir / "feature-cache",
        )
        started = datetime.now(UTC).isoformat(timespec="seconds")
        result = run_scan(request, progress=progress, checkpoint=checkpoint)
        took = time.perf_counter() - clock
        run = RunRecord(
            started=started,
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=round(took, 3),
            platform=platform.platform(),
        )
        reports = out_dir / f"scan-{name}"
        write_scan_outputs(result, reports, run)
        sign_scan(result, [reports / report for report in SIGNED_REPORTS], private_key, reports)
        model_on_disk = folder if checkpoint is None else None
        verified[name] = verify_attestation(reports / ATTESTATION_NAME, public_key, model=model_on_disk).valid
        scans[name] = result
        seconds[f"scan, report and sign the {name}"] = time.perf_counter() - clock
    clock = time.perf_counter()
    remediation = remediate(
        RemediateRequest(
            model=memorizer.source,
            base=folder,
            train=train,
            holdout=holdout,
            policy=POLICIES_DIR / "demo.yaml",
            out=out_dir / "remediate",
            feature_cache=out_dir / "feature-cache",
            sign_key=private_key,
        ),
        progress,
        model_checkpoint=memorizer,
    )
    seconds["remediate the memorizer (search, retrain, re-scan)"] = time.perf_counter() - clock
    return DemoResult(
        folder=summaries[0],
        single_file=summaries[1],
        policies=policies,
        planted_ids=planted,
        memorizer_scan=scans["memorizer"],
        clean_scan=scans["tiny-model"],
        attestations_verify=all(verified.values()),
        remediation=remediation,
        seconds=seconds,
    )


def _demo_keys(folder: Path) -> tuple[Path, Path]:
    """The demo's own signing key pair, made once (a real deployment keeps its key elsewhere)."""
    private, public = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    if private.is_file() and public.is_file():
        return private, public
    return generate_keypair(folder)
