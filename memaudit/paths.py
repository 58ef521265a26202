"""Where the shipped, non-Python parts of memaudit live (policies/, templates/, models/, reports/).

From a source checkout (or an editable install) they are the top-level folders of the project; a
regular install carries policies/, templates/ and models/ under ``<prefix>/share/memaudit``.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTALLED_SHARE = Path(sys.prefix) / "share" / "memaudit"


def _shipped(name: str) -> Path:
    source = PROJECT_ROOT / name
    return source if source.is_dir() else INSTALLED_SHARE / name


POLICIES_DIR = _shipped("policies")
TEMPLATES_DIR = _shipped("templates")
MODELS_DIR = _shipped("models")
REPORTS_DIR = Path("reports") if not (PROJECT_ROOT / "reports").is_dir() else PROJECT_ROOT / "reports"
