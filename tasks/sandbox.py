"""Run untrusted code (model completions) under OS-level isolation, and score it from outside.

Why: HumanEval-style scoring executes whatever a model wrote. A completion that forks forever,
deletes files, opens sockets, reads secrets, prints without end or eats memory must be marked
incorrect and must harm nothing; and nothing it does may turn a wrong answer into a pass. A
Python audit hook alone is no boundary (PEP 578 says so: it can be switched off by the code it
watches), so the boundaries are the kernel's and a process's:

1. **Two processes for one verdict** (:func:`run_checked`). The candidate's program runs in one
   sandbox and answers calls of its entry point; the task's tests run in a second sandbox whose
   ``candidate`` is a proxy. Arguments and return values cross two pipes as plain data (JSON of
   builtin values, re-built by the checker: no object, no custom ``__eq__``), and the checker
   alone writes the verdict, on a third pipe the candidate never holds. No frame, memory,
   ``sys.excepthook`` or exit status of the candidate's process can reach it, and the candidate
   never sees the tests. Why two sandboxes: a secret the candidate's process holds (a "ran to
   the end" token) can always be read back by code in that process.
2. **bubblewrap** (``bwrap``): new user, PID, network, IPC, UTS, cgroup and mount namespaces;
   uid/gid 65534 with every capability dropped, a new session, killed when the harness dies.
   Also 65534 on the host: run as root, bwrap alone maps the sandbox's uid to host uid 0 (the
   owner of every root-owned file it sees, exempt from RLIMIT_NPROC), so there the harness
   writes the id maps itself and the bootstrap drops to 65534, bounding set included, before it
   reads the program (:func:`_map_ids`). Its file system is an empty read-only root with
   read-only binds of only what the interpreter needs (``/usr``, ``/lib*``, the Python prefix):
   no repository, no ``/root``, no ``/etc``. ``/dev`` holds only bwrap's device nodes and is
   read-only (its tmpfs would be a writable RAM disk of half the host's memory); ``/tmp`` (the
   working directory, 16 MiB) is the only writable space and its size is taken from the memory
   limit; ``/proc`` is the PID namespace's own; the environment is empty.
3. **seccomp** (when ``pyseccomp`` and libseccomp are installed), loaded by bwrap: no new
   processes *or threads* (``clone`` is refused, ``clone3`` answers ENOSYS): the bound does not
   hang on RLIMIT_NPROC, which binds neither root nor, before Linux 5.14, one sandbox apart from
   the user's other processes; no sockets, ptrace, mounts, namespaces, keyrings, BPF, modules;
   no io_uring (its opcodes would bypass the filter, ``IORING_OP_SOCKET``); no RAM outside the
   limits (memfd, System V and POSIX IPC, bigger pipe buffers). A second filter, stacked by the
   bootstrap once bwrap has exec'd the interpreter, refuses ``execve``/``execveat``.
4. **rlimits**, set by the bootstrap *after* it wrote ``solution.py`` (a long correct program is
   not cut): address space, CPU, file size, open files, processes, no core files; a
   **wall-clock timeout** kills every sandbox of the run.
5. **Output through pipes** the harness reads with a byte cap (then kills): never a host file
   the program could grow (``fallocate`` on a file in ``$TMPDIR`` bypassed any size limit).
6. An **audit-hook guard**, a second line only: no subprocesses, sockets or ctypes, no writes
   outside the working directory.

:func:`run_untrusted` runs one program alone; its ``passed`` says only that it exited 0 within
its limits. The bootstrap is :mod:`uisbench.tasks.sandbox_boot`.

Without bubblewrap, untrusted code is refused unless the user opts in with ``--unsafe-exec``
(environment ``UISBENCH_UNSAFE_EXEC=1``), which runs it with layers 1, 4, 5 and 6 only -- and
layer 1 then holds only against code that stays in its own process (without namespaces, the
candidate's process can reach the checker's through ``/proc``).
"""

from __future__ import annotations

import functools
import json
import os
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from uisbench.errors import UisbenchError

