"""A strategy sees only what it paid for, behind a process boundary (issue 18, 1 and 2).

``tests/core/cheaters`` is a plugin distribution (a package and its ``dist-info`` with entry
points) put on the path here, so no install is needed: one plugin per route to the test truth.
Each cheater draws the same k samples as an honest plugin and, if its route works, answers with
a correct one. Run as a third-party plugin (isolated, the default for anything not shipped with
uisbench) every route is refused with one error or scores exactly what the honest choice of the
same samples scores. Run in-process (as shipped strategies are), the open routes score far
higher: the test can fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tests.fakes import FakeBank, FakeModel, cli
from uisbench.errors import UisbenchError
from uisbench.isolation import (
    MIN_MEMORY,
    ProtocolError,
    TimedWriter,
    _described,
    bwrap_works,
    os_isolated,
    write_message,
)
from uisbench.meter import Meter
from uisbench.run_loop import arrival_order
from uisbench.runner import Runner
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.store.loading import CACHE_SUFFIX
from uisbench.strategies.base import STRATEGIES

CHEATERS = Path(__file__).resolve().parent / "cheaters"
K = 4
#: One model, 8 samples a query, 30 % right: pass@4 ≈ 0.76 against 0.30 for one sample.
BANK = FakeBank(models=(FakeModel("m", 0.3, samples=8),), queries=160, seed=4)
#: Routes that read the truth when they can reach it; closed, they answer honestly.
QUIET = ["mangled", "gc-walk", "frames", "argv-db", "reference"]
#: Routes the meter refuses outright.
REFUSED = {
    "early-feedback": "only for committed decisions",
    "resolve": "resolve",
    "unpaid": "hidden from strategies",
    "draw-order": "draw_order",
}


@pytest.fixture
def cheaters(monkeypatch):
    """The cheaters' distribution on the path, the registry re-read with it (restored after)."""
    monkeypatch.syspath_prepend(str(CHEATERS))
    with STRATEGIES.scoped(distributions=["uisbench", "uisbench-cheaters"]):
        yield
    sys.modules.pop("uisbench_cheaters", None)


@pytest.fixture
def db(tmp_path, cheaters, monkeypatch):
    path = tmp_path / "r.db"
    engine = open_engine(str(path))
    import_file(engine, BANK.write(tmp_path), tmp_path / "toy.models.json")
    monkeypatch.setattr(sys, "argv", ["uisbench", "run", "--db", str(path)])
    # The stash cheater writes what evaluate() saw into the working folder, HOME and /tmp:
    # keep the first two in this test's folder and remove the third afterwards.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    yield engine
    (Path("/tmp") / "uisbench-cheaters-stash.npz").unlink(missing_ok=True)


def runner(engine, isolation: str, **kw) -> Runner:
    return Runner(engine, "toy", "toy", isolation=isolation, **kw)


def honest_score(r: Runner, label: str, seed: int) -> float:
    """What the first of the k samples a run of ``label`` draws scores: the honest answer
    with exactly the cheater's spending (the meter is seeded by the label)."""
    meter = Meter(r.arrays, seed, label, r.prefix_cache)
    draw = meter.draw("m", arrival_order(r.test_pos, seed), K)
    return float(meter.resolve(draw.handle[:, 0])[1].mean())


def runs(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(schema.runs)).mappings().all()


def test_honest_plugin_scores_the_same_isolated_and_in_process(db):
    a = runner(db, "process").run("honest", 0)
    assert "uisbench_cheaters" not in sys.modules  # the parent never imported the plugin
    b = runner(db, "inprocess").run("honest", 1)
    r = runner(db, "auto")
    assert r.isolated("honest") and not r.isolated("single:model=m")
    assert a.accuracy == pytest.approx(honest_score(r, "honest:model=m", 0))
    assert b.accuracy == pytest.approx(honest_score(r, "honest:model=m", 1))


