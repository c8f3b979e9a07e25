"""One progress display for long work (runs, recordings): Rich, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(*, rate: bool = False, transient: bool = False) -> Progress:
    """A bar with description, count and elapsed time; ``rate`` adds items/s and time left."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if rate:
        columns.append(TextColumn("{task.fields[rate]}"))
    columns.append(TimeElapsedColumn())
    if rate:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, disable=not sys.stderr.isatty(), transient=transient)


def rate_ticker(bar: Progress, task_id: int, unit: str) -> Callable[[int, int, str], None]:
    """A ``(done, total, label)`` callback that also shows the rate since its first call."""
    start: list[float] = []
    first: list[int] = []

    def tick(done: int, total: int, label: str) -> None:
        now = time.perf_counter()
        if not start:
            start.append(now)
            first.append(done)
        rate = (done - first[0]) / max(now - start[0], 1e-9)
        bar.update(
            task_id, completed=done, total=total, description=label, rate=f"{rate:.2f} {unit}/s"
        )

    return tick
