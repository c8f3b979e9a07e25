"""Run untrusted code (model completions) in a throw-away, locked-down child process.

Why: HumanEval-style scoring executes whatever a model wrote. A completion that forks forever,
deletes files, opens sockets, prints without end or eats memory must be marked incorrect and must
harm nothing. The layers, from outside in:

1. **Separate process** (``python -I -S``: isolated mode, no site-packages, no ``PYTHON*``
   variables), an **empty environment**, a fresh **temporary working directory** removed afterwards,
   its own session/process group, killed as a group on the **wall-clock timeout**.
2. **Resource limits** (``setrlimit`` before exec): ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``,
   ``RLIMIT_NPROC`` (fork bombs), ``RLIMIT_FSIZE`` (also caps the captured output, which goes to a
   file: writing past the cap kills the child with ``SIGXFSZ``), ``RLIMIT_NOFILE``, no core files.
3. **Namespaces** when ``unshare`` works here (detected once, see :func:`isolation`): a new network
   namespace (no interfaces but a down loopback, so nothing can be reached, not even 127.0.0.1)
   and a new PID namespace whose processes all die with the sandbox. When the harness runs as
   root, the child drops to ``nobody`` (root ignores ``RLIMIT_NPROC`` and may delete anything) --
   but only when ``nobody`` can read this Python's stdlib (not so for a pyenv under /root); else
   it stays root and the PID namespace, the process-group kill and the guard carry the load.
4. **An audit-hook guard** installed in the child before the untrusted code runs (always, also as
   the fallback when namespaces are unavailable): it refuses sockets, subprocesses, ``fork``,
   ``exec``, ``ctypes`` and any file creation/removal/rename outside the sandbox directory. Python
   code cannot remove an audit hook once installed.

``isolation()`` reports what is in force on this machine; the HumanEval scorer records it.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NOBODY_UID = 65534
NOBODY_GID = 65534
EXTRA_PROCESSES = 8
OUTPUT_CAP_BYTES = 64 * 1024

# Runs inside the child (python -I -S -c BOOTSTRAP <sandbox dir> <drop-to-nobody flag>).
_BOOTSTRAP = r"""
import os, sys
_root = os.path.realpath(sys.argv[1])
if sys.argv[2] == "1":
    os.setgroups([])
    os.setgid(@GID@)
    os.setuid(@UID@)
os.chdir(_root)
with open(os.path.join(_root, "solution.py"), encoding="utf-8") as _f:
    _src = _f.read()

def _inside(path):
    if isinstance(path, int):
        return True
    try:
        p = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return p == _root or p.startswith(_root + os.sep)

_DENY_ALWAYS = (
    "socket.", "subprocess.", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn",
    "os.system", "os.kill", "os.killpg", "ctypes.", "os.setuid", "os.chroot", "pty.",
    "_posixsubprocess.", "os.startfile", "os.putenv", "os.unsetenv",
)
_WRITE_EVENTS = {
    "os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink", "os.truncate", "os.chmod",
    "os.chown", "os.mkdir", "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.utime",
}

def _guard(event, args):
    if event.startswith(_DENY_ALWAYS):
        raise PermissionError("sandbox: " + event + " is not allowed")
    if event in _WRITE_EVENTS:
        for a in args:
            if isinstance(a, (str, bytes, os.PathLike)) and not _inside(a):
                raise PermissionError("sandbox: " + event + " outside the sandbox")
    elif event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        )
        if writing and path is not None and not isinstance(path, int) and not _inside(path):
            raise PermissionError("sandbox: writing outside the sandbox")

sys.addaudithook(_guard)
del _guard
exec(compile(_src, "solution.py", "exec"), {"__name__": "__main__"})
""".replace("@UID@", str(NOBODY_UID)).replace("@GID@", str(NOBODY_GID))


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run; ``passed`` only when the code exited 0 in time."""

    passed: bool
    status: str  # passed | failed | timeout | memory | output_limit | killed:<SIG> | error
    returncode: int | None
    output: str
    duration_s: float
    isolation: tuple[str, ...] = field(default=())