@pytest.mark.parametrize("name", QUIET)
def test_a_route_to_the_truth_is_closed_to_an_isolated_plugin(db, name):
    r = runner(db, "auto")  # a third-party plugin: isolated by default
    res = r.run(name, 0)
    assert res.accuracy == pytest.approx(honest_score(r, f"{name}:model=m", 0))
    assert "uisbench_cheaters" not in sys.modules


@pytest.mark.parametrize("name", QUIET)
def test_the_same_route_is_open_in_process(db, name):
    """In-process nothing can be hidden from Python code (why plugins are isolated): the
    cheater scores far above honest, so the test above would catch a leak."""
    r = runner(db, "inprocess")
    res = r.run(name, 0)
    assert res.accuracy > honest_score(r, f"{name}:model=m", 0) + 0.25


def test_the_working_folder_on_the_import_path_is_not_bound(db, tmp_path, monkeypatch):
    """Under ``python -m uisbench.cli`` the working folder is on ``sys.path``; the bank imported
    from it lies there. An isolated plugin must not read it (the folder is data, not code)."""
    monkeypatch.syspath_prepend(str(tmp_path))  # what ``python -m`` does with the working folder
    assert list(tmp_path.glob("*.jsonl"))
    r = runner(db, "auto")
    res = r.run("path-bank", 0)
    assert res.accuracy == pytest.approx(honest_score(r, "path-bank:model=m", 0))
    open_route = runner(db, "inprocess").run("path-bank", 1)  # the route works where it is open
    assert open_route.accuracy > honest_score(r, "path-bank:model=m", 1) + 0.25


@pytest.mark.parametrize("isolation", ["auto", "inprocess"])
def test_a_plugin_cannot_put_its_runs_in_another_configurations_row(db, isolation):
    """The board keeps one row per configuration label: a plugin whose label() is a shipped
    configuration's, or a class named by reference that declares a shipped strategy's name,
    would have its runs averaged with that configuration's. Both are refused, nothing stored."""
    r = runner(db, isolation)
    with pytest.raises(UisbenchError, match="label 'single:model=m' does not begin with"):
        r.run("impersonate", 0)
    with pytest.raises(UisbenchError, match="declares the name 'single' of a registered"):
        r.run("uisbench_cheaters:SingleTwin", 0)
    assert runs(db) == []
    # a registered class named by its own module:Class (as check_strategy does) is itself
    assert r.run("uisbench_cheaters:Honest", 0).label == "honest:model=m"


#: Terminal controls: C0 but newline and tab, DEL, C1.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _until(read, pattern: str, seconds: float = 5.0) -> str:
    """What ``read()`` returns, accumulated until ``pattern`` is in it (output forwarded by
    another thread) or ``seconds`` have passed."""
    text, end = "", time.monotonic() + seconds
    while pattern not in text and time.monotonic() < end:
        text += read()
        time.sleep(0.05)
    return text


def test_what_a_plugin_writes_reaches_the_terminal_without_control_sequences(db, capfd):
    """A plugin's print() and stderr are shown (a plugin author debugs with them), but never
    as control sequences: OSC 52 would set the user's clipboard, CSI 2J clear the screen."""
    runner(db, "auto").run("escapes", 0)
    err = _until(lambda: capfd.readouterr().err, "written")
    assert "printed clipboard" in err and "written clipboard" in err
    assert not CONTROLS.search(err), repr(err)


@pytest.mark.parametrize("name", ["two\nlines", "esc\x1b[2J", "c1\x9b", "nul\x00"])
def test_a_description_with_a_name_of_more_than_one_plain_line_is_refused(name):
    reply = {"name": name, "family": "routing", "label": "x", "params": {}}
    reply |= {"upper_bound": False, "needs_answers": False, "evaluates": False}
    with pytest.raises(ProtocolError, match="one short line"):
        _described(reply)


def test_a_plugins_error_line_has_no_control_sequences(db):
    with pytest.raises(UisbenchError) as exc:
        runner(db, "auto").run("escapes:fail=true", 0)
    assert "failed clipboard" in str(exc.value)
    assert not CONTROLS.search(str(exc.value)), repr(str(exc.value))


