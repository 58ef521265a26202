"""The CLI's two consoles: results on stdout, errors and progress on stderr."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output (CI logs, files) gets a wide fixed width so tables never cut digests or module paths.
_WIDTH = None if sys.stdout.isatty() else 200
stdout = Console(highlight=False, soft_wrap=True, width=_WIDTH)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)