@functools.lru_cache(maxsize=1)
def _namespace_prefix() -> tuple[str, ...]:
    """The ``unshare`` command that works here (net + pid namespaces), or () when none does."""
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    candidates = []
    if os.geteuid() == 0:
        candidates.append((exe, "--net", "--pid", "--fork", "--kill-child"))
    candidates.append(
        (exe, "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
    )
    for prefix in candidates:
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return prefix
    return ()


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY_GID)
    os.setuid(NOBODY_UID)


@functools.lru_cache(maxsize=1)
def _can_drop_to_nobody() -> bool:
    """Root only: can ``nobody`` run this Python and import its stdlib (e.g. not under /root)?"""
    if os.geteuid() != 0:
        return False
    try:
        probe = subprocess.run(
            [sys.executable, "-I", "-S", "-c", "import subprocess, json, collections"],
            preexec_fn=_drop_to_nobody,
            capture_output=True,
            timeout=20,
            cwd="/",
            env={},
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def isolation() -> tuple[str, ...]:
    """Names of the isolation layers in force on this machine (for logs and run metadata)."""
    layers = ["process", "rlimits", "empty-env", "tmp-cwd", "audit-hook"]
    prefix = _namespace_prefix()
    if prefix:
        layers.append("netns+pidns" + ("(userns)" if "--user" in prefix else ""))
    if _can_drop_to_nobody():
        layers.append("uid-nobody")
    return tuple(layers)


def _processes_of_uid(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _limits(timeout_s: float, memory_mb: int, nproc: int) -> callable:
    def apply() -> None:
        mem = memory_mb * 1024 * 1024
        cpu = max(1, int(timeout_s) + 1)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP_BYTES, OUTPUT_CAP_BYTES))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_untrusted(code: str, timeout_s: float = 5.0, memory_mb: int = 512) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox; exit status 0 within limits = passed."""
    drop_uid = _can_drop_to_nobody()
    # RLIMIT_NPROC counts all processes of the (real) user: leave room for what already runs.
    nproc = EXTRA_PROCESSES + (
        _processes_of_uid(NOBODY_UID) if drop_uid else _processes_of_uid(os.getuid())
    )
    prefix = _namespace_prefix()
    workdir = Path(tempfile.mkdtemp(prefix="uisbench-sandbox-"))
    try:
        (workdir / "solution.py").write_text(code, encoding="utf-8")
        out_path = workdir / ".output"
        if drop_uid:
            os.chown(workdir, NOBODY_UID, NOBODY_GID)
            os.chmod(workdir, 0o700)
        argv = [*prefix, sys.executable, "-I", "-S", "-c", _BOOTSTRAP, str(workdir)]
        argv.append("1" if drop_uid else "0")
        start = time.perf_counter()
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env={},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_limits(timeout_s, memory_mb, nproc),
                close_fds=True,
            )
            try:
                rc = proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                rc = proc.wait()
            _kill_group(proc)  # stray children still in the group
        duration = time.perf_counter() - start
        with open(out_path, "rb") as f:
            output = f.read(OUTPUT_CAP_BYTES).decode("utf-8", errors="replace")
        status = _status(rc, timed_out, output)
        return SandboxResult(status == "passed", status, rc, output, duration, isolation())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _status(rc: int | None, timed_out: bool, output: str) -> str:
    if timed_out:
        return "timeout"
    if len(output.encode("utf-8", errors="replace")) >= OUTPUT_CAP_BYTES:
        # Python ignores SIGXFSZ: the write past RLIMIT_FSIZE fails and it exits non-zero.
        return "output_limit"
    if rc == 0:
        return "passed"
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc)
        if sig == signal.SIGXFSZ:
            return "output_limit"
        if sig in (signal.SIGXCPU, signal.SIGKILL) and "MemoryError" not in output:
            return "timeout" if sig == signal.SIGXCPU else f"killed:{sig.name}"
        return f"killed:{sig.name}"
    # unshare passes a child's death by signal on as 128 + signal number.
    if rc is not None and rc > 128 and rc - 128 in {s.value for s in signal.Signals}:
        return _status(-(rc - 128), False, output)
    if "MemoryError" in output:
        return "memory"
    return "failed"
