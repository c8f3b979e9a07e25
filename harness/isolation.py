"""Strategies behind a process boundary: a fork server, one child per run, a checked protocol.

The parent (the :class:`~uisbench.runner.Runner`) holds the bank with its truth, the meter and
the database, and writes every row. A strategy not shipped with uisbench runs in a child process
that holds only the strategy, the training split, the blind test view
(:class:`~uisbench.blind.BlindView`) and a :class:`~uisbench.meter.MeterClient` whose transport
is a pipe to the parent. Each run's child is forked from a warm *template* process (started once
per working set) that imported :mod:`uisbench.strategies` and the plugin's module but never held
the test truth, so nothing survives from one run to the next. Seeds of one configuration do not
share a child: they replay the same test queries, so what one run learnt from ``feedback`` or
``evaluate`` (which answer codes are right) would score the next.

Isolation, where the machine has it: the template runs under bubblewrap (no network, fresh
namespaces, the environment cleared, every bind read-only: the interpreter, the site-packages and
the code; not the database, nor the banks shipped with uisbench), is non-dumpable
(``PR_SET_DUMPABLE`` 0, so its siblings cannot write its ``/proc/pid/mem``), may map at most
:func:`strategy_memory` (``RLIMIT_AS``, inherited by its children; no core files), and each child
loads a seccomp filter (pyseccomp) denying new processes, exec, ptrace and
``process_vm_*``, sockets, SysV IPC and keyrings. Without bubblewrap the template is a plain
child process with an empty environment and a temporary working directory, and no database path
in its argv or environment (one note says so).

Two channels: the template's stdin and stdout (the working set, questions about strategies, each
run's header) and the children's pipe pair (meter calls and replies, decisions, the end of the
run). A child closes its template's stdin and stdout before anything else, and the template
reads the next header only once the last run's child is gone (it kills a child that outlives
its run): a child never reads another run's messages nor speaks for its template. Each run
begins with a mark on the children's channel carrying a token of that run's header; what an
earlier child left there is skipped (:meth:`ForkServer._begin`). Meter calls whose reply the
child knows (a commit, a charge) and decisions are not answered: the parent applies them in
order before any later call, so one run costs one round trip per draw or feedback.

Nothing from the child is unpickled: every message is a JSON header plus raw numpy arrays of a
declared dtype and shape (:func:`read_message`), each size-bounded and checked by the parent. A
child that crashes, hangs past the timeout (reading or, through :class:`TimedWriter`, not
reading what the parent writes) or breaks the protocol ends its run with one error.
:meth:`Strategy.evaluate` (which reads the test truth) runs in the child only after its last
decision is committed and only under OS-level isolation (bubblewrap and seccomp); else it is
skipped with one note.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import functools
import importlib.util
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from uisbench.blind import BlindView, ModelView
from uisbench.errors import UisbenchError
from uisbench.meter import OPS, MeterService
from uisbench.store.arrays import BankArrays, ModelArrays
from uisbench.terminal import COMMANDS, forward, printable

if TYPE_CHECKING:
    from uisbench.strategies.references import Reference

#: dtypes a message may carry (no object arrays: nothing is unpickled).
DTYPES = {
    "bool": np.bool_,
    "uint8": np.uint8,
    "int32": np.int32,
    "int64": np.int64,
    "float32": np.float32,
    "float64": np.float64,
}
MAX_HEADER = 16 << 20  # bytes of a message's JSON header
MAX_ARRAYS = 256 << 20  # bytes of a child's message's arrays
TMP_BYTES = 256 << 20  # the sandbox's /tmp
MAX_TEXT = 500  # characters of an error line or a name from the child
MAX_OPTIONS = 64  # option lines of a strategy's description (``uisbench list strategies -v``)
DEFAULT_TIMEOUT_S = 1800.0  # a child silent this long is hung
MAX_STALE = 1024  # messages a finished child may leave on the channel (skipped)
MIN_MEMORY = 6 << 30  # address space a strategy's process may always map (MiniLM: ~2.8 GiB)
_LEN = struct.Struct("<Q")
#: A strategy process's environment beyond its home and the embedding cache. It is one of
#: ``--jobs`` running at once: BLAS and OpenMP keep to one thread there (OpenBLAS's idle threads
#: otherwise spin on the other cores: measured 2.3× the template's CPU for the same fits, and
#: 3.6× its children's, on the 2-core machine). joblib (imported by scikit-learn) stays serial
#: without a warning on the user's terminal: no process may start there, and /dev/shm is
#: read-only.
STRATEGY_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JOBLIB_MULTIPROCESSING": "0",
}
#: Meter calls the parent applies without answering: the child knows their reply (a commit's is
#: empty, a charge's follows from its arguments) and goes on; the pipe keeps them in order.
UNANSWERED = ("commit", "charge")


# ---------------------------------------------------------------------------- framing
def write_message(
    fh: BinaryIO | TimedWriter,
    header: dict[str, Any],
    arrays: dict | None = None,
    flush: bool = True,
) -> None:
    """One message: 8-byte length, the JSON header (naming each array's dtype and shape), the
    arrays' bytes in order. ``flush=False`` leaves it in ``fh``'s buffer, to go with the next
    message that is flushed (one write, one wake-up of the reader)."""
    arrays = {k: _contiguous(v) for k, v in (arrays or {}).items()}
    for k, v in arrays.items():
        if v.dtype.name not in DTYPES:
            raise UisbenchError(f"protocol: array {k} of dtype {v.dtype} cannot be sent")
    head = dict(header, arrays=[[k, v.dtype.name, list(v.shape)] for k, v in arrays.items()])
    data = json.dumps(head, default=_jsonable).encode()
    fh.write(_LEN.pack(len(data)) + data)
    for v in arrays.values():
        fh.write(memoryview(v).cast("B"))
    if flush:
        fh.flush()


class TimedWriter:
    """The parent's end of a pipe to a strategy's process: writes buffered until a flush, which
    gives up after ``timeout_s`` without progress. A process that stops reading (the truth,
    a large reply, a run header) then ends its run with a timeout instead of blocking the
    parent on a full pipe forever."""

    def __init__(self, fd: int, timeout_s: float) -> None:
        os.set_blocking(fd, False)
        self.fd, self.timeout_s = fd, timeout_s
        self._buf = bytearray()

    def write(self, data: bytes | memoryview) -> int:
        self._buf += data
        return len(data)

    def flush(self, timeout_s: float | None = None) -> None:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        view, done = memoryview(self._buf), 0
        try:
            while done < len(view):
                try:
                    done += os.write(self.fd, view[done:])
                    continue
                except BlockingIOError:
                    pass
                if not select.select([], [self.fd], [], timeout_s)[1]:
                    raise UisbenchError(
                        f"the strategy's process read nothing for {timeout_s:g} s (timeout)"
                    )
        finally:
            view.release()
            del self._buf[:done]

    def close(self) -> None:
        os.close(self.fd)


def _contiguous(v: Any) -> np.ndarray:
    v = np.asarray(v)
    return v if v.flags.c_contiguous else v.copy(order="C")


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (np.ndarray, tuple, set)):
        return list(x.tolist() if isinstance(x, np.ndarray) else x)
    raise TypeError(f"{type(x).__name__} is not JSON")


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        part = os.read(fd, min(n - got, 1 << 22))
        if not part:
            raise EOFError
        chunks.append(part)
        got += len(part)
    return b"".join(chunks)


def read_message(
    fd: int, deadline: float | None = None, max_arrays: int = MAX_ARRAYS
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one message (see :func:`write_message`), refusing any that is malformed or larger
    than the bounds: raises :class:`ProtocolError` (or EOFError / TimeoutError)."""
    (size,) = _LEN.unpack(_read_exact(fd, _LEN.size, deadline))
    if size > MAX_HEADER:
        raise ProtocolError(f"a message header of {size} bytes (at most {MAX_HEADER})")
    try:
        head = json.loads(_read_exact(fd, size, deadline))
    except (ValueError, RecursionError):
        raise ProtocolError("a message header that is not JSON") from None
    specs = head.pop("arrays", None) if isinstance(head, dict) else None
    if not isinstance(head, dict) or not isinstance(specs, list):
        raise ProtocolError("a message that is not a JSON object with its array list")
    shapes, total = [], 0
    for spec in specs:
        ok = isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str)
        ok = ok and spec[1] in DTYPES and isinstance(spec[2], list) and len(spec[2]) <= 2
        ok = ok and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in spec[2])
        if not ok:
            raise ProtocolError(f"a bad array declaration {str(spec)[:80]}")
        dtype = np.dtype(DTYPES[spec[1]])
        n = int(np.prod(spec[2], dtype=np.int64)) * dtype.itemsize
        total += n
        if total > max_arrays:
            raise ProtocolError(f"a message with over {max_arrays} bytes of arrays")
        shapes.append((spec[0], dtype, tuple(spec[2]), n))
    arrays = {}
    for name, dtype, shape, n in shapes:
        buf = bytearray(_read_exact(fd, n, deadline))
        arrays[name] = np.frombuffer(buf, dtype=dtype).reshape(shape)
    return head, arrays


