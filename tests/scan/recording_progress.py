"""A progress sink that records every stage's total and how far it advanced, for tests."""

from __future__ import annotations


class RecordingProgress:
    def __init__(self) -> None:
        self.stages: dict[str, list[int]] = {}
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def stage(self, description: str, total: int):
        self.stages[description] = [total, 0]

        def advance(units: int) -> None:
            self.stages[description][1] += units

        return advance
