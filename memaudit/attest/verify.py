"""Verify an attestation: the signature, then every subject's sha256 against the files on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from memaudit.attest.keys import load_public_key
from memaudit.attest.statement import ADAPTER_PREFIX, MODEL_PREFIX, PAYLOAD_TYPE, REPORT_PREFIX, STATEMENT_TYPE
from memaudit.checkpoint.file_set import CONFIG_PREFIX, INDEX, component_folders, config_files, loaded_weights
from memaudit.checkpoint.files import sha256_file
from memaudit.errors import MemauditError


@dataclass
class VerificationReport:
    valid: bool = True
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    statement: dict | None = None

    def fail(self, problem: str) -> None:
        self.valid = False
        self.problems.append(problem)


def _read_envelope(path: Path, report: VerificationReport):
    from securesystemslib.dsse import Envelope

    try:
        return Envelope.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as error:
        raise MemauditError(f"{path}: cannot read attestation ({error.strerror or error})") from error
    except (ValueError, KeyError, TypeError) as error:  # tampered or truncated JSON is a finding
        report.fail(f"envelope: not a valid DSSE envelope ({error})")
        return None


def _adapter_path(name: str, adapters: list[Path], report: VerificationReport) -> Path | None:
    """``adapter/<index>/<file name>``: the index-th --adapter given; its absence is a problem."""
    index, _, file_name = name[len(ADAPTER_PREFIX) :].partition("/")
    if not index.isdigit() or int(index) >= len(adapters):
        report.fail(f"subject {name}: the model was scanned with adapter {file_name}; pass it with --adapter")
        return None
    return adapters[int(index)]


def _subject_path(name: str, model: Path | None, reports: Path, *, config: Path | None = None) -> Path | None:
    if name.startswith(CONFIG_PREFIX):
        return config / name[len(CONFIG_PREFIX) :] if config is not None else None
    if name.startswith(MODEL_PREFIX):
        if model is None:
            return None
        relative = name[len(MODEL_PREFIX) :]
        return model if model.is_file() and model.name == relative else model / relative
    if name.startswith(REPORT_PREFIX):
        return reports / name[len(REPORT_PREFIX) :]
    return reports / name


def _unattested(root: Path, prefix: str, names: set[str], *, weights: bool) -> list[str]:
    """Files of a checkpoint (or --config) folder that change behaviour but that the attestation does not name."""
    if not (root / INDEX).is_file():
        return []
    found = config_files(root)
    if weights:
        found += [path for folder in component_folders(root) for path in loaded_weights(folder)]
    return sorted(
        prefix + path.relative_to(root).as_posix()
        for path in found
        if prefix + path.relative_to(root).as_posix() not in names
    )


def verify_attestation(
    attestation: Path,
    public_key: Path,
    *,
    model: Path | None = None,
    reports: Path | None = None,
    config: Path | None = None,
    adapters: list[Path] | None = None,
) -> VerificationReport:
    """Valid only if the signature holds under ``public_key`` and every subject on disk matches its digest.

    Model subjects (weights, configs, tokenizer files) are checked when ``model`` (the checkpoint folder or
    single file) is given, and a file that changes behaviour there but is not attested (added after
    signing) is a problem too; a single file's config folder subjects when ``config`` is given; report
    subjects in ``reports`` (default: the attestation's folder). With ``model``, the LoRA files the scan
    fused into it must be given as ``adapters``, in the scan's order, and must match too.
    """
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    report = VerificationReport()
    key = SSlibKey.from_crypto(load_public_key(public_key))
    envelope = _read_envelope(attestation, report)
    if envelope is None:
        return report
    try:
        envelope.verify([key], 1)
    except VerificationError as error:
        report.fail(f"signature: not valid for key {public_key} ({error})")
        return report
    if envelope.payload_type != PAYLOAD_TYPE:
        report.fail(f"envelope: unexpected payload type {envelope.payload_type!r}")
        return report
    statement = json.loads(envelope.payload)
    report.statement = statement
    if statement.get("_type") != STATEMENT_TYPE:
        report.fail("statement: not an in-toto Statement v1")
    reports = Path(reports) if reports is not None else Path(attestation).parent
    model = Path(model) if model is not None else None
    for item in statement.get("subject", []):
        name, expected = item["name"], item["digest"]["sha256"]
        if name.startswith(ADAPTER_PREFIX):
            path = _adapter_path(name, list(adapters or []), report) if model is not None else None
        else:
            path = _subject_path(name, model, reports, config=config)
        if path is None:
            continue  # model not given: its files are not checked
        if not path.is_file():
            report.fail(f"subject {name}: missing ({path})")
            continue
        if sha256_file(path) != expected:
            report.fail(f"subject {name}: sha256 differs from the attestation ({path} was changed)")
            continue
        report.checked.append(name)
    if model is not None and not any(name.startswith(MODEL_PREFIX) for name in report.checked) and report.valid:
        report.fail("model: the attestation names no checkpoint file that was checked")
    names = {item["name"] for item in statement.get("subject", [])}
    attested = sum(name.startswith(ADAPTER_PREFIX) for name in names)
    for extra in (adapters or [])[attested:]:
        report.fail(f"--adapter {extra}: not in the attestation (the scanned model had {attested} adapter(s))")
    folders = [(model, MODEL_PREFIX, True)] if model is not None and model.is_dir() else []
    folders += [(Path(config), CONFIG_PREFIX, False)] if config is not None else []
    for folder, prefix, weights in folders:
        for name in _unattested(folder, prefix, names, weights=weights):
            report.fail(f"subject {name}: on disk ({folder}) but not in the attestation (added after signing)")
    return report
