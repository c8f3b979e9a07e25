"""The strategy's side of the process boundary (:mod:`uisbench.isolation` is the parent's).

:func:`template_main` is the fork server: started once per working set, it imports the
strategies (and each plugin's module on first use), holds the training split and the blind test
view, warms the query-feature cache on the prompts, and forks one child per run. It never holds
the test truth, and it is non-dumpable. The child closes the template's own pipes, loads the
seccomp filter, builds the strategy, and runs it against a :class:`~uisbench.meter.MeterClient`
whose every call goes over the children's channel (commits and charges unanswered, see
:data:`~uisbench.isolation.UNANSWERED`); after its last decision it may receive the truth for
:meth:`Strategy.evaluate` (the parent decides), then exits: nothing survives between runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import select
import signal
import sys
import traceback
from typing import Any

import numpy as np

from uisbench.blind import BlindView
from uisbench.errors import UisbenchError
from uisbench.fitcache import FitCache
from uisbench.isolation import (
    UNANSWERED,
    SeccompLoader,
    read_message,
    set_nondumpable,
    unpack_bank,
    unpack_view,
    write_message,
)
from uisbench.meter import MeterClient, overhead_charges
from uisbench.strategies.base import (
    STRATEGIES,
    RunContext,
    Strategy,
    is_reference,
    option_lines,
)
from uisbench.strategies.references import load_class

#: Texts of strategies named ``FILE.py:Class``, as the parent read them (op ``source``).
_SOURCES: dict[str, bytes] = {}


def strategy_class(name: str) -> type:
    """A registered strategy by name, or one named by reference (loaded once here)."""
    if is_reference(name):
        return load_class(name, _SOURCES.get(name.rpartition(":")[0]))
    return STRATEGIES.get(name)


def _warm(view: BlindView) -> None:
    """Load the query-embedding cache (prompts' vectors, read-only here) once, so that no
    child reloads it; what it lacks a child computes (and charges) as in-process."""
    if not view.prompts:
        return
    from uisbench.strategies import features

    with contextlib.suppress(Exception):  # a cache only
        features._load_disk()


_WARMED: set[str] = set()  # feature kinds the test prompts were embedded with here


def _warm_queries(view: BlindView) -> None:
    """Embed the test prompts with each feature kind a fit here has used, once per template:
    in-process the first run's vectors serve the next runs, and a child's are lost at its exit,
    so without this every run of a router or bandit embeds the test queries again (3 ms a run
    with hashed features on the shipped bank; MiniLM, where the disk cache lacks them, far
    more). Prompts are not truth; each run still charges its own embedding, as in-process."""
    if not view.prompts:
        return
    from uisbench.strategies import features

    for kind in features.used_kinds():
        if kind not in _WARMED:
            _WARMED.add(kind)
            with contextlib.suppress(Exception):  # a cache only: the child embeds what is missing
                features.embed([p or "" for p in view.prompts], kind)


def _limit(memory: int) -> None:
    """Bound the address space of this process and its children (soft and hard alike: with no
    capability left, a plugin cannot raise it) and turn core files off."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    memory = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def template_main(data: list[int], memory: int) -> None:
    """The fork server: holds the working set (training split, blind view), forks one child
    per run; it never receives the test truth. Its own messages with the parent go over its
    stdin and stdout, which no child keeps; each run's child talks over ``data`` (the fds of
    its reading and writing ends); ``memory`` bounds its address space (and its children's)."""
    set_nondumpable()
    _limit(memory)
    # numpy 2 imports numpy.ma on first use, and np.unique uses it: 28 ms in every run's child
    # of a strategy whose fit did not call it (each child imports it again, then exits)
    import numpy.ma  # noqa: F401

    with contextlib.suppress(OSError, AttributeError):  # orphans of its children stay visible
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    inp, out = os.dup(0), os.dup(1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # a plugin's print() goes to stderr, not into the protocol
    writer = os.fdopen(out, "wb", buffering=1 << 16)
    channel = (data[0], os.fdopen(data[1], "wb", buffering=1 << 16))
    train = view = loader = None
    while True:
        _idle(inp, channel[0])
        try:
            head, arrays = read_message(inp, None, 1 << 62)
        except EOFError:
            os._exit(0)
        op = head.get("op")
        if op == "init":
            if "train" in head:  # else a template that only answers questions (list)
                train = unpack_bank(head["train"], arrays, "t")
                view = unpack_view(head["view"], arrays)
                _warm(view)
            loader = SeccompLoader(arrays["seccomp"].tobytes()) if "seccomp" in arrays else None
            write_message(writer, {"op": "ready"})
        elif op == "source":
            _SOURCES[str(head.get("path"))] = arrays["text"].tobytes()
        elif op in ("describe", "sweep", "about"):
            write_message(writer, _answer_about(head))
        elif op == "run":
            _fork_run((inp, out), channel, head, arrays, train, view, loader)


def _idle(inp: int, channel: int) -> None:
    """Wait for the parent's next message (no child is alive), discarding what the parent wrote
    on the children's channel that no child read: a reply, or the truth, left by a child that
    ended without reading it. The parent wrote all of it before this next message, so the next
    child starts on an empty channel, and a large write left unread does not block the parent."""
    while True:
        ready = select.select([inp, channel], [], [])[0]
        while select.select([channel], [], [], 0)[0] and os.read(channel, 1 << 16):
            pass
        if inp in ready:
            return


def _answer_about(head: dict[str, Any]) -> dict[str, Any]:
    try:
        cls = strategy_class(head["name"])
        if head["op"] == "about":
            about = {"description": cls.description, "family": cls.family}
            return {"op": "about", **about, "options": option_lines(cls)}
        if head["op"] == "sweep":
            settings = cls.sweep(head["models"], head["max_k"])
            return {"op": "sweep", "settings": settings, "needs_answers": cls.needs_answers}
        strat = _build(cls, head["params"])
        return {"op": "describe", **_description(strat)}
    except UisbenchError as exc:
        return {"op": "error", "message": str(exc)}
    except Exception as exc:  # a plugin's own bug
        return {"op": "error", "message": f"{type(exc).__name__}: {exc}"}


def _build(cls: type, params: dict[str, Any]) -> Any:
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


def _description(strat: Any) -> dict[str, Any]:
    return {
        "name": strat.name,
        "label": strat.label(),
        "family": strat.family,
        "upper_bound": bool(strat.upper_bound),
        "needs_answers": bool(strat.needs_answers),
        "params": dataclasses.asdict(strat.params),
        "evaluates": type(strat).evaluate is not Strategy.evaluate,
    }


#: The fit cache of this template (one per working set, like a Runner's): fits of the training
#: split shared by the configurations forked from here; it never sees test truth.
_TEMPLATE_FITS = FitCache()


class _NoMeterHere(Exception):
    """A fit that asks the meter cannot be done in the template; the child fits instead."""


def _refuse(op: str, args: dict[str, Any]) -> dict[str, Any]:
    raise _NoMeterHere(op)


def _prefit(cls: type, head: dict[str, Any], stream: np.ndarray, train, view):
    """(strategy, context) fitted here on the training split, or (None, None).

    Fitting in the template (which holds no test truth) before the fork keeps what the
    strategy's code caches at module level from the training split warm for the next runs, as
    in-process; the child then runs with its meter connected. A fit that needs the meter or
    fails is left to the child, which reports any error itself.
    """
    try:
        strat = _build(cls, head["params"])
        ctx = RunContext(MeterClient(view, _refuse), stream, train, head["seed"])
        ctx.cache = _TEMPLATE_FITS  # one fit cache for this template's working set
        strat.fit(train, ctx)
    except Exception:
        return None, None
    _warm_queries(view)
    return strat, ctx


def _children() -> list[int]:
    """Processes this template still has (a plugin's helper would be one)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
    return out


def _fork_run(own, channel, head, arrays, train, view, loader: SeccompLoader | None) -> None:
    """One run's child. Its channel first gets the run's mark (the token of the header), so the
    parent skips whatever an earlier child left there; the child closes the template's own
    pipes (``own``) before anything else: it never reads another run's header, nor writes as
    its template."""
    inp, writer = channel
    cls = strategy_class(head["name"])  # imported here, in the template: the next fork is warm
    stream = arrays["stream"]
    strat, ctx = _prefit(cls, head, stream, train, view)
    write_message(writer, {"op": "start", "token": head.get("token")})
    if _children():  # e.g. started at import by a plugin, to carry state from run to run
        write_message(writer, {"op": "error", "message": STRAY})
        write_message(writer, {"op": "exited", "status": 1 << 8})
        return
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd in own:
                os.close(fd)
            if head.get("seccomp"):
                try:
                    if loader is None:
                        raise OSError("the template got no filter")
                    loader()
                except OSError as exc:
                    write_message(writer, {"op": "error", "message": f"no seccomp filter: {exc}"})
                    os._exit(1)
            code = _child(inp, writer, head, stream, train, view, cls, strat, ctx)
        finally:
            with contextlib.suppress(Exception):  # what is still buffered goes before the end
                writer.flush()
            os._exit(code)
    _until_gone(pid, own[0])
    _, status = os.waitpid(pid, 0)
    if head.get("wipe"):  # the sandbox's /tmp: nothing a child wrote reaches the next one
        _empty_folder("/tmp")
    write_message(writer, {"op": "exited", "status": status})


def _until_gone(pid: int, inp: int) -> None:
    """Wait for the child to end; kill it when the parent writes first (the next run's header
    or a question): the run was over for the parent, whatever the child does on."""
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):  # no pidfd here: wait for the child's own end
        return
    try:
        if pidfd not in select.select([pidfd, inp], [], [])[0]:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)


def _empty_folder(folder: str, device: int | None = None) -> None:
    """Remove what ``folder`` holds, but not what is mounted in it: the read-only binds of code
    that lives under /tmp (a plugin's folder, the working directory on ``sys.path``) are the
    sandbox's own and cannot hold anything a child wrote; walking them cost milliseconds a run."""
    if device is None:
        device = os.stat(folder).st_dev
    for entry in os.scandir(folder):
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_dev != device:
                continue  # a mount point
            if entry.is_dir(follow_symlinks=False):
                _empty_folder(entry.path, device)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)


STRAY = "the strategy's code left a process running in its template; refused"


def _unanswered(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """The reply to a call the parent does not answer (:data:`UNANSWERED`), known here: a
    commit's is empty; a charge's is :func:`~uisbench.meter.overhead_charges` of its
    arguments, the parent's own rule (a bad argument raises here, before anything is sent)."""
    if op == "commit":
        return {}
    q = args["q"]
    charges = overhead_charges(len(q), args["flops"], args["dollars"], args["latency_s"])
    return {"charge_" + k: v for k, v in charges.items()}


def _child(inp, writer, head, stream, train, view, cls, strat, ctx) -> int:
    def call(op: str, args: dict[str, Any]) -> dict[str, Any]:
        arrs = {k: v for k, v in args.items() if isinstance(v, np.ndarray)}
        rest = {k: v for k, v in args.items() if k not in arrs}
        if op in UNANSWERED:  # checked and applied by the parent in order, before any later call
            reply = _unanswered(op, args)
            write_message(writer, {"op": "call", "call": op, "args": rest}, arrs, flush=False)
            return reply
        write_message(writer, {"op": "call", "call": op, "args": rest}, arrs)
        reply, out = read_message(inp)
        if reply.get("op") != "reply":
            raise UisbenchError(str(reply.get("message", "the parent refused the call")))
        return {**reply.get("values", {}), **out}

    try:
        if strat is None:
            strat = _build(cls, head["params"])
            ctx = RunContext(MeterClient(view, call), stream, train, head["seed"])
            strat.fit(ctx.train, ctx)
        else:
            ctx.meter._call = call  # fitted in the template: connect its meter now
        for chunk in strat.run(ctx):
            arrs = {
                "q": np.asarray(chunk.q, np.int64),
                "handle": np.asarray(chunk.handle, np.int64),
            }
            if chunk.reward is not None:
                arrs["reward"] = np.asarray(chunk.reward, np.float64)
            # no acknowledgement: the parent commits it before it answers any later call
            write_message(writer, {"op": "chunk", "extra": chunk.extra}, arrs, flush=False)
        want = _description(strat)["evaluates"]
        write_message(writer, {"op": "finished", "summary": strat.run_summary(), "want": want})
        if want:
            reply, arrays = read_message(inp)
            if reply.get("op") == "truth":  # all decisions committed; OS-level isolation
                figures = strat.evaluate(unpack_bank(reply["truth"], arrays, "x"), ctx)
                write_message(writer, {"op": "evaluation", "figures": figures})
        return 0
    except BaseException as exc:  # reported as one line; the parent ends the run
        msg = str(exc) if isinstance(exc, UisbenchError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, UisbenchError):
            traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(Exception):
            write_message(writer, {"op": "error", "message": msg})
        return 1
