"""Run untrusted code (model completions) under OS-level isolation.

Why: HumanEval-style scoring executes whatever a model wrote. A completion that forks forever,
deletes files, opens sockets, reads secrets, prints without end or eats memory must be marked
incorrect and must harm nothing. A Python audit hook alone is no boundary (PEP 578 says so: it
can be switched off by the code it watches), so the boundary is the kernel's:

1. **bubblewrap** (``bwrap``): new user, PID, network, IPC, UTS, cgroup and mount namespaces; the
   code runs as uid/gid 65534 with every capability dropped, in a new session, killed when the
   harness dies. Its file system is an empty root with read-only binds of only what the
   interpreter needs (``/usr``, ``/lib*``, the Python prefix): no repository, no ``/root``, no
   ``/etc``; the root itself is read-only. ``/tmp`` (the working directory) is a small private
   tmpfs and ``/proc`` a new one of the PID namespace, so no host ``/proc/*/environ`` is visible;
   the environment is cleared (also bwrap's own, which would show as ``/proc/1/environ``).
2. **seccomp** (when ``pyseccomp`` and libseccomp are installed): no new processes (``fork``,
   ``vfork``, ``clone`` without ``CLONE_THREAD``; ``clone3`` answers ENOSYS so libc falls back to
   ``clone``), no sockets, no ptrace, mounts, namespaces, keyrings, BPF or kernel modules.
3. **rlimits** (address space, CPU, file size -- which also caps the captured output --, open
   files, processes, no core files) and a **wall-clock timeout** that kills the whole sandbox.
4. An **audit-hook guard**, a second line only: no subprocesses, sockets or ctypes, no writes
   outside the working directory.

**Scoring**: a program passes only if it ran to its end, which the bootstrap proves by printing a
per-run random token after the program returned; an ``os._exit(0)`` or ``sys.exit(0)`` before
the assertions prints no token. The token never appears in the program's source, argv or
environment. It guards against programs that stop early; code written to dig it out of the
bootstrap's frame could still score itself as passed -- and harm nothing, which is what the
layers above are for.

Without bubblewrap, untrusted code is refused unless the user opts in with ``--unsafe-exec``
(environment ``UISBENCH_UNSAFE_EXEC=1``), which runs it with layers 3 and 4 only.
"""

from __future__ import annotations

import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from uisbench.errors import UisbenchError

SANDBOX_UID = 65534
EXTRA_PROCESSES = 8
OUTPUT_CAP_BYTES = 64 * 1024
TMPFS_BYTES = 16 * 1024 * 1024
UNSAFE_ENV = "UISBENCH_UNSAFE_EXEC"
_SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LC_ALL": "C.UTF-8"}

# Runs inside the sandbox as ``python -I -S -c BOOTSTRAP``; stdin carries "TOKEN\nSOURCE".
_BOOTSTRAP = r"""
def _sandbox_main():
    import os, sys
    data = sys.stdin.buffer.read()
    os.close(0)
    token, _, src = data.partition(b"\n")
    root = os.getcwd()
    with open("solution.py", "wb") as f:  # for the source lines of tracebacks
        f.write(src)
    deny = (
        "socket.", "subprocess.", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn",
        "os.spawn", "os.system", "os.kill", "os.killpg", "ctypes.", "os.setuid", "os.chroot",
        "pty.", "_posixsubprocess.", "os.startfile", "os.putenv", "os.unsetenv",
        "sys.addaudithook",
    )
    writes = frozenset((
        "os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink", "os.truncate",
        "os.chmod", "os.chown", "os.mkdir", "shutil.rmtree", "shutil.copyfile", "shutil.move",
        "os.utime",
    ))
    flags_w = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep

    def inside(path):
        try:
            p = realpath(fsdecode(path))
        except Exception:
            return False
        return p == root or p.startswith(root + sep)

    def guard(event, args):
        if event.startswith(deny):
            raise PermissionError("sandbox: " + event + " is not allowed")
        if event in writes:
            for a in args:
                if isinstance(a, int) and a not in (-100, None) and a >= 0 and event != "os.chmod":
                    raise PermissionError("sandbox: " + event + " with dir_fd")
                if isinstance(a, (str, bytes)) and not inside(a):
                    raise PermissionError("sandbox: " + event + " outside the sandbox")
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & flags_w
            )
            if writing and isinstance(path, (str, bytes)) and not inside(path):
                raise PermissionError("sandbox: writing outside the sandbox")

    sys.addaudithook(guard)
    exec(compile(src, "solution.py", "exec"), {"__name__": "__main__"})
    sys.stdout.flush()
    os.write(1, b"\n" + token + b"\n")

_sandbox_main()
"""


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run; ``passed`` only when the program ran to its end in time."""

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
        else:
            args += ["--ro-bind-try", path, path]
    return args


def _bwrap_argv(seccomp_fd: int | None) -> list[str]:
    exe = shutil.which("bwrap")
    if exe is None:
        return []
    argv = [exe, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID)]
    argv += ["--gid", str(SANDBOX_UID), "--hostname", "sandbox", "--die-with-parent"]
    argv += ["--new-session", "--cap-drop", "ALL", "--clearenv"]
    for key, value in _SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    argv += _python_binds()
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    argv += ["--remount-ro", "/", "--chdir", "/tmp"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv


def _seccomp_program() -> bytes | None:
    """The BPF program of layer 2, or None when pyseccomp/libseccomp are not installed."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError):
        return None
    import errno

    filt = sc.SyscallFilter(sc.ALLOW)
    denied = (
        "fork vfork socket socketpair ptrace mount umount2 unshare setns pivot_root chroot "
        "keyctl add_key request_key bpf userfaultfd perf_event_open kexec_load init_module "
        "finit_module delete_module process_vm_readv process_vm_writev open_by_handle_at "
        "name_to_handle_at personality"
    ).split()
    for name in denied:
        filt.add_rule(sc.ERRNO(errno.EPERM), name)
    clone_thread = 0x00010000  # a new process is a clone without CLONE_THREAD
    filt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, clone_thread, 0))
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as fh:
        filt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


