"""Cheating strategy plugins: one per route to the test truth found in issue 18 (1 and 2).

Each draws the same k samples of one model per query as :class:`Honest` and, when its route
yields the truth (which correct answer codes each query has), answers with a drawn sample that
carries a correct answer; otherwise it answers as :class:`Honest` does (the first sample). A
route that works scores near pass@k; a closed one scores as the honest plugin, or the run is
refused. Installed for the tests only (``tests/core/test_isolation.py`` puts this folder, with
its ``dist-info``, on the path).
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uisbench.strategies import Decisions, RunContext, Strategy

K = 4
_STASH: dict[str, Any] = {}  # survives between runs only if the process does
STASH_FILE = "uisbench-cheaters-stash.npz"


def _correct_codes(answer: np.ndarray, correct: np.ndarray) -> list[set[int]]:
    """Per query, the answer codes of its correct samples."""
    return [set(a[c].tolist()) for a, c in zip(answer, correct)]


def _codes_from_bank(bank: Any, model: str) -> list[set[int]] | None:
    """Correct answer codes per query of a bank object whose ``correct`` is real."""
    try:
        arr = bank.models[model]
        correct = np.asarray(arr.correct)
        if correct.dtype != bool:
            return None
        return _correct_codes(np.asarray(arr.answer), correct)
    except Exception:  # hidden, absent, not a bank
        return None


class Honest(Strategy):
    """k samples of one model, the first one's answer: the spending every cheater matches."""

    name = "honest"
    family = "routing"
    description = "test plugin: the honest strategy the cheaters are compared with"

    @dataclass
    class Params:
        model: str = "m"

    def truth(self, ctx: RunContext) -> list[set[int]] | None:
        """Correct answer codes per bank position, if this plugin's route finds them."""
        return None

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        codes = self.truth(ctx)
        draw = ctx.meter.draw(self.params.model, ctx.stream, K)
        col = np.zeros(len(ctx.stream), dtype=int)
        if codes is not None:
            for i, q in enumerate(ctx.stream.tolist()):
                good = [j for j in range(K) if int(draw.answer[i, j]) in codes[q]]
                col[i] = good[0] if good else 0
        yield Decisions(ctx.stream, draw.handle[np.arange(len(col)), col])


class Mangled(Honest):
    """Name-mangled and private attributes of the meter, and whatever they lead to."""

    name = "mangled"

    def truth(self, ctx):
        meter = ctx.meter
        seen: set[int] = set()
        todo = [meter]
        for attr in ("_Meter__truth", "truth", "_call"):
            todo.append(getattr(meter, attr, None))
        while todo:
            obj = todo.pop()
            if obj is None or id(obj) in seen or len(seen) > 2000:
                continue
            seen.add(id(obj))
            codes = _codes_from_bank(obj, self.params.model)
            if codes is not None and len(codes) == meter.bank.n_queries:
                return codes
            for name in ("__self__", "__closure__", "__dict__", "meter", "truth", "_Meter__truth"):
                val = getattr(obj, name, None)
                if isinstance(val, dict):
                    todo += list(val.values())
                elif isinstance(val, tuple):
                    todo += [getattr(c, "cell_contents", None) for c in val]
                elif val is not None:
                    todo.append(val)
        return None


class GcWalk(Honest):
    """gc.get_objects(): any bank in the process whose ``correct`` is real."""

    name = "gc-walk"

    def truth(self, ctx):
        n = ctx.meter.bank.n_queries
        for obj in gc.get_objects():
            if type(obj).__name__ == "BankArrays" and getattr(obj, "n_queries", 0) == n:
                codes = _codes_from_bank(obj, self.params.model)
                if codes is not None:
                    return codes
        return None


class Frames(Honest):
    """sys._getframe() up the stack to the runner's arrays."""

    name = "frames"

    def truth(self, ctx):
        n = ctx.meter.bank.n_queries
        frame = sys._getframe()
        while frame is not None:
            for value in list(frame.f_locals.values()):
                for obj in (value, getattr(value, "arrays", None), getattr(value, "truth", None)):
                    if getattr(obj, "n_queries", 0) == n:
                        codes = _codes_from_bank(obj, self.params.model)
                        if codes is not None:
                            return codes
            frame = frame.f_back
        return None


class EarlyFeedback(Strategy):
    """meter.feedback() on every drawn sample before deciding: escalate while wrong."""

    name = "early-feedback"
    family = "routing"
    description = "test plugin: feedback before the decision is committed"

    @dataclass
    class Params:
        model: str = "m"

    def run(self, ctx):
        draw = ctx.meter.draw(self.params.model, ctx.stream, K)
        ok = ctx.meter.feedback(draw.handle.ravel()).reshape(draw.handle.shape)
        col = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
        yield Decisions(ctx.stream, draw.handle[np.arange(len(col)), col])