def test_truth_stashed_by_evaluate_does_not_reach_the_next_run(db):
    r = runner(db, "auto")
    r.run("stash", 0)
    second = r.run("stash", 1)
    assert second.accuracy == pytest.approx(honest_score(r, "stash:model=m", 1))
    inproc = runner(db, "inprocess")
    inproc.run("stash", 2)
    assert inproc.run("stash", 3).accuracy > honest_score(r, "stash:model=m", 3) + 0.25


def test_a_finished_child_cannot_take_over_the_next_run(db):
    """A child that says it has finished (and forges its template's word that it exited) gets
    nothing of the next run: that run is its own child's, played without the truth."""
    r = runner(db, "auto", timeout_s=30.0)
    r.run("impostor", 0)
    second = r.run("impostor", 1)
    assert second.accuracy == pytest.approx(honest_score(r, "impostor:model=m", 1))


def test_what_a_run_left_unread_does_not_reach_the_next_run(db):
    """The truth sent for evaluate() and left unread by a child that forged its end is gone
    before the next run's child starts."""
    r = runner(db, "auto", timeout_s=30.0)
    r.run("leftover", 0)
    second = r.run("leftover", 1)
    assert second.accuracy == pytest.approx(honest_score(r, "leftover:model=m", 1))


@pytest.mark.parametrize("isolation", ["auto", "inprocess"])
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_protocol_breaches_are_refused_with_one_error(db, name, isolation):
    with pytest.raises(UisbenchError, match=REFUSED[name]) as err:
        runner(db, isolation).run(name, 0)
    assert "\n" not in str(err.value)
    assert runs(db) == []  # nothing half-written


#: Cheaters whose summary, decisions' ``extra``, evaluation figures or options are megabytes,
#: and the part of the run their one-line refusal names.
BLOATED = {
    "bloat-summary": "summary",
    "bloat-extra": "extra",
    "bloat-figures": "figures",
    "bloat-params": "options",
}


@pytest.mark.parametrize("isolation", ["auto", "inprocess"])
@pytest.mark.parametrize("name", sorted(BLOATED))
def test_what_a_plugin_stores_beside_its_decisions_is_bounded(db, name, isolation):
    """A run's summary and each decision's ``extra`` (evaluation figures merged in) are shown
    on the board: megabytes of them are refused in one line, and nothing is stored."""
    if name == "bloat-figures" and isolation == "auto" and not os_isolated():
        pytest.skip("an isolated evaluate() runs only under OS-level isolation")
    with pytest.raises(UisbenchError, match=rf"{BLOATED[name]} .*at most") as err:
        runner(db, isolation).run(name, 0)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"strategy {name}")
    assert runs(db) == []


def test_oracle_use_marks_an_upper_bound_whatever_the_plugin_resets(db):
    res = runner(db, "auto").run("peek-unflag", 0)
    (row,) = [r for r in runs(db) if r["id"] == res.run_id]
    assert row["summary"]["upper_bound"] is True


@pytest.mark.parametrize(
    ("name", "message"),
    [("crash", "crashed"), ("hang", "timeout"), ("garbage", "protocol|message|crashed")],
)
def test_a_child_that_crashes_hangs_or_breaks_protocol_ends_its_run_cleanly(db, name, message):
    r = runner(db, "auto", timeout_s=3.0)
    with pytest.raises(UisbenchError, match=message) as err:
        r.run(name, 0)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"strategy {name}")
    assert runs(db) == []
    assert r.run("honest", 0).n_queries == len(r.test_pos)  # a fresh template serves on


def test_evaluation_figures_of_an_isolated_plugin(db, capfd):
    """evaluate() sees the truth only after the last decision, and only under OS isolation;
    elsewhere the figures are skipped with one note."""
    res = runner(db, "auto").run("evaluated", 0)
    with db.connect() as conn:
        extra = conn.execute(
            select(schema.decisions.c.extra).where(schema.decisions.c.run_id == res.run_id)
        ).scalars()
        shares = [(e or {}).get("share_correct") for e in extra]
    if os_isolated():
        assert all(v is not None for v in shares)
    else:
        assert all(v is None for v in shares)
        assert "evaluation figures skipped" in capfd.readouterr().err