class ProtocolError(UisbenchError):
    """A message from a strategy's process that breaks the protocol."""


# ---------------------------------------------------------------------------- working set
_MODEL_FIELDS = [f.name for f in dataclasses.fields(ModelArrays)]


def pack_bank(bank: BankArrays, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A bank as a JSON part and arrays (parent → child only)."""
    head = {
        "bank": bank.bank,
        "bank_id": int(bank.bank_id),
        "synthetic": bool(bank.synthetic),
        "query_keys": list(bank.query_keys),
        "splits": [None if s is None else str(s) for s in bank.splits.tolist()],
        "models": list(bank.models),
        "model_meta": bank.model_meta,
        "answer_labels": [None if x is None else str(x) for x in bank.answer_labels.tolist()],
        "prompts": bank.prompts,
        "digest": bank.digest,
        "embedders": bank.embedders,
    }
    arrays = {f"{prefix}query_ids": bank.query_ids}
    for i, arr in enumerate(bank.models.values()):
        for f in _MODEL_FIELDS:
            arrays[f"{prefix}{i}.{f}"] = getattr(arr, f)
    return head, arrays


def unpack_bank(head: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> BankArrays:
    models = {
        m: ModelArrays(**{f: arrays[f"{prefix}{i}.{f}"] for f in _MODEL_FIELDS})
        for i, m in enumerate(head["models"])
    }
    return BankArrays(
        bank=head["bank"],
        bank_id=head["bank_id"],
        synthetic=head["synthetic"],
        query_ids=arrays[f"{prefix}query_ids"],
        query_keys=head["query_keys"],
        splits=np.asarray(head["splits"], dtype=object),
        models=models,
        model_meta=head["model_meta"],
        answer_labels=np.asarray(head["answer_labels"], dtype=object),
        prompts=head["prompts"],
        digest=head["digest"],
        embedders=head["embedders"],
    )


def pack_view(view: BlindView) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    head = {
        "bank": view.bank,
        "n_queries": view.n_queries,
        "models": list(view.models),
        "model_meta": view.model_meta,
        "prompts": view.prompts,
        "embedders": view.embedders,
    }
    return head, {f"view{i}": v.n_avail for i, v in enumerate(view.models.values())}


def unpack_view(head: dict[str, Any], arrays: dict[str, np.ndarray]) -> BlindView:
    models = {m: ModelView(arrays[f"view{i}"]) for i, m in enumerate(head["models"])}
    meta, prompts, embedders = head["model_meta"], head["prompts"], head["embedders"]
    return BlindView(head["bank"], head["n_queries"], models, meta, prompts, embedders)


# ---------------------------------------------------------------------------- OS isolation
@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """Can bubblewrap start this Python here (user namespaces allowed)?"""
    argv = _bwrap_argv([], None)
    if not argv:
        return False
    try:
        probe = subprocess.run(
            [*argv, _python(), "-I", "-S", "-c", "import json"],
            capture_output=True,
            timeout=20,
            env={},
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def seccomp_available() -> bool:
    return seccomp_program() is not None


def isolation_layers() -> tuple[str, ...]:
    """The layers a strategy's process gets on this machine (for notes and the bench)."""
    layers = ["process", "fork-per-run", "empty-env"]
    if bwrap_works():
        layers += ["bwrap:user,pid,net,ipc,uts,mount", "read-only", "non-dumpable"]
        if seccomp_available():
            layers.append("seccomp")
    return tuple(layers)


def os_isolated() -> bool:
    """OS-level isolation (bubblewrap and seccomp): the bar for handing a child the truth."""
    return bwrap_works() and seccomp_available()


def feature_cache() -> str | None:
    """The query-embedding cache folder (prompts' vectors, no truth), bound read-only."""
    root = os.environ.get("UISBENCH_CACHE") or os.path.expanduser("~/.cache/uisbench")
    return os.path.realpath(root) if os.path.isdir(root) else None


def strategy_memory() -> int:
    """Bytes of address space a strategy's process (template and run children) may map
    (``RLIMIT_AS``): half the machine's memory, at least :data:`MIN_MEMORY`. A plugin that
    would take more ends its run with a MemoryError instead of the machine's memory."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(MIN_MEMORY, ram // 2)


def _python() -> str:
    return os.path.realpath(sys.executable)


#: uisbench's packages (their folders are bound read-only; found, not imported).
PACKAGES = (
    "uisbench",
    "uisbench.strategies",
    "uisbench.tasks",
    "uisbench.results",
    "uisbench.site",
)


def _locations(package: str) -> list[str]:
    """The package's folders as real paths, with the one its ``__init__`` is in (an editable
    install's package folder holds links to it)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return []
    found = [os.path.realpath(d) for d in spec.submodule_search_locations or []]
    if spec.origin:
        found.append(os.path.dirname(os.path.realpath(spec.origin)))
    return list(dict.fromkeys(found))


def _bind_roots() -> tuple[list[str], list[str], list[str]]:
    """(sys.path entries, site dirs, code dirs) the template needs, as real paths.

    Left out: the working folder, which ``python -m`` puts on ``sys.path`` but which holds the
    user's banks and databases (a strategy module there is named by reference and bound alone,
    :meth:`ForkServer.use`), and any folder holding ``/tmp`` (bound, it would replace the
    sandbox's own empty /tmp with the machine's)."""
    here = os.path.realpath(os.getcwd())
    sites = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    path = [
        p
        for p in sys.path
        if p
        and os.path.isdir(p)
        and p not in sites
        and os.path.realpath(p) != here
        and not Path("/tmp").is_relative_to(os.path.realpath(p))
    ]
    code = [d for pkg in PACKAGES for d in _locations(pkg)]
    return path, sites, code


def _bwrap_argv(
    binds: list[str], hidden: list[tuple[str, str]] | None, late: list[str] | None = None
) -> list[str]:
    exe = shutil.which("bwrap")
    if exe is None:
        return []
    argv = [exe, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
    # /tmp: the one writable place (libraries need one); emptied after every run's child.
    # Mounted before the binds, so code that lives under /tmp (a plugin's folder) is bound on it.
    argv += ["--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--setenv", "TMPDIR", "/tmp"]
    roots = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/etc/alternatives"]
    for extra in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(_python()), *binds):
        roots.append(os.path.realpath(extra))
    done: set[str] = set()
    for path in roots:
        if path in done:
            continue
        done.add(path)
        if os.path.islink(path):  # merged /usr: /lib -> usr/lib
            argv += ["--symlink", os.readlink(path), path]
        else:
            argv += ["--ro-bind-try", path, path]
    for source, target in hidden or []:
        argv += ["--ro-bind", source, target]
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    # packages of strategies named by module (uisbench.strategies.references); what is hidden
    # inside them stays hidden
    for path in late or []:
        argv += ["--ro-bind", path, path]
    for source, target in hidden or []:
        if any(Path(target).is_relative_to(p) for p in late or []):
            argv += ["--ro-bind", source, target]
    argv += ["--remount-ro", "/"]
    return [*argv, "--chdir", "/"]


_BOOT = (
    "import sys,json;h=json.loads(sys.argv[1]);sys.path[1:1]=h['path'];"
    "import site;[site.addsitedir(d) for d in h['sites']];"
    "from uisbench.strategies.worker import template_main;template_main(h['data'],h['memory'])"
)


def set_nondumpable() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


@functools.lru_cache(maxsize=1)
def seccomp_program() -> bytes | None:
    """The children's seccomp filter as BPF (compiled once, in the template), or None when
    pyseccomp/libseccomp are missing: it denies new processes, exec, ptrace and
    ``process_vm_*``, signals to other processes, sockets, SysV IPC and keyrings."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError):
        return None
    filt = sc.SyscallFilter(sc.ALLOW)
    denied = (
        "fork vfork execve execveat socket socketpair ptrace process_vm_readv process_vm_writev "
        "pidfd_getfd pidfd_open pidfd_send_signal kill rt_sigqueueinfo rt_tgsigqueueinfo "
        "kcmp keyctl add_key request_key shmget shmat msgget msgsnd "
        "semget mq_open bpf userfaultfd perf_event_open mount umount2 unshare setns "
        "pivot_root chroot personality mknod mknodat"
    ).split()
    for name in denied:
        with contextlib.suppress(Exception):  # a name this kernel's table lacks
            filt.add_rule(sc.ERRNO(errno.EPERM), name)
    filt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, 0x00010000, 0))
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as fh:
        filt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompLoader:
    """The compiled filter made ready to install: the libc function, the program's buffer and
    its header are built once (in the template), so that a run's child installs it with two
    ``prctl`` calls (building them in each child took 0.8 ms of every run's start). Calling it
    raises if the kernel refuses, so a child never runs unfiltered when it was meant to be."""

    def __init__(self, bpf: bytes) -> None:
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl
        self._buf = ctypes.create_string_buffer(bpf, len(bpf))
        self._prog = _SockFprog(len(bpf) // 8, ctypes.cast(self._buf, ctypes.c_void_p))
        self._ref = ctypes.byref(self._prog)

    def __call__(self) -> None:
        if self._prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if self._prctl(22, 2, self._ref, 0, 0) != 0:  # PR_SET_SECCOMP, MODE_FILTER
            raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")


# ---------------------------------------------------------------------------- parent side
@dataclass
class Described:
    """A strategy as its own process describes it; the parent never imports its module."""

    name: str
    family: str
    upper_bound: bool
    needs_answers: bool
    params: Any  # a dataclass instance (``dataclasses.asdict`` works on it)
    evaluates: bool
    _label: str
    #: what the strategy's process was asked to build: a registered name or a reference
    source: str = ""

    def label(self) -> str:
        return self._label


def _text(x: Any, what: str) -> str:
    if not isinstance(x, str) or len(x) > MAX_TEXT or "\n" in x or COMMANDS.search(x):
        raise ProtocolError(f"{what} is not one short line of text")
    return x


def _described(reply: dict[str, Any]) -> Described:
    params = reply.get("params")
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ProtocolError("a strategy's params are not a JSON object")
    fields = [
        (k, Any, dataclasses.field(default=tuple(v) if isinstance(v, list) else v))
        for k, v in params.items()
    ]
    Params = dataclasses.make_dataclass("Params", fields)
    flags = [reply.get(k) for k in ("upper_bound", "needs_answers", "evaluates")]
    if not all(isinstance(f, bool) for f in flags):
        raise ProtocolError("a strategy's description has non-boolean flags")
    return Described(
        _text(reply.get("name"), "the strategy's name"),
        _text(reply.get("family"), "the strategy's family"),
        *flags[:2],
        Params(),
        flags[2],
        _text(reply.get("label"), "the strategy's label"),
    )


class ForkServer:
    """The template process of one working set (training split and blind view), started on
    first use; :meth:`run` forks a child per run. Killed and restarted after any failure.
    Without a working set (``train`` and ``view`` None) it only answers questions about
    strategies (:meth:`about`, :meth:`describe`, :meth:`sweep`)."""

    def __init__(
        self,
        train: BankArrays | None,
        view: BlindView | None,
        hide: list[str],
        timeout_s: float,
    ) -> None:
        self.train, self.view, self.hide = train, view, hide
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None
        self._empty = tempfile.mkdtemp(prefix="uisbench-empty-")
        self._noted = False
        self._described: dict[str, Described] = {}
        self._din: TimedWriter | None = None  # the run's child reads this (replies, truth)
        self._tin: TimedWriter | None = None  # the template's stdin
        self._dout: int | None = None  # what the run's child (and its template) write
        self.roots: list[str] = []  # import roots of strategies named module:Class
        self.tops: list[str] = []  # what of each root is bound: the package or the module
        self.sources: dict[str, bytes] = {}  # texts of strategies named FILE.py:Class
        self._sent: set[str] = set()

    def use(self, ref: Reference) -> None:
        """Make a strategy named by reference loadable by the template: a module's import root
        on its path (the template restarts to get it), a file's text sent to it."""
        if ref.root is not None and ref.top not in self.tops:
            if ref.root not in self.roots:
                self.roots.append(ref.root)
            self.tops.append(ref.top or ref.root)
            self.close()
        if ref.source is not None and self.sources.get(ref.target) != ref.source:
            if ref.target in self.sources:  # edited since it was sent: a fresh template
                self.close()
                self._described.clear()
            self.sources[ref.target] = ref.source

    # -------------------------------------------------------------- lifecycle
    def _start(self) -> None:
        path, sites, code = _bind_roots()
        path = [*self.roots, *path]
        din, self_din = os.pipe()  # the children's channel, beside the template's stdin/stdout
        self_dout, dout = os.pipe()
        data = [din, dout]
        boot = {"path": path, "sites": sites, "data": data, "memory": strategy_memory()}
        boot = json.dumps(boot)  # no database
        argv = [_python(), "-I", "-S", "-c", _BOOT, boot]
        cache = feature_cache()
        env = {"HOME": self._empty, "UISBENCH_CACHE": cache or self._empty, **STRATEGY_ENV}
        if bwrap_works():
            binds = path[len(self.roots) :] + sites + code + ([cache] if cache else [])
            hidden = self._hidden(binds + self.tops)
            sandbox = _bwrap_argv(binds, hidden, self.tops)
            for key, value in env.items():
                sandbox[-2:-2] = ["--setenv", key, value]
            argv = [*sandbox, *argv]
        elif not self._noted:
            print("note: strategy isolation is process-only here (no bubblewrap)", file=sys.stderr)
            self._noted = True
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # shown on ours without control sequences
            env=env,
            cwd=self._empty,
            start_new_session=True,
            close_fds=True,
            pass_fds=data,
        )
        for fd in data:
            os.close(fd)
        assert self.proc.stderr is not None
        forward(os.dup(self.proc.stderr.fileno()), "uisbench-strategy-output")
        self.proc.stderr.close()
        self._din, self._dout = TimedWriter(self_din, self.timeout_s), self_dout
        assert self.proc.stdin is not None
        self._tin = TimedWriter(self.proc.stdin.fileno(), self.timeout_s)
        init: dict[str, Any] = {"op": "init"}
        arrays: dict[str, np.ndarray] = {}
        if self.train is not None and self.view is not None:  # else: questions only
            init["train"], train_arrays = pack_bank(self.train, "t")
            init["view"], view_arrays = pack_view(self.view)
            arrays = {**train_arrays, **view_arrays}
        bpf = seccomp_program()  # compiled here: the sandbox has no ldconfig to find libseccomp
        if bpf is not None:
            arrays["seccomp"] = np.frombuffer(bpf, dtype=np.uint8)
        write_message(self._tin, init, arrays, flush=False)
        self._tin.flush(max(self.timeout_s, 60.0))  # the template reads it once it has started
        reply, _ = self._read(time.monotonic() + max(self.timeout_s, 60.0))
        if reply.get("op") != "ready":
            raise ProtocolError("the strategy process did not start")
        self._sent = set()

    def _hidden(self, binds: list[str]) -> list[tuple[str, str]]:
        """Read-only empty stand-ins over what must not be reachable inside the binds: the
        database files, their columnar cache folder and the bank folder shipped with uisbench."""
        out = []
        for folder in _locations("uisbench"):
            shipped = (Path(folder) / "data").resolve()
            if shipped.is_dir() and (self._empty, str(shipped)) not in out:
                out.append((self._empty, str(shipped)))
        roots = [Path(os.path.realpath(b)) for b in binds]
        for p in self.hide:
            rp = Path(os.path.realpath(p))
            if rp.exists() and any(rp.is_relative_to(r) for r in roots):
                out.append((self._empty if rp.is_dir() else os.devnull, str(rp)))
        return out

    def close(self) -> None:
        if self._din is not None:
            with contextlib.suppress(Exception):
                self._din.close()
            with contextlib.suppress(OSError):
                os.close(self._dout)
            self._din = self._dout = None
        self._tin = None  # its descriptor is the template's stdin, closed below
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
            for fh in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(Exception):
                    fh.close()
            self.proc = None

    def __del__(self) -> None:
        self.close()
        shutil.rmtree(self._empty, ignore_errors=True)

    def _ensure(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        for path, text in self.sources.items():  # no reply: the template only keeps it
            if path not in self._sent:
                arr = np.frombuffer(text, dtype=np.uint8)
                write_message(self._tin, {"op": "source", "path": path}, {"text": arr})
                self._sent.add(path)
        return self.proc

    def _read(
        self, deadline: float, max_arrays: int = MAX_ARRAYS, child: bool = False
    ) -> tuple[dict, dict]:
        """The next message of the template (its stdout) or, ``child``, of the run's child."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self._dout if child else self.proc.stdout.fileno()
        try:
            return read_message(fd, deadline, max_arrays)
        except TimeoutError:
            self.close()
            raise UisbenchError(
                f"the strategy's process gave no answer within {self.timeout_s:g} s (timeout)"
            ) from None
        except EOFError:
            self.close()
            raise UisbenchError("the strategy's process ended without finishing") from None
        except ProtocolError:
            self.close()
            raise

    def _ask(self, header: dict[str, Any]) -> dict[str, Any]:
        self._ensure()
        write_message(self._tin, header)
        reply, _ = self._read(time.monotonic() + self.timeout_s)
        if reply.get("op") == "error":
            raise UisbenchError(_text(str(reply.get("message"))[:MAX_TEXT], "an error"))
        return reply

    # -------------------------------------------------------------- questions
    def about(self, name: str) -> tuple[str, str, list[str]]:
        """A registered strategy's description, family and option lines
        (:func:`~uisbench.strategies.base.option_lines`), as its own process reads them:
        ``uisbench list strategies`` never imports a plugin's module either."""
        reply = self._ask({"op": "about", "name": name})
        options = reply.get("options")
        if not isinstance(options, list) or len(options) > MAX_OPTIONS:
            raise ProtocolError(f"its options are not a list of at most {MAX_OPTIONS} lines")
        return (
            _text(reply.get("description"), "its description"),
            _text(reply.get("family"), "its family"),
            [_text(line, "an option's line") for line in options],
        )

    def describe(self, name: str, params: dict[str, Any]) -> Described:
        key = json.dumps([name, params], sort_keys=True, default=_jsonable)
        if key not in self._described:
            head = {"op": "describe", "name": name, "params": params}
            self._described[key] = _described(self._ask(head))
            self._described[key].source = name
        return self._described[key]

    def sweep(self, name: str, models: list[str], max_k: dict[str, int]) -> tuple[list, bool]:
        reply = self._ask({"op": "sweep", "name": name, "models": models, "max_k": max_k})
        settings, needs = reply.get("settings"), reply.get("needs_answers")
        if not isinstance(settings, list) or not all(isinstance(s, dict) for s in settings):
            raise ProtocolError(f"strategy {name}: sweep() did not give a list of settings")
        return settings, bool(needs)

    # -------------------------------------------------------------- one run
    def run(
        self,
        name: str,
        params: dict[str, Any],
        seed: int,
        stream: np.ndarray,
        service: MeterService,
        truth: BankArrays,
        outcome: dict[str, Any],
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, list | None]]:
        """Fork the run's child and serve it; yields each chunk of decisions (q, handle,
        reward, extra) for the caller to commit and write, and fills ``outcome`` (summary,
        figures, note) at the end. Any failure kills the template and raises one error."""
        if self.train is None:
            raise UisbenchError("a strategy process without a working set cannot run")
        head = {"op": "run", "name": name, "params": params, "seed": seed, "wipe": bwrap_works()}
        head["seccomp"] = seccomp_available()
        try:
            self._begin(head, stream)
            yield from self._serve(name, stream, service, truth, outcome)
        except BaseException:
            self.close()
            raise

    def _begin(self, head: dict[str, Any], stream: np.ndarray) -> None:
        """Ask the template for the run's child and read up to the mark it writes on the
        children's channel just before the fork, with a token only this run's header carried.

        The header goes to the template alone (its children close its stdin and stdout), and it
        reads the header only after the last run's child is gone: it kills that child when
        anything new comes (the run was complete for the parent). So a child never sees another
        run's messages, and what it left on the channel (its own forgeries included: it cannot
        know the next token) is skipped; a channel left unreadable costs a fresh template."""
        for attempt in (0, 1):
            self._ensure()
            token = os.urandom(16).hex()
            write_message(self._tin, dict(head, token=token), {"stream": stream})
            try:
                for _ in range(MAX_STALE):
                    msg, _ = self._read(time.monotonic() + self.timeout_s, child=True)
                    if msg.get("op") == "start" and msg.get("token") == token:
                        return
                raise ProtocolError("the last run's child left too much behind")
            except ProtocolError:
                if attempt:
                    raise
                self.close()

    def _serve(self, name, stream, service, truth, outcome):
        n = len(stream)
        din = self._din
        finished = False
        while True:
            msg, arrays = self._read(time.monotonic() + self.timeout_s, child=True)
            op = msg.get("op")
            if op == "call" and not finished:
                self._answer(din, service, msg, arrays)
            elif op == "chunk" and not finished:
                q, handle, reward, extra = _chunk(msg, arrays, n)
                service.meter.commit(q, handle)  # before any later call is answered
                yield q, handle, reward, extra
            elif op == "finished" and not finished:
                finished = True
                summary = msg.get("summary")
                outcome["summary"] = summary if isinstance(summary, dict) else {}
                want = msg.get("want") is True
                if want and os_isolated():
                    th, ta = pack_bank(truth, "x")
                    write_message(din, {"op": "truth", "truth": th}, ta)
                    continue
                if want:
                    outcome["note"] = (
                        "evaluation figures skipped: the strategy's isolation is not OS-level "
                        "here (needs bubblewrap and pyseccomp)"
                    )
                    write_message(din, {"op": "no-truth"})
                return
            elif op == "evaluation" and finished:
                figures = msg.get("figures")
                if figures is not None and (
                    not isinstance(figures, list) or not all(isinstance(f, dict) for f in figures)
                ):
                    raise ProtocolError("evaluate() did not give a list of dicts")
                outcome["figures"] = figures
                return
            elif op == "error":
                raise UisbenchError(_one_line(msg.get("message")))
            elif op == "exited":
                raise UisbenchError(
                    f"the strategy's process crashed ({_status(msg.get('status'))})"
                )
            else:
                raise ProtocolError(f"an unexpected message {str(op)[:40]!r}")

    def _answer(self, din: BinaryIO, service: MeterService, msg: dict, arrays: dict) -> None:
        op, args = msg.get("call"), msg.get("args")
        if op not in OPS or not isinstance(args, dict):
            raise ProtocolError(f"an unknown meter call {str(op)[:40]!r}")
        if set(args) & set(arrays):
            raise ProtocolError("a meter call names one argument twice")
        try:
            reply = service.call(op, {**args, **arrays})  # the meter checks every value
        except TypeError:
            raise ProtocolError(f"a meter call {op} with the wrong arguments") from None
        if op in UNANSWERED:
            return
        arrs = {k: v for k, v in reply.items() if isinstance(v, np.ndarray)}
        write_message(din, {"op": "reply", "values": {}}, arrs)


def _chunk(msg: dict, arrays: dict, n: int):
    q, handle, reward = arrays.get("q"), arrays.get("handle"), arrays.get("reward")
    extra = msg.get("extra")
    ok = q is not None and handle is not None and q.ndim == 1 and q.shape == handle.shape
    ok = ok and q.dtype == np.int64 and handle.dtype == np.int64 and len(q) <= n
    ok = ok and (reward is None or (reward.shape == q.shape and reward.dtype == np.float64))
    ok = ok and set(arrays) <= {"q", "handle", "reward"}
    ok = ok and (extra is None or (isinstance(extra, list) and len(extra) == len(q)))
    ok = ok and (extra is None or all(e is None or isinstance(e, dict) for e in extra))
    if not ok:
        raise ProtocolError("a chunk of decisions that does not match its declaration")
    return q, handle, reward, extra


def _one_line(message: Any) -> str:
    text = printable(" ".join(str(message).split()))
    return text[:MAX_TEXT] + ("…" if len(text) > MAX_TEXT else "")


def _status(status: Any) -> str:
    if not isinstance(status, int):
        return "unknown status"
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status}"
