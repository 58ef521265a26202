"""Finished units of a scan's work, kept so that a killed scan continues where it stopped.

A unit (the triage scores of one chunk of prompts, the attack on one prompt) is written as one sealed
JSON file (memaudit.sealing), atomically, when it is done: it records the scan's key and the unit's name
(which, under one key, fixes the unit's inputs) and a keyed digest of its value. A unit that does not
verify (edited, truncated, from another scan) is reported through ``on_stale`` and recomputed; the
other finished units are kept. The folder is named by a digest of everything the result depends
on: the model's weight files, the training and holdout sets, the policy as run, the previous scan
given with ``--before`` and memaudit's version; a change to any of them starts a fresh folder. Every
unit is deterministic (seeds follow prompt indices), and JSON gives floats back exactly, so a resumed
scan writes the same result.json as one that was never interrupted. The folder is removed when the
scan finishes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from memaudit import __version__
from memaudit.checkpoint import Checkpoint
from memaudit.checkpoint.files import sha256_file
from memaudit.data import ImageCaptionDataset
from memaudit.policy import Policy
from memaudit.scan.progress import Progress
from memaudit.scan.request import ScanRequest
from memaudit.sealing import StaleEntry, read_sealed, write_sealed

UNIT_SUFFIX = ".unit"


def work_key(
    *, model: list[str], train: str, holdout: str, policy: dict, before: str | None, reference: str | None = None
) -> str:
    """A digest of what a scan's result depends on (``model``: its checkpoint digest or its source;
    ``reference``: the base's checkpoint digest when the membership check calibrates against it)."""
    content = {"memaudit": __version__, "model": model, "train": train, "holdout": holdout, "policy": policy}
    content["before"] = before
    if reference is not None:  # keys of scans without a reference stay what they were
        content["reference"] = reference
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class WorkLog:
    def __init__(self, folder: Path, *, on_stale: Callable[[str], None] | None = None) -> None:
        self.folder = Path(folder)
        self.key = self.folder.name  # the scan's work key names its folder
        self._on_stale = on_stale or (lambda message: None)

    def _path(self, unit: str) -> Path:
        return self.folder / f"{unit}{UNIT_SUFFIX}"

    def _provenance(self, unit: str) -> dict:
        return {"kind": "work-unit", "scan": self.key, "unit": unit}

    def get(self, unit: str):
        """The unit's saved value, or None: not finished, or stale (reported, to be recomputed)."""
        path = self._path(unit)
        if not path.is_file():
            return None
        try:
            return json.loads(read_sealed(path, provenance=self._provenance(unit)))
        except (OSError, ValueError, StaleEntry) as error:
            self._on_stale(f"work log: {error if isinstance(error, StaleEntry) else f'{path}: {error}'}")
            return None

    def put(self, unit: str, value) -> None:
        write_sealed(self._path(unit), json.dumps(value).encode(), provenance=self._provenance(unit))

    def finished(self) -> int:
        return len(list(self.folder.glob(f"*{UNIT_SUFFIX}"))) if self.folder.is_dir() else 0

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def scan_work_log(
    request: ScanRequest,
    checkpoint: Checkpoint,
    *,
    train: ImageCaptionDataset,
    holdout: ImageCaptionDataset,
    policy: Policy,
    progress: Progress,
    reference: Checkpoint | None = None,
) -> WorkLog | None:
    """Where this scan keeps its finished units of work (under the cache folder), or None: no cache
    folder, or evidence images requested (thumbnails are not kept between runs)."""
    if request.feature_cache is None or request.include_evidence_images:
        return None
    model = [checkpoint.digest] if checkpoint.weight_files else [str(checkpoint.source)]  # every file that matters
    rows = [hashlib.sha256("\n".join(data.item_digests).encode()).hexdigest() for data in (train, holdout)]
    key = work_key(
        model=[*model, torch.device(request.device).type],  # not the index: every rank keys the same folder
        train=rows[0],
        holdout=rows[1],
        policy=policy.model_dump(mode="json"),
        before=sha256_file(request.before) if request.before is not None else None,
        reference=reference.digest if reference is not None else None,
    )
    return WorkLog(
        request.feature_cache / "scans" / key,
        on_stale=lambda message: progress.note(f"warning: {message}; recomputing it"),
    )