@functools.lru_cache(maxsize=1)
def _seccomp_bpf() -> bytes | None:
    return _seccomp_program()


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> bool:
    """Can bubblewrap start this Python in every namespace here (e.g. user namespaces allowed)?"""
    if not _bwrap_argv(None):
        return False
    try:
        probe = subprocess.run(
            [*_bwrap_argv(None), _python(), "-I", "-S", "-c", "import json, collections"],
            capture_output=True,
            timeout=20,
            env={},
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def isolation() -> tuple[str, ...]:
    """Names of the isolation layers in force on this machine (for logs and run metadata)."""
    layers = []
    if _bwrap_works():
        layers += ["bwrap:user,pid,net,ipc,uts,mount", f"uid-{SANDBOX_UID}", "cap-drop-all"]
        if _seccomp_bpf() is not None:
            layers.append("seccomp")
    return (*layers, "rlimits", "timeout", "empty-env", "audit-hook")


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


def _limits(timeout_s: float, memory_mb: int, nproc: int) -> Callable[[], None]:
    def apply() -> None:
        mem = memory_mb * 1024 * 1024
        cpu = max(1, int(timeout_s) + 1)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP_BYTES, OUTPUT_CAP_BYTES))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # Counts every process of the real user (root is exempt: there seccomp stops forks).
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _command(seccomp_fd: int | None) -> list[str]:
    """The argv that starts the bootstrap: under bwrap, or bare where the user allowed it."""
    python = [_python(), "-I", "-S", "-c", _BOOTSTRAP]
    if _bwrap_works():
        return [*_bwrap_argv(seccomp_fd), *python]
    if unsafe_allowed():
        return python
    raise UisbenchError(
        "no sandbox for untrusted code: install bubblewrap (apt install bubblewrap) "
        "with user namespaces enabled, or pass --unsafe-exec to run it unisolated"
    )


def _spawn(out, limits: Callable[[], None]) -> subprocess.Popen:
    """Start the sandbox; bwrap reads the seccomp program from an inherited file descriptor."""
    bpf = _seccomp_bpf() if _bwrap_works() else None
    with tempfile.TemporaryFile() as bpf_file:
        if bpf is not None:
            bpf_file.write(bpf)
            bpf_file.seek(0)
        fds = (bpf_file.fileno(),) if bpf is not None else ()
        return subprocess.Popen(
            _command(fds[0] if fds else None),
            cwd=tempfile.gettempdir(),
            env={},
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limits,
            pass_fds=fds,
            close_fds=True,
        )


def run_untrusted(code: str, timeout_s: float = 5.0, memory_mb: int = 512) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox; passed = ran to its end within limits."""
    nproc = EXTRA_PROCESSES + _processes_of_uid(os.getuid())
    token = secrets.token_hex(16)
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = _spawn(out, _limits(timeout_s, memory_mb, nproc))
        payload = f"{token}\n{code}".encode("utf-8", "surrogatepass")
        timed_out = _feed_and_wait(proc, payload, timeout_s)
        duration = time.perf_counter() - start
        out.seek(0)
        output = out.read(OUTPUT_CAP_BYTES).decode("utf-8", errors="replace")
    rc = proc.returncode
    status = _status(rc, timed_out, output, token)
    shown = output.replace(f"\n{token}\n", "")
    return SandboxResult(status == "passed", status, rc, shown, duration, isolation())


def _feed_and_wait(proc: subprocess.Popen, payload: bytes, timeout_s: float) -> bool:
    """Write the program on stdin, wait; kill the whole group on the wall-clock timeout."""
    try:
        proc.communicate(payload, timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        proc.wait()
    _kill_group(proc)  # stray children still in the group (unsafe mode)
    return timed_out


def _status(rc: int | None, timed_out: bool, output: str, token: str) -> str:
    if timed_out:
        return "timeout"
    if len(output.encode("utf-8", errors="replace")) >= OUTPUT_CAP_BYTES:
        # Python ignores SIGXFSZ: the write past RLIMIT_FSIZE fails and it exits non-zero.
        return "output_limit"
    if rc == 0:
        return "passed" if output.endswith(f"\n{token}\n") else "failed"
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc)
        if sig == signal.SIGXFSZ:
            return "output_limit"
        if sig == signal.SIGXCPU:
            return "timeout"
        return f"killed:{sig.name}"
    # bwrap passes a child's death by signal on as 128 + signal number.
    if rc is not None and rc > 128 and rc - 128 in {s.value for s in signal.Signals}:
        return _status(-(rc - 128), False, output, token)
    if "MemoryError" in output:
        return "memory"
    return "failed"
