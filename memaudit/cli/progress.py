"""Progress bars with ETA on stderr (rich), hidden when stderr is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from memaudit.cli.console import stderr


def _display(*, transient: bool) -> Progress:
    """Bars with count, elapsed time and ETA on stderr; nothing is drawn when stderr is not a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
        disable=not stderr.is_terminal,
    )


@contextmanager
def progress_bar(description: str, *, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(status=None)`` for one bar that disappears when done; ``status`` (e.g. the
    current loss) is shown after the description."""
    with _display(transient=True) as progress:
        task = progress.add_task(description, total=total)

        def advance(status: str | None = None) -> None:
            if status is not None:
                progress.update(task, description=f"{description} {status}")
            progress.advance(task)

        yield advance


class RichStages:
    """The battery's Progress protocol on a rich display: one bar per stage, with ETA; stage timings kept."""

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self.timings: dict[str, float] = {}
        self._progress = _display(transient=False)
        self._current: tuple[str, float] | None = None

    def __enter__(self) -> RichStages:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._close_stage()
        self._progress.__exit__(*exc)

    def _close_stage(self) -> None:
        if self._current is not None:
            name, started = self._current
            self.timings[name] = self.timings.get(name, 0.0) + self._clock() - started
            self._current = None

    def stage(self, description: str, total: int) -> Callable[[int], None]:
        self._close_stage()
        self._current = (description, self._clock())
        task = self._progress.add_task(description, total=total)
        return lambda units: self._progress.advance(task, units)
