"""Progress bars with ETA on stderr (rich), hidden when stderr is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from memaudit.cli.app import stderr


@contextmanager
def progress_bar(description: str, *, total: int) -> Iterator[Callable[[], None]]:
    """Yield ``advance()``; rich draws nothing when stderr is not interactive (CI logs stay clean)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)
