"""Writing the site's pages on every core.

A build decides each page's context in one process (it reads the database) and queues it here;
rendering the queued templates, about half of a build's time, then runs in ``jobs`` processes
forked from the builder, each writing every ``jobs``-th page. A page is a pure function of its
template and context, so the files are the same bytes whoever renders them (a test compares a
build on one process with one on two).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import jinja2

#: Queued pages rendered at once at most (a bound on the contexts held in memory).
FLUSH_PAGES = 2000
#: Fewer queued pages than this are rendered in this process (a fork costs more).
PARALLEL_PAGES = 64

#: A page: template name, path under the output folder, context.
Page = tuple[str, str, dict[str, Any]]
#: What the forked renderers inherit: (environment, output folder, pages); set for one flush.
_QUEUE: tuple[jinja2.Environment, Path, list[Page]] | None = None


class PageWriter:
    """Pages queued as (template, path under ``out``, context), written by :meth:`flush`."""

    def __init__(self, env: jinja2.Environment, out: Path, jobs: int) -> None:
        self.env, self.out, self.jobs = env, out, max(1, jobs)
        self.pages: list[Page] = []

    def add(self, template: str, path: str, ctx: dict[str, Any]) -> None:
        """Queue a page; the queue is written once it holds :data:`FLUSH_PAGES`."""
        self.pages.append((template, path, ctx))
        if len(self.pages) >= FLUSH_PAGES:
            self.flush()

    def flush(self) -> None:
        """Render and write every queued page (forked processes share them out)."""
        global _QUEUE
        pages, self.pages = self.pages, []
        jobs = self.jobs
        if jobs < 2 or len(pages) < PARALLEL_PAGES or not _can_fork():
            _write(self.env, self.out, pages)
            return
        _QUEUE = (self.env, self.out, pages)
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(jobs, context) as pool:
                for done in [pool.submit(_write_share, i, jobs) for i in range(jobs)]:
                    done.result()  # a template's error surfaces here, as in one process
        finally:
            _QUEUE = None


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _write_share(index: int, jobs: int) -> None:
    assert _QUEUE is not None  # inherited through fork
    env, out, pages = _QUEUE
    _write(env, out, pages[index::jobs])


def _write(env: jinja2.Environment, out: Path, pages: list[Page]) -> None:
    for template, path, ctx in pages:
        html = env.get_template(template).render(**ctx)
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
