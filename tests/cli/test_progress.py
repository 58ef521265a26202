"""Progress in a log (stderr not a terminal): plain lines at the start, every further tenth (at most one
per interval) and the end of a stage, never rich's control codes."""

from __future__ import annotations

import io

from rich.console import Console

from memaudit.cli.progress import LogLines


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_log_lines_say_start_tenths_at_most_once_per_interval_and_done():
    out, clock = io.StringIO(), _Clock()
    lines = LogLines(Console(file=out, width=200), interval=10.0, clock=clock)
    with lines:
        task = lines.add_task("scoring prompts", total=100)
        clock.now = 5.0
        lines.advance(task, 20)  # two tenths done, but only 5 s since the last line: quiet
        clock.now = 12.0
        lines.advance(task, 5)  # 25 done after 12 s: 36 s to go
        clock.now = 13.0
        lines.advance(task, 10)  # a further tenth, 1 s later: quiet
        clock.now = 40.0
        lines.advance(task, 65)
    assert out.getvalue().splitlines() == [
        "scoring prompts: 100 to do",
        "scoring prompts: 25/100 (25%) 12 s, about 36 s to go",
        "scoring prompts: 100/100 done in 40 s",
    ]
    assert "\x1b" not in out.getvalue()


def test_log_lines_rename_tasks_and_handle_empty_stages():
    out = io.StringIO()
    lines = LogLines(Console(file=out, width=200), clock=_Clock())
    empty = lines.add_task("nothing to check", total=0)
    lines.advance(empty, 0)
    task = lines.add_task("fine-tuning", total=2)
    lines.update(task, description="fine-tuning loss 0.12")
    lines.advance(task, 2)
    assert out.getvalue().splitlines() == [
        "nothing to check: 0 to do",
        "fine-tuning: 2 to do",
        "fine-tuning loss 0.12: 2/2 done in 0 s",
    ]
