"""How the battery reports progress: stages with a known amount of work. The CLI draws them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def stage(self, description: str, total: int) -> Callable[[int], None]:
        """Start a stage of ``total`` units; returns ``advance(units)``."""
        ...

    def note(self, message: str) -> None:
        """Say something that is not a stage of work (e.g. that a killed run's units are read back)."""
        ...


class SilentProgress:
    def stage(self, description: str, total: int) -> Callable[[int], None]:
        return lambda units: None

    def note(self, message: str) -> None:
        return None