SANDBOX_UID = 65534
EXTRA_PROCESSES = 8  # RLIMIT_NPROC headroom in --unsafe-exec mode (no seccomp there)
MAX_THREADS = 0  # seccomp refuses every clone: the program runs on its one thread
OUTPUT_CAP_BYTES = 64 * 1024  # per process, read from its pipe by the harness
FILE_CAP_BYTES = 1024 * 1024  # RLIMIT_FSIZE: one file in /tmp
TMPFS_BYTES = 16 * 1024 * 1024  # /tmp, the only writable space; taken from the memory limit
UNSAFE_ENV = "UISBENCH_UNSAFE_EXEC"
_SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LC_ALL": "C.UTF-8"}
_BOOT = Path(__file__).with_name("sandbox_boot.py")


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run.

    ``run_untrusted``: ``passed`` when the program exited 0 within its limits -- how it ended,
    not whether it is right (it may ``os._exit(0)`` early). ``run_checked``: ``passed`` only on
    the checker's verdict, from a process the program cannot reach.
    """

    passed: bool
    status: str  # passed | failed | timeout | memory | output_limit | killed:<SIG> | error
    returncode: int | None
    output: str
    duration_s: float
    isolation: tuple[str, ...] = field(default=())


def _python() -> str:
    """The real interpreter behind a virtual environment (``-I -S`` needs no site-packages)."""
    return os.path.realpath(sys.executable)


def _python_binds() -> list[str]:
    """Read-only binds of the interpreter: /usr, /lib*, its prefix (and its binary's folder)."""
    paths = ["/usr", "/lib", "/lib32", "/lib64", "/libx32"]
    for extra in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(_python())):
        real = os.path.realpath(extra)
        if not any(real == p or real.startswith(p + "/") for p in paths):
            paths.append(real)
    args: list[str] = []
    for path in paths:
        if os.path.islink(path):  # merged /usr: /lib -> usr/lib
            args += ["--symlink", os.readlink(path), path]
            continue
        # bwrap would make a prefix's parents (e.g. /root) 0700: open them to the sandbox's uid.
        parents = Path(path).parents
        for parent in reversed([str(p) for p in parents if str(p) != "/"]):
            args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind-try", path, path]
    return args


def _bwrap_argv(seccomp_fd: int | None, mapping: tuple[int, int] | None = None) -> list[str]:
    """bwrap's command line; ``mapping`` = (block fd, info fd) when the harness writes the id
    maps itself (as root: see :func:`_map_ids`)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return []
    argv = [exe, "--unshare-all", "--unshare-user", "--hostname", "sandbox", "--die-with-parent"]
    if mapping is None:
        argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL"]
    else:  # the bootstrap drops to SANDBOX_UID and every capability before anything else
        argv += ["--userns-block-fd", str(mapping[0]), "--info-fd", str(mapping[1])]
    argv += ["--new-session", "--clearenv"]
    for key, value in _SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    argv += _python_binds()
    # /dev: only bwrap's device nodes (null, zero, full, random, urandom, tty), read-only --
    # its tmpfs would otherwise be a writable RAM disk as large as half the host's memory.
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    argv += ["--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    argv += ["--remount-ro", "/", "--chdir", "/tmp"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv


# Denied with EPERM by the filter bwrap loads (clone3 answers ENOSYS so libc falls back to
# clone, which is denied): no processes or threads, sockets, ptrace, mounts, namespaces,
# keyrings, BPF, modules; no io_uring (its opcodes bypass this filter: IORING_OP_SOCKET makes
# sockets); no RAM outside the limits (memfd, System V and POSIX IPC, bigger pipe buffers).
_DENIED = (
    "clone fork vfork socket socketpair ptrace mount umount2 unshare setns pivot_root chroot "
    "keyctl add_key request_key bpf userfaultfd perf_event_open kexec_load init_module "
    "finit_module delete_module process_vm_readv process_vm_writev open_by_handle_at "
    "name_to_handle_at personality io_uring_setup io_uring_enter io_uring_register "
    "memfd_create memfd_secret shmget shmat msgget msgsnd semget semop semtimedop mq_open"
).split()
# Stacked by the bootstrap once it runs: bwrap must still exec the interpreter.
_DENIED_AFTER_START = ("execve", "execveat")
_F_SETPIPE_SZ = 1031


def _bpf(denied: tuple[str, ...] | list[str], *, base: bool) -> bytes | None:
    """A compiled seccomp program, or None when pyseccomp/libseccomp are not installed."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError):
        return None
    import errno

    filt = sc.SyscallFilter(sc.ALLOW)
    for name in denied:
        try:
            filt.add_rule(sc.ERRNO(errno.EPERM), name)
        except OSError:  # a name this libseccomp does not know: only the newest may be missing
            if name != "memfd_secret":
                raise
    if base:
        filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        filt.add_rule(sc.ERRNO(errno.EPERM), "fcntl", sc.Arg(1, sc.EQ, _F_SETPIPE_SZ))
    with tempfile.TemporaryFile() as fh:
        filt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


