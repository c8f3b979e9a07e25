"""Progress outside a terminal (issue 19): a plain line every few seconds with done/total, rate
and time left, for runs, recordings and the site build; never silent for minutes."""

from __future__ import annotations

import io
from pathlib import Path

from tests.site.toysite import make_toy_db
from uisbench.cli import main
from uisbench.progress import LineProgress, progress_bar


def test_line_progress_says_done_total_rate_and_time_left(monkeypatch) -> None:
    clock = iter(range(1000))
    monkeypatch.setattr("uisbench.progress.time.perf_counter", lambda: float(next(clock)))
    out = io.StringIO()
    with LineProgress(every=5.0, stream=out) as bar:
        runs = bar.add_task("runs", total=4)
        current = bar.add_task("", total=1)
        for i in range(4):
            bar.update(current, description=f"task majority seed={i}", completed=0)
            bar.advance(runs)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("progress: runs ") and "left" in lines[0]
    assert "majority seed=" in lines[0] and ("/s" in lines[0] or "each" in lines[0])
    assert lines[-1].startswith("done: runs 4/4")


def test_outside_a_terminal_the_bar_is_lines() -> None:
    assert isinstance(progress_bar(), LineProgress)  # pytest captures stderr: not a tty


def test_site_build_prints_progress_lines(tmp_path: Path, capsys, monkeypatch) -> None:
    make_toy_db(tmp_path)
    monkeypatch.setenv("UISBENCH_PROGRESS_SECONDS", "0")
    try:
        main(["site", "build", "--db", str(tmp_path / "toy.db"), "--out", str(tmp_path / "s")])
    except SystemExit as exc:
        assert not exc.code
    err = capsys.readouterr().err
    assert "progress: site build: tasks 0/1" in err and "toy-task" in err
    assert "done: site build: tasks 1/1" in err and "pages" in err