@pytest.mark.skipif(not os_isolated(), reason="needs bubblewrap and pyseccomp")
def test_a_run_child_cannot_start_a_process_or_open_a_socket(db):
    """Each run's child installs the seccomp filter before the strategy runs."""
    res = runner(db, "auto").run("syscalls", 0)
    with db.connect() as conn:
        summary = conn.execute(
            select(schema.runs.c.summary).where(schema.runs.c.id == res.run_id)
        ).scalar_one()
    assert summary["strategy"] == {"fork": "denied", "socket": "denied"}
    in_process = runner(db, "inprocess").run("syscalls", 1)  # the probe can tell both apart
    with db.connect() as conn:
        summary = conn.execute(
            select(schema.runs.c.summary).where(schema.runs.c.id == in_process.run_id)
        ).scalar_one()
    assert summary["strategy"] == {"fork": "allowed", "socket": "allowed"}


def test_a_strategy_process_keeps_blas_to_one_thread_and_prints_nothing(db, capfd):
    """A strategy's process is one of --jobs: BLAS keeps to one thread there (idle OpenBLAS
    threads spun on the other cores: 2-4x the CPU of the same fits), and importing
    scikit-learn prints no joblib warning about the sandbox's read-only /dev/shm."""
    res = runner(db, "auto").run("probe", 0)
    with db.connect() as conn:
        summary = conn.execute(
            select(schema.runs.c.summary).where(schema.runs.c.id == res.run_id)
        ).scalar_one()
    assert summary["strategy"]["blas_threads"] == 1
    err = capfd.readouterr().err  # (an earlier test's template may still write as it ends)
    assert "joblib" not in err and "Warning" not in err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_columnar_cache_beside_the_database_is_hidden(db, tmp_path, monkeypatch, capsys, jobs):
    """With the database's folder on ``sys.path`` (``python -m`` puts the working directory
    there) that folder is bound into the sandbox; the database and the columnar copy of its
    samples (correctness included) are covered by empty stand-ins, in one process and in the
    ``--jobs`` workers alike (the workers left the cache visible)."""
    if not bwrap_works():
        pytest.skip("the sandbox's binds need bubblewrap")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "r.db"
    cache = Path(f"{path}{CACHE_SUFFIX}")
    spec = f"cache-probe:folder={cache}"
    args = ["run", "--bank", "toy", "--no-report", "--db", str(path), "--strategy", spec]
    code, _, err = cli(capsys, *args, "--seed", "0", "--seed", "1", "--jobs", jobs)
    assert code == 0, err
    assert any(cache.iterdir())  # the cache is there, outside the sandbox
    with db.connect() as conn:
        summaries = conn.execute(select(schema.runs.c.summary)).scalars().all()
    assert [s["strategy"]["cache_files"] for s in summaries] == [0, 0]


def test_a_plugin_ranks_no_higher_than_its_honest_choice(db):
    """Every cheater that completes, on the report's accuracy: none above the honest score of
    its own samples, so none ranks above the honest plugins on merit it did not earn."""
    r = runner(db, "auto")
    for name in [*QUIET, "honest"]:
        res = r.run(name, 0)
        assert res.accuracy <= honest_score(r, f"{name}:model=m", 0) + 1e-12


def test_unknown_isolation_is_refused(db):
    with pytest.raises(UisbenchError, match="unknown isolation"):
        runner(db, "container")


def test_isolated_runs_are_identical_to_in_process_for_shipped_strategies(db):
    """--isolation process runs a built-in through the same protocol: same decisions."""
    specs = ["single:model=m", "majority:model=m,k=3", "oracle:k=4", "adaptive:model=m"]
    a = runner(db, "process")
    b = runner(db, "inprocess")
    for spec in specs:
        x, y = a.run(spec, 0), b.run(spec, 0)
        assert x.run_id == y.run_id  # the same run key: the second finds it complete
        assert y.skipped
    with db.connect() as conn:
        n = conn.execute(select(schema.runs.c.id)).all()
    assert len(n) == len(specs)
    assert np.isfinite(a.run("uniscale:features=hash", 0, force=True).accuracy)