class Resolve(EarlyFeedback):
    """meter.resolve(): the parent's grading call."""

    name = "resolve"

    def run(self, ctx):
        draw = ctx.meter.draw(self.params.model, ctx.stream, K)
        ok = ctx.meter.resolve(draw.handle.ravel())[1].reshape(draw.handle.shape)
        col = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
        yield Decisions(ctx.stream, draw.handle[np.arange(len(col)), col])


class PeekUnflag(EarlyFeedback):
    """meter.peek() / oracle(), then clear the upper-bound flag wherever it may be."""

    name = "peek-unflag"

    def run(self, ctx):
        meter = ctx.meter
        draw = meter.draw(self.params.model, ctx.stream, K)
        ok = meter.oracle(draw)
        col = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
        for obj in (meter, getattr(getattr(meter, "_call", None), "__self__", None)):
            for path in ("used_oracle", "record.used_oracle", "meter.record.used_oracle"):
                *parents, last = path.split(".")
                target = obj
                for p in parents:
                    target = getattr(target, p, None)
                try:
                    setattr(target, last, False)
                except Exception:
                    pass
        yield Decisions(ctx.stream, draw.handle[np.arange(len(col)), col])


def _find_database() -> str | None:
    """A database path from this process's argv or environment, or any process's argv."""
    args = list(sys.argv) + list(os.environ.values())
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args += proc.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            pass
    for a in args:
        if a.endswith(".db") and os.path.isfile(a):
            return a
    return None


def _truth_from_database(ctx: RunContext) -> Any:
    path = _find_database()
    if path is None:
        return None, None
    from sqlalchemy import select

    from uisbench.store import schema
    from uisbench.store.engine import open_engine
    from uisbench.store.loading import load_arrays

    engine = open_engine(path, create=False)
    with engine.connect() as conn:
        tasks = conn.execute(select(schema.tasks.c.name)).scalars().all()
        bank = load_arrays(conn, ctx.meter.bank.bank, tasks[0])
        refs = dict(conn.execute(select(schema.queries.c.id, schema.queries.c.reference)).all())
    return bank, refs


class ArgvDatabase(Honest):
    """Open the database named on the command line and read samples.correct."""

    name = "argv-db"

    def truth(self, ctx):
        bank, _ = _truth_from_database(ctx)
        return None if bank is None else _codes_from_bank(bank, self.params.model)


class PathBank(Honest):
    """Read a bank file lying in a folder on the import path: under ``python -m`` the working
    folder is one, and a bank imported from there is usually still there."""

    name = "path-bank"

    def truth(self, ctx):
        prompts = ctx.meter.bank.prompts
        labels = {str(t): i for i, t in enumerate(ctx.train.answer_labels.tolist())}
        right: dict[str, set[int]] = {}
        for folder in sys.path:
            try:
                names = [e.path for e in os.scandir(folder or ".") if e.is_file()]
            except OSError:
                continue
            for path in names:
                if not path.endswith((".jsonl", ".jsonl.gz")):
                    continue
                opener = gzip.open if path.endswith(".gz") else open
                try:
                    with opener(path, "rt", encoding="utf-8") as fh:
                        for line in fh:
                            row = json.loads(line)
                            if row.get("model") == self.params.model and row.get("correct"):
                                code = labels.get(str(row.get("answer")))
                                if code is not None:
                                    right.setdefault(row.get("prompt"), set()).add(code)
                except (OSError, ValueError):
                    continue
        if not right or prompts is None:
            return None
        return [right.get(p, set()) for p in prompts]


class Reference(Honest):
    """Compare queries.reference (from the database) with the answer labels."""

    name = "reference"

    def truth(self, ctx):
        bank, refs = _truth_from_database(ctx)
        if bank is None:
            return None
        labels = {str(t): i for i, t in enumerate(bank.answer_labels.tolist())}
        return [
            {labels[str(refs.get(int(qid)))]} if str(refs.get(int(qid))) in labels else set()
            for qid in bank.query_ids.tolist()
        ]


class Stash(Honest):
    """Keep what evaluate(truth) gave for the next run (module state, then a file)."""

    name = "stash"

    def truth(self, ctx):
        if self.params.model in _STASH:
            return _STASH[self.params.model]
        for folder in (os.getcwd(), os.path.expanduser("~"), "/tmp"):
            try:
                with np.load(Path(folder) / STASH_FILE, allow_pickle=False) as z:
                    return _correct_codes(z["answer"], z["correct"])
            except (OSError, ValueError, KeyError):
                pass
        return None

    def evaluate(self, truth, ctx):
        arr = truth.models[self.params.model]
        _STASH[self.params.model] = _correct_codes(arr.answer, arr.correct)
        for folder in (os.getcwd(), os.path.expanduser("~"), "/tmp"):
            try:
                np.savez(Path(folder) / STASH_FILE, answer=arr.answer, correct=arr.correct)
            except OSError:
                pass
        return None


