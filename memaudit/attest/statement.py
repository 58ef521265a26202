"""The in-toto Statement v1 that memaudit signs: subjects with sha256, and the scan's verdict as predicate."""

from __future__ import annotations

from pathlib import Path

from memaudit.checkpoint.file_set import CONFIG_PREFIX
from memaudit.checkpoint.files import AdapterFile, WeightFile, sha256_file
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import ScanResult

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:memaudit:predicate:scan:v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MODEL_PREFIX = "model/"
REPORT_PREFIX = "report/"
ADAPTER_PREFIX = "adapter/"


def subject(name: str, digest: str) -> dict:
    return {"name": name, "digest": {"sha256": digest}}


def model_subjects(
    weights: list[WeightFile], configs: list[WeightFile], adapters: list[AdapterFile] | None = None
) -> list[dict]:
    """``model/<path>`` for every weight and config file of the checkpoint; a single file's --config folder
    files keep their ``config/<path>`` names; each fused LoRA file is ``adapter/<index>/<file name>``."""
    files = [
        subject(file.path if file.path.startswith(CONFIG_PREFIX) else MODEL_PREFIX + file.path, file.sha256)
        for file in [*weights, *configs]
    ]
    return files + [
        subject(f"{ADAPTER_PREFIX}{index}/{Path(adapter.path).name}", adapter.sha256)
        for index, adapter in enumerate(adapters or [])
    ]


def scan_statement(result: ScanResult, report_files: list[Path]) -> dict:
    """Subjects: every checkpoint file that changes behaviour (``model/<path>``: weights, configs, tokenizer;
    digests from the scan) and every report file (``report/<name>``, hashed now); predicate: verdict, the
    checkpoint digest, policy digest and the rule summary."""
    subjects = []
    if result.model is not None:
        subjects += model_subjects(result.model.weight_files, result.model.config_files, result.model.adapters)
    subjects += [subject(REPORT_PREFIX + path.name, sha256_file(path)) for path in report_files]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verdict": result.verdict,
            "summary": result.summary,
            "mode": result.mode,
            "checkpoint_digest": result.model.digest if result.model is not None else None,
            "adapters": [
                {"file": Path(a.path).name, "sha256": a.sha256, "scale": a.scale}
                for a in (result.model.adapters if result.model is not None else [])
            ],
            "memaudit_version": result.environment.memaudit,
            "policy": {"name": result.policy.name, "sha256": result.policy.sha256},
            "train_digest": result.train.digest,
            "holdout_digest": result.holdout.digest,
            "rules": [
                {
                    "id": r.id,
                    "metric": r.metric,
                    "status": r.status,
                    "value": r.value,
                    "threshold": r.threshold,
                    "direction": r.direction,
                }
                for r in result.rules
            ],
        },
    }


REMEDIATION_PREDICATE_TYPE = "urn:memaudit:predicate:remediation:v1"


def remediation_statement(result: RemediationResult, report_files: list[Path]) -> dict:
    """Subjects: the remediated model's weight files and the remediation records; predicate: the choice
    and the before/after verdicts."""
    model = result.after.model
    return {
        "_type": STATEMENT_TYPE,
        "subject": (model_subjects(model.weight_files, model.config_files) if model else [])
        + [subject(REPORT_PREFIX + path.name, sha256_file(path)) for path in report_files],
        "predicateType": REMEDIATION_PREDICATE_TYPE,
        "predicate": {
            "policy": result.policy.model_dump(),
            "space": result.space,
            "mask": result.mask,
            "trainable_parameters": result.trainable_parameters,
            "verdict": {"before": result.before.verdict, "after": result.after.verdict},
            "memaudit_version": result.memaudit,
        },
    }
