"""Finished units of a scan's work, kept so that a killed scan continues where it stopped.

A unit (the triage scores of one chunk of prompts, the attack on one prompt) is written as one JSON
file, atomically, when it is done. The folder is named by a digest of everything the result depends
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
from pathlib import Path

from memaudit import __version__
from memaudit.atomic_files import write_atomic


def work_key(*, model: list[str], train: str, holdout: str, policy: dict, before: str | None) -> str:
    """A digest of what a scan's result depends on (``model``: its weight files' digests or its source)."""
    content = {"memaudit": __version__, "model": model, "train": train, "holdout": holdout, "policy": policy}
    content["before"] = before
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class WorkLog:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, unit: str) -> Path:
        return self.folder / f"{unit}.json"

    def get(self, unit: str):
        """The unit's saved value, or None if it was not finished."""
        path = self._path(unit)
        return json.loads(path.read_text()) if path.is_file() else None

    def put(self, unit: str, value) -> None:
        write_atomic(self._path(unit), json.dumps(value))

    def finished(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
