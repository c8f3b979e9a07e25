"""One progress display for long work (runs, recordings, site builds): a Rich bar on a
terminal; elsewhere (a CI log, a file) a plain line on stderr every few seconds with done/total,
rate and time left, so that minutes of work are never silent."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Seconds between progress lines outside a terminal (env UISBENCH_PROGRESS_SECONDS).
LINE_SECONDS = 5.0


def progress_bar(*, rate: bool = False, transient: bool = False) -> Progress | LineProgress:
    """A bar with description, count and elapsed time; ``rate`` adds items/s and time left.
    Outside a terminal: :class:`LineProgress`, the same calls printing a line now and then."""
    if not sys.stderr.isatty():
        return LineProgress()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if rate:
        columns.append(TextColumn("{task.fields[rate]}"))
    columns.append(TimeElapsedColumn())
    if rate:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, disable=not sys.stderr.isatty(), transient=transient)


def site_progress(bar: Progress | LineProgress) -> Callable[[int, int, str], None]:
    """A ``(done, total, label)`` callback for the site build: tasks written so far."""
    task = bar.add_task("site build: tasks", total=None, note="")

    def tick(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, note=label)

    return tick


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


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class LineProgress:
    """What a progress bar shows, as one line on stderr at most every ``every`` seconds (and
    once at the end): the first task's done/total, its rate and time left, and what the other
    tasks are on. Takes the calls of :class:`rich.progress.Progress` that uisbench makes."""

    def __init__(self, every: float | None = None, stream: Any = None) -> None:
        env = os.environ.get("UISBENCH_PROGRESS_SECONDS")
        self.every = every if every is not None else float(env) if env else LINE_SECONDS
        self.stream = stream
        self.tasks: dict[int, dict[str, Any]] = {}
        self.start = time.perf_counter()
        self.last = self.start
        self.printed = False

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.printed and exc[0] is None:
            self._print(final=True)

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        tid = len(self.tasks)
        self.tasks[tid] = {"description": description, "total": total, "completed": 0, **fields}
        return tid

    def update(self, task_id: int, *, advance: float | None = None, **changes: Any) -> None:
        task = self.tasks[task_id]
        if "completed" in changes and "first" not in task:  # rate from here: work already
            task["first"], task["t_first"] = changes["completed"], time.perf_counter()  # done
        task.update({k: v for k, v in changes.items() if v is not None})
        if advance:
            task["completed"] += advance
        self._maybe_print()

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _maybe_print(self) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._print()

    def line(self, final: bool = False) -> str:
        """The progress line as it would be printed now."""
        if not self.tasks:
            return ""
        elapsed = time.perf_counter() - self.start
        head, *rest = self.tasks.values()
        done, total = head["completed"], head["total"]
        parts = [f"{head['description']} {done:g}" + (f"/{total:g}" if total else "")]
        since = time.perf_counter() - head.get("t_first", self.start)
        rate = (done - head.get("first", 0)) / since if since > 0 else 0.0
        if rate > 0:
            parts.append(f"{rate:.3g}/s" if rate >= 1 else f"{_duration(1 / rate)} each")
            if total and not final and done < total:
                parts.append(f"about {_duration((total - done) / rate)} left")
        parts.append(f"{_duration(elapsed)} elapsed")
        if head.get("note"):
            parts.append(str(head["note"]))
        for task in rest:
            if task["description"]:
                now = f" {task['completed']:g}/{task['total']:g}" if task["total"] else ""
                parts.append(f"{task['description']}{now}")
        return ("done: " if final else "progress: ") + ", ".join(parts)

    def _print(self, final: bool = False) -> None:
        print(self.line(final), file=self.stream or sys.stderr, flush=True)
        self.printed = True