def test_a_process_that_stops_reading_cannot_hang_the_parent():
    """The parent's writes to a strategy's process (the truth, replies, run headers) are
    bounded by the run's timeout: a child that never reads gets one timeout error, never a
    parent blocked on a full pipe."""
    r, w = os.pipe()
    try:
        out = TimedWriter(w, timeout_s=0.5)
        start = time.monotonic()
        with pytest.raises(UisbenchError, match="timeout"):
            write_message(out, {"op": "truth"}, {"x": np.zeros(1 << 20, dtype=np.uint8)})
        assert time.monotonic() - start < 5
        ok_r, ok_w = os.pipe()
        small = TimedWriter(ok_w, timeout_s=0.5)
        write_message(small, {"op": "reply"}, {"x": np.arange(10)})  # fits: written at once
        assert len(os.read(ok_r, 1 << 16)) > 80
        small.close()
        os.close(ok_r)
    finally:
        os.close(r)
        with contextlib.suppress(OSError):
            os.close(w)


def test_a_strategy_process_imports_no_pandas_pyarrow_or_sqlalchemy():
    """The template forks one child per run, and a fork copies every mapping it holds: the
    strategy side imports uisbench without the storage layer's libraries (pandas alone took a
    fork and exit from 1.4 to 4.8 ms)."""
    code = (
        "import sys, uisbench.strategies.worker, uisbench.strategies;"
        "heavy = {'pandas', 'pyarrow', 'sqlalchemy'};"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("name", sorted(BLOATED))
def test_the_same_bounds_hold_with_jobs(db, capsys, name):
    """``--jobs``: the parent opens the runs (options), a worker replays them (summary,
    ``extra``, figures); the bounds are the same, the job fails in one line, nothing stored."""
    if name == "bloat-figures" and not os_isolated():
        pytest.skip("an isolated evaluate() runs only under OS-level isolation")
    path = str(db.url.database)
    args = ["run", "--db", path, "--bank", "toy", "--jobs", "2", "--no-report"]
    code, out, err = cli(capsys, *args, "--strategy", name)
    assert code == 2, err
    assert re.search(rf"{BLOATED[name]} .*at most", err) and len(err.strip().splitlines()) == 1
    assert runs(db) == []


def test_a_strategy_process_cannot_map_most_of_the_machines_memory(db):
    """Its address space is bounded (half the machine's memory, at least 6 GiB): mapping three
    quarters of it ends the run with one error, where in-process it would be granted."""
    if Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "2":
        pytest.skip("strict overcommit: the kernel refuses such a mapping in any process")
    if os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4 <= MIN_MEMORY:
        pytest.skip("a machine this small: three quarters of it is within the bound")
    with pytest.raises(UisbenchError, match="MemoryError") as err:
        runner(db, "auto").run("hog", 0)
    assert "\n" not in str(err.value)
    assert runs(db) == []
    assert runner(db, "inprocess").run("hog", 0).n_queries > 0  # the mapping alone is granted


@pytest.mark.parametrize("isolation", ["auto", "inprocess"])
def test_a_run_that_leaves_queries_undecided_is_named_once_in_its_error(db, capsys, isolation):
    """One process or ``--jobs``, isolated or not: the same one line, the strategy named once."""
    r = runner(db, isolation)
    n = len(r.test_pos)
    want = (
        f"strategy partial:model=m: decided {n // 2} of {n} queries; {n - n // 2} have no decision"
    )
    with pytest.raises(UisbenchError) as err:
        r.run("partial", 0)
    assert str(err.value) == want
    args = ["run", "--db", str(db.url.database), "--bank", "toy", "--jobs", "2", "--no-report"]
    code, out, err = cli(capsys, *args, "--isolation", isolation, "--strategy", "partial")
    assert code == 2 and err.strip().endswith(want), err
    assert runs(db) == []