@functools.lru_cache(maxsize=1)
def _seccomp_bpf() -> bytes | None:
    return _bpf(_DENIED, base=True)


@functools.lru_cache(maxsize=1)
def _exec_bpf() -> bytes | None:
    return _bpf(_DENIED_AFTER_START, base=False)


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> bool:
    """Can bubblewrap start this Python here, the way every run will (user namespaces allowed,
    seccomp filters loaded, as root the id maps written and the drop to the sandbox's uid)?"""
    if not _bwrap_argv(None):
        return False
    try:
        proc = _spawn_bwrap([_python(), "-I", "-S", "-c", _boot_source(), "probe"], {})
    except OSError:
        return False
    try:
        proc.communicate(b"", timeout=20)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
    return proc.returncode == 0


def isolation() -> tuple[str, ...]:
    """Names of the isolation layers in force on this machine (for logs and run metadata)."""
    layers = []
    if _bwrap_works():
        layers += ["bwrap:user,pid,net,ipc,uts,mount", f"uid-{SANDBOX_UID}", "cap-drop-all"]
        layers.append("ro-dev")
        if _seccomp_bpf() is not None:
            layers += ["seccomp", "seccomp-no-exec"]
    return (*layers, "rlimits", "timeout", "empty-env", "pipes", "audit-hook", "split-check")


def unsafe_allowed() -> bool:
    return os.environ.get(UNSAFE_ENV, "") == "1"


