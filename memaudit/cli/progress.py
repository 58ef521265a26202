"""Progress on stderr: bars with ETA (rich) on a terminal, plain lines in a log (CI, a file)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from memaudit.cli.console import stderr


class LogLines:
    """The part of rich's Progress used here, written as plain lines for a log: one when a stage starts,
    one each time a further tenth is done (at most one per ``interval`` seconds), one when it is done."""

    def __init__(self, console, *, interval: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._console, self._interval, self._clock = console, interval, clock
        self._tasks: dict[int, dict] = {}

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc) -> None:
        return None

    @property
    def console(self):
        return self._console

    def add_task(self, description: str, *, total: int) -> int:
        task = len(self._tasks)
        now = self._clock()
        self._tasks[task] = dict(description=description, total=total, done=0, started=now, said=now, tenth=0)
        self._console.print(f"{description}: {total:,} to do")
        return task

    def update(self, task: int, *, description: str) -> None:
        self._tasks[task]["description"] = description

    def advance(self, task: int, units: float = 1) -> None:
        state = self._tasks[task]
        state["done"] += units
        done, total, now = state["done"], state["total"], self._clock()
        elapsed = now - state["started"]
        if total and done >= total:
            self._console.print(f"{state['description']}: {done:,}/{total:,} done in {elapsed:,.0f} s")
            return
        tenth = int(10 * done / total) if total else 0
        if tenth > state["tenth"] and now - state["said"] >= self._interval:
            state["tenth"], state["said"] = tenth, now
            remaining = elapsed * (total - done) / done
            self._console.print(
                f"{state['description']}: {done:,}/{total:,} ({100 * done // total}%) "
                f"{elapsed:,.0f} s, about {remaining:,.0f} s to go"
            )


def _display(*, transient: bool) -> Progress | LogLines:
    """Bars with count, elapsed time and ETA on a terminal; plain lines when stderr is not one."""
    if not stderr.is_terminal:
        return LogLines(stderr)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
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

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)