class Unpaid(Honest):
    """Read the answers of samples never drawn from the test view."""

    name = "unpaid"

    def truth(self, ctx):
        answers = np.asarray(ctx.meter.bank.models[self.params.model].answer)  # unpaid
        plurality = [np.bincount(a[a >= 0]).argmax() if (a >= 0).any() else -1 for a in answers]
        return [{int(p)} for p in plurality]


class DrawOrder(Honest):
    """Read the meter's draw order (which samples come next) and the handles' slots."""

    name = "draw-order"

    def truth(self, ctx):
        ctx.meter.draw_order(self.params.model)
        return None


class Crash(Honest):
    """Dies of a segmentation fault half-way."""

    name = "crash"

    def truth(self, ctx):
        import ctypes

        ctypes.string_at(0)  # SIGSEGV


class Hang(Honest):
    """Never answers."""

    name = "hang"

    def truth(self, ctx):
        import time

        time.sleep(3600)


class Garbage(Honest):
    """Writes junk into every pipe it holds (the protocol's included), then runs on."""

    name = "garbage"

    def truth(self, ctx):
        print("a plugin's print() is harmless")
        # every open descriptor, whatever its number (a parent with many files open hands
        # the channel's pipes over at high numbers)
        for fd in sorted(int(x) for x in os.listdir("/proc/self/fd") if int(x) > 2):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                    os.write(fd, b"\xff" * 64)
            except OSError:
                pass
        return None


class Evaluated(Honest):
    """An honest plugin with evaluation-only figures (they need the truth, after the run)."""

    name = "evaluated"

    def evaluate(self, truth, ctx):
        share = truth.models[self.params.model].correct[ctx.stream].mean(axis=1)
        return [{"share_correct": float(v)} for v in share]


class Impostor(Honest):
    """Given the truth by evaluate(), tells the parent it has finished and that its template saw
    it exit, then waits for the next run's messages and plays that run itself, with the truth."""

    name = "impostor"

    def evaluate(self, truth, ctx):
        from uisbench.isolation import read_message, write_message

        frame = sys._getframe()
        while frame is not None and frame.f_code.co_name != "_child":
            frame = frame.f_back
        if frame is None:  # in-process: there is no next run to take
            return None
        codes = _correct_codes(
            *(truth.models[self.params.model].__dict__[k] for k in ("answer", "correct"))
        )
        inp, out = frame.f_locals["inp"], frame.f_locals["writer"]
        write_message(out, {"op": "evaluation", "figures": None})
        write_message(out, {"op": "exited", "status": 0})
        while True:
            head, arrays = read_message(inp)
            if head.get("op") == "run":
                break
        stream = arrays["stream"]
        args = {"model": self.params.model, "n": K}
        write_message(out, {"op": "call", "call": "draw", "args": args}, {"q": stream})
        _, got = read_message(inp)
        answer, handle = got["answer"], got["handle"]
        col = [
            next((j for j in range(K) if int(answer[i, j]) in codes[q]), 0)
            for i, q in enumerate(stream.tolist())
        ]
        chosen = handle[np.arange(len(col)), col]
        write_message(out, {"op": "chunk", "extra": None}, {"q": stream, "handle": chosen})
        write_message(out, {"op": "finished", "summary": {}, "want": False})
        os._exit(0)


def _protocol(frame: Any) -> tuple[int, Any] | None:
    """(the fd the run's child reads, the writer it writes) from the worker's frame, if any."""
    while frame is not None and frame.f_code.co_name != "_child":
        frame = frame.f_back
    return None if frame is None else (frame.f_locals["inp"], frame.f_locals["writer"])


class Leftover(Honest):
    """Asks for the truth for evaluate() and ends its run without reading it, so that it waits
    on the channel; the next run reads what the last one left there before drawing."""

    name = "leftover"

    def truth(self, ctx):
        import select

        from uisbench.isolation import read_message

        ends = _protocol(sys._getframe())
        if ends is None or not select.select([ends[0]], [], [], 0.5)[0]:
            return None
        head, arrays = read_message(ends[0])
        if head.get("op") != "truth":
            return None
        model = head["truth"]["models"].index(self.params.model)
        return _correct_codes(arrays[f"x{model}.answer"], arrays[f"x{model}.correct"])

    def run(self, ctx):
        from uisbench.isolation import write_message

        yield from super().run(ctx)
        ends = _protocol(sys._getframe())
        if ends is not None:  # the truth is written to the channel, then the run is over
            write_message(ends[1], {"op": "finished", "summary": {}, "want": True})
            write_message(ends[1], {"op": "evaluation", "figures": None})
            os._exit(0)

    def evaluate(self, truth, ctx):
        return None