def _processes_of_uid(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += os.stat(entry.path).st_uid == uid
            except OSError:
                pass
    return count


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pipe_with(data: bytes) -> int:
    """A pipe's read end already holding ``data`` (small: a BPF program) and closed for writing."""
    r, w = os.pipe()
    try:
        os.write(w, data)
    finally:
        os.close(w)
    return r


@functools.lru_cache(maxsize=1)
def _boot_source() -> str:
    return _BOOT.read_text(encoding="utf-8")


@dataclass
class _Box:
    """One sandboxed process: what goes in on stdin, what came out of stdout+stderr."""

    proc: subprocess.Popen
    payload: bytes
    workdir: str | None
    output: bytearray = field(default_factory=bytearray)
    over_cap: bool = False
    killed: bool = False  # by the harness, while still running


def _spawn_bwrap(tail: list[str], cfg: dict, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start ``tail + [json(cfg)]`` under bwrap with both seccomp filters and, as root, the
    harness's own id maps; stdin, stdout (with stderr) are pipes."""
    opened: list[int] = []  # passed to the child, closed here once it started
    ours: list[int] = []  # the harness's ends of the id-map handshake
    mapping = None
    cfg = dict(cfg)
    try:
        bpf, exec_bpf = _seccomp_bpf(), _exec_bpf()
        seccomp_fd = _pipe_with(bpf) if bpf is not None else None
        if seccomp_fd is not None:
            opened.append(seccomp_fd)
        if exec_bpf is not None:
            cfg["exec_filter_fd"] = _pipe_with(exec_bpf)
            opened.append(cfg["exec_filter_fd"])
        if os.geteuid() == 0:
            block_r, block_w = os.pipe()
            info_r, info_w = os.pipe()
            ours += [block_w, info_r]
            opened += [block_r, info_w]
            mapping = (block_r, info_w)
            cfg["drop_to_uid"] = SANDBOX_UID
        proc = _popen(
            [*_bwrap_argv(seccomp_fd, mapping), *tail, json.dumps(cfg)],
            "/",
            pass_fds + tuple(opened),
        )
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in opened:
            os.close(fd)
    if mapping is not None:
        _map_ids(proc, block_w=ours[0], info_r=ours[1])
    return proc


def _popen(argv: list[str], cwd: str, pass_fds: tuple[int, ...]) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env={},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=pass_fds,
        close_fds=True,
    )


def _start(role: str, payload: bytes, limits: dict, pass_fds: tuple[int, ...] = ()) -> _Box:
    """Start the bootstrap in its own sandbox (or bare where the user allowed it)."""
    boot = [_python(), "-I", "-S", "-c", _boot_source(), role]
    if _bwrap_works():
        return _Box(_spawn_bwrap(boot, limits, pass_fds), payload, None)
    if not unsafe_allowed():
        raise UisbenchError(
            "no sandbox for untrusted code: install bubblewrap (apt install bubblewrap) "
            "with user namespaces enabled, or pass --unsafe-exec to run it unisolated"
        )
    cfg = {**limits, "nproc": EXTRA_PROCESSES + _processes_of_uid(os.getuid())}
    workdir = tempfile.mkdtemp(prefix="uisbench-unsafe-")
    try:
        return _Box(_popen([*boot, json.dumps(cfg)], workdir, pass_fds), payload, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _map_ids(proc: subprocess.Popen, block_w: int, info_r: int) -> None:
    """As root, bwrap would map the sandbox's uid to host uid 0 -- RLIMIT_NPROC would not bind,
    and the program would own every root-owned file it can see. So the harness writes the maps
    itself: 0 -> 0 for bwrap's setup (it binds paths only root may traverse, such as a Python
    under /root), SANDBOX_UID -> SANDBOX_UID for the program, to which the bootstrap drops,
    shedding every capability, before it reads the program. On any failure the sandbox is
    killed (and :func:`_bwrap_works`, which probes this same path, says no).
    """
    try:
        info = b""
        while True:
            ready, _, _ = select.select([info_r], [], [], 10.0)
            chunk = os.read(info_r, 4096) if ready else b""
            if not chunk:
                break
            info += chunk
        pid = int(json.loads(info)["child-pid"])
        ids = f"0 0 1\n{SANDBOX_UID} {SANDBOX_UID} 1\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as fh:
                fh.write(ids)
        os.write(block_w, b"1")
    except (OSError, ValueError, KeyError, TypeError):
        _kill_group(proc)
    finally:
        os.close(block_w)
        os.close(info_r)


def _limits(timeout_s: float, memory_mb: int) -> dict:
    # /tmp's tmpfs is RAM that RLIMIT_AS does not see: it is taken from the memory limit.
    memory = max(64, memory_mb) * 1024 * 1024 - TMPFS_BYTES
    return {
        "memory_bytes": memory,
        "cpu_s": max(1, int(timeout_s) + 1),
        "file_bytes": FILE_CAP_BYTES,
        "nproc": EXTRA_PROCESSES,
    }


def _feed(fd: int, box: _Box, sent: dict[int, int]) -> bool:
    """Write the next part of ``box``'s stdin; True when all is written or nobody reads it."""
    try:
        sent[id(box)] += os.write(fd, box.payload[sent[id(box)] : sent[id(box)] + 65536])
    except BlockingIOError:
        return False
    except BrokenPipeError:
        return True
    return sent[id(box)] >= len(box.payload)


def _pump(boxes: list[_Box], primary: _Box, deadline: float, extra: dict[int, bytearray]) -> bool:
    """Feed stdin, read each output pipe up to the cap, until ``primary``'s pipe closes.

    Returns whether the wall-clock deadline passed. Output never touches a host file: a pipe
    cannot be grown with fallocate, and the harness stops reading (and kills) at the cap.
    """
    sel = selectors.DefaultSelector()
    for box in boxes:
        os.set_blocking(box.proc.stdin.fileno(), False)
        sel.register(box.proc.stdin, selectors.EVENT_WRITE, (box, "in"))
        sel.register(box.proc.stdout, selectors.EVENT_READ, (box, "out"))
    for fd in extra:
        sel.register(fd, selectors.EVENT_READ, (None, fd))
    sent = {id(box): 0 for box in boxes}
    primary_open = True
    try:
        while primary_open:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            for key, _ in sel.select(remaining):
                box, what = key.data
                if what == "in":
                    if _feed(key.fd, box, sent):
                        sel.unregister(key.fileobj)
                        box.proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    if box is primary and what == "out":
                        primary_open = False
                    continue
                if box is None:
                    extra[what] += chunk[:64]
                    continue
                box.output += chunk
                if len(box.output) > OUTPUT_CAP_BYTES:
                    del box.output[OUTPUT_CAP_BYTES:]
                    box.over_cap = True
                    return False
        return False
    finally:
        sel.close()


def _finish(boxes: list[_Box], deadline: float) -> None:
    """Kill what still runs, reap it, keep what its pipe still held (up to the cap)."""
    for box in boxes:
        if box.proc.poll() is None:
            box.killed = True
            _kill_group(box.proc)
    for box in boxes:
        try:
            box.proc.wait(timeout=max(1.0, deadline - time.monotonic() + 1.0))
        except subprocess.TimeoutExpired:
            _kill_group(box.proc)
            box.proc.wait()
        _kill_group(box.proc)  # stray children still in the group (unsafe mode)
        out = box.proc.stdout
        os.set_blocking(out.fileno(), False)
        try:
            while len(box.output) <= OUTPUT_CAP_BYTES and (chunk := os.read(out.fileno(), 65536)):
                box.output += chunk
        except BlockingIOError:
            pass
        if len(box.output) > OUTPUT_CAP_BYTES:
            del box.output[OUTPUT_CAP_BYTES:]
            box.over_cap = True
        out.close()
        if box.proc.stdin and not box.proc.stdin.closed:
            try:
                box.proc.stdin.close()
            except OSError:
                pass
        if box.workdir:
            shutil.rmtree(box.workdir, ignore_errors=True)


def run_untrusted(code: str, timeout_s: float = 5.0, memory_mb: int = 512) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox; passed = exited 0 within its limits."""
    start = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    box = _start("candidate", code.encode("utf-8", "surrogatepass"), _limits(timeout_s, memory_mb))
    try:
        timed_out = _pump([box], box, deadline, {})
    finally:
        _finish([box], deadline)
    output = box.output.decode("utf-8", errors="replace")
    status = _status(box.proc.returncode, timed_out, box.over_cap, output)
    duration = time.perf_counter() - start
    return SandboxResult(
        status == "passed", status, box.proc.returncode, output, duration, isolation()
    )


def run_checked(
    program: str,
    *,
    prompt: str,
    test: str,
    entry_point: str,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
) -> SandboxResult:
    """Score ``program`` with HumanEval-style tests in two sandboxes that share only pipes.

    The candidate's sandbox runs ``program`` and answers calls of ``entry_point``; the checker's
    runs the trusted ``prompt`` (its helpers) and ``test`` with ``check(candidate)``, where
    ``candidate`` sends arguments and receives return values as plain data. ``passed`` is the
    checker's verdict, written on a pipe the candidate never holds.
    """
    start = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    limits = _limits(timeout_s, memory_mb)
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    verdict_r, verdict_w = os.pipe()
    job = json.dumps({"prompt": prompt, "test": test, "entry_point": entry_point}).encode()
    boxes: list[_Box] = []
    try:
        cand_cfg = {**limits, "entry_point": entry_point, "req_fd": req_r, "resp_fd": resp_w}
        code = program.encode("utf-8", "surrogatepass")
        boxes.append(_start("candidate", code, cand_cfg, (req_r, resp_w)))
        check_cfg = {**limits, "req_fd": req_w, "resp_fd": resp_r, "verdict_fd": verdict_w}
        boxes.append(_start("checker", job, check_cfg, (req_w, resp_r, verdict_w)))
    except BaseException:
        _finish(boxes, deadline)
        os.close(verdict_r)
        raise
    finally:
        for fd in (req_r, req_w, resp_r, resp_w, verdict_w):
            os.close(fd)
    candidate, checker = boxes
    verdict = {verdict_r: bytearray()}
    try:
        timed_out = _pump(boxes, checker, deadline, verdict)
        # The checker is done: what is left in the verdict pipe (the checker has exited).
        os.set_blocking(verdict_r, False)
        try:
            verdict[verdict_r] += os.read(verdict_r, 64)
        except BlockingIOError:
            pass
    finally:
        _finish(boxes, deadline)
        os.close(verdict_r)
    passed = bytes(verdict[verdict_r]) == b"pass\n" and not timed_out
    cand_out = candidate.output.decode("utf-8", errors="replace")
    output = cand_out + checker.output.decode("utf-8", errors="replace")
    if passed:
        status = "passed"
    elif timed_out:
        status = "timeout"
    elif candidate.over_cap or checker.over_cap:
        status = "output_limit"
    elif candidate.killed:  # still answering (or waiting) when the checker ended
        status = "memory" if "MemoryError" in output else "failed"
    else:
        status = _status(candidate.proc.returncode, False, False, cand_out)
        status = "failed" if status == "passed" else status
    duration = time.perf_counter() - start
    rc = checker.proc.returncode
    return SandboxResult(passed, status, rc, output, duration, isolation())


def _status(rc: int | None, timed_out: bool, over_cap: bool, output: str) -> str:
    if timed_out:
        return "timeout"
    if over_cap:
        return "output_limit"
    if rc == 0:
        return "passed"
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc)
        if sig == signal.SIGXFSZ:
            return "output_limit"
        if sig == signal.SIGXCPU:
            return "timeout"
        return f"killed:{sig.name}"
    # bwrap passes a child's death by signal on as 128 + signal number.
    if rc is not None and rc > 128 and rc - 128 in {s.value for s in signal.Signals}:
        return _status(-(rc - 128), False, False, output)
    if "MemoryError" in output:
        return "memory"
    return "failed"