class Probe(Honest):
    """Not a cheater: reports what its process looks like from inside (BLAS threads after
    importing scikit-learn, as the shipped routers do)."""

    name = "probe"

    def fit(self, train, ctx):
        import sklearn.linear_model  # noqa: F401 -- what a router's fit imports
        from threadpoolctl import threadpool_info

        self.blas_threads = max((i["num_threads"] for i in threadpool_info()), default=0)

    def run_summary(self):
        return {"blas_threads": self.blas_threads}


class CacheProbe(Honest):
    """Counts the files it can list in ``folder`` (the columnar cache of the bank's samples,
    correctness included, kept beside a SQLite database): a path is easy to guess."""

    name = "cache-probe"

    @dataclass
    class Params(Honest.Params):
        folder: str = ""

    def run(self, ctx):
        try:
            self.seen = len(os.listdir(self.params.folder))
        except OSError:
            self.seen = 0
        yield from super().run(ctx)

    def run_summary(self):
        return {"cache_files": self.seen}


class Syscalls(Honest):
    """Not a cheater: tries, in its run, what the children's filter denies (a new process, a
    socket) and reports what happened."""

    name = "syscalls"

    def run(self, ctx):
        import socket

        self.tried = {}
        try:
            pid = os.fork()
        except OSError:
            self.tried["fork"] = "denied"
        else:
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            self.tried["fork"] = "allowed"
        try:
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
        except OSError:
            self.tried["socket"] = "denied"
        else:
            self.tried["socket"] = "allowed"
        yield from super().run(ctx)

    def run_summary(self):
        return dict(self.tried)


class Impersonate(Honest):
    """Labels its runs as a shipped strategy's configuration: on the board they would count
    in that configuration's row."""

    name = "impersonate"

    def label(self):
        return "single:model=m"


class SingleTwin(Honest):
    """Named by reference (``uisbench_cheaters:SingleTwin``), declares a shipped strategy's
    name."""

    name = "single"


#: What a plugin can try on the user's terminal: OSC 52 sets the clipboard, CSI 2J clears the
#: screen, BEL rings, CSI as one C1 byte sets a colour.
ESCAPES = "clipboard\x1b]52;c;ZWNobyBvd25lZA==\x07 screen\x1b[2J bell\x07 c1\x9b31m"


class Escapes(Honest):
    """Writes terminal control sequences where the user's terminal shows them: print() and
    sys.stderr in its run, and, with ``fail``, its error line."""

    name = "escapes"

    @dataclass
    class Params:
        model: str = "m"
        fail: bool = False

    def run(self, ctx):
        print("printed", ESCAPES, flush=True)
        sys.stderr.write("written " + ESCAPES + "\n")
        sys.stderr.flush()
        if self.params.fail:
            raise RuntimeError("failed " + ESCAPES)
        yield from super().run(ctx)


#: Bigger than any figure a run stores: a strategy's summary, one decision's ``extra``.
BLOAT = "x" * 2_000_000


class BloatSummary(Honest):
    """A run summary of megabytes: every run page of the board would carry it."""

    name = "bloat-summary"

    def run_summary(self) -> dict[str, Any]:
        return {"pad": BLOAT}


class BloatExtra(Honest):
    """Megabytes of ``extra`` on every decision: the database grows by gigabytes a run."""

    name = "bloat-extra"

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        for chunk in super().run(ctx):
            yield Decisions(chunk.q, chunk.handle, extra=[{"pad": BLOAT[:50_000]}] * len(chunk.q))


class BloatFigures(Honest):
    """Evaluation figures of megabytes per query (merged into every decision's ``extra``)."""

    name = "bloat-figures"

    def evaluate(self, truth, ctx):
        return [{"pad": BLOAT[:50_000]}] * len(ctx.stream)


class BloatParams(Honest):
    """Options of megabytes that its label leaves out: stored with every run, on its page."""

    name = "bloat-params"

    @dataclass
    class Params:
        model: str = "m"
        note: str = BLOAT[:1_000_000]

    def label(self):
        return f"{self.name}:model={self.params.model}"


class Hog(Honest):
    """Maps three quarters of the machine's memory (untouched, so the kernel grants it): a
    strategy that then filled it would take the machine's memory from everything else."""

    name = "hog"

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        hog = np.empty(int(ram * 0.75), dtype=np.uint8)  # noqa: F841 -- mapped, not touched
        yield from super().run(ctx)


class Partial(Honest):
    """Decides half of the test queries and stops."""

    name = "partial"

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        half = ctx.stream[: len(ctx.stream) // 2]
        draw = ctx.meter.draw(self.params.model, half, K)
        yield Decisions(half, draw.handle[:, 0])
