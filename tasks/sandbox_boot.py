"""The program each sandbox runs: ``python -I -S -c <this file> ROLE CONFIG`` (stdlib only).

``candidate``: the untrusted program arrives on stdin. It is written to ``solution.py`` *before*
the limits apply (a long correct program is not cut by the file-size limit); then the second
seccomp filter (no ``execve``) is loaded, the limits are set, the audit guard installed and the
program run. Given an entry point, the process then answers calls: each request is one line of
plain data on one pipe (arguments), each answer one line on another (the return value, or the
exception's name and message). Nothing but data leaves it.

``checker``: the task's *trusted* prompt (helpers such as HumanEval's ``encode_cyclic``) and
tests arrive on stdin; ``check(candidate)`` runs with ``candidate`` a proxy that sends the
arguments to the candidate's process and decodes its answer. Decoding builds only builtin values
(``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``list``, ``tuple``,
``dict``, ``set``, ``frozenset``): no object of the candidate's, no ``__eq__`` of its own, no
frame or memory of this process is reachable from the candidate. Only after ``check`` returned
does this process write ``pass`` on the verdict pipe, which only it holds.
"""

from __future__ import annotations

import json
import os
import sys

MESSAGE_CAP_BYTES = 8 * 1024 * 1024  # one call's arguments or one answer, encoded
MAX_DEPTH = 100
_SCALARS = (bool, int, float, str)


def encode(value: object, depth: int = 0) -> object:
    """Plain data as JSON; containers other than ``list`` are tagged objects of one key."""
    kind = type(value)
    if value is None or kind in _SCALARS:
        return value
    if depth > MAX_DEPTH:
        raise ValueError("nested too deep to cross")
    inner = depth + 1
    if kind is list:
        return [encode(v, inner) for v in value]  # type: ignore[attr-defined]
    if kind is tuple or kind is set or kind is frozenset:
        return {kind.__name__: [encode(v, inner) for v in value]}  # type: ignore[attr-defined]
    if kind is dict:
        pairs = value.items()  # type: ignore[attr-defined]
        return {"dict": [[encode(k, inner), encode(v, inner)] for k, v in pairs]}
    if kind is bytes:
        return {"bytes": value.hex()}  # type: ignore[attr-defined]
    if kind is complex:
        return {"complex": [value.real, value.imag]}  # type: ignore[attr-defined]
    raise TypeError(f"a {kind.__name__} is not plain data")


def decode(data: object, depth: int = 0) -> object:
    """The inverse of :func:`encode`; anything else is refused (ValueError)."""
    if data is None or type(data) in _SCALARS:
        return data
    if depth > MAX_DEPTH:
        raise ValueError("nested too deep")
    inner = depth + 1
    if type(data) is list:
        return [decode(v, inner) for v in data]
    if type(data) is dict and len(data) == 1:
        ((tag, body),) = data.items()
        if tag == "bytes" and type(body) is str:
            return bytes.fromhex(body)
        if type(body) is list:
            if tag == "tuple":
                return tuple(decode(v, inner) for v in body)
            if tag == "set":
                return {decode(v, inner) for v in body}
            if tag == "frozenset":
                return frozenset(decode(v, inner) for v in body)
            if tag == "dict" and all(type(p) is list and len(p) == 2 for p in body):
                return {decode(k, inner): decode(v, inner) for k, v in body}
            if tag == "complex" and len(body) == 2 and all(type(x) in (int, float) for x in body):
                return complex(body[0], body[1])
    raise ValueError("not plain data")


def send(fd: int, message: object) -> None:
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    if len(data) > MESSAGE_CAP_BYTES:
        raise ValueError(f"message over {MESSAGE_CAP_BYTES} bytes")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def receive(stream) -> object:
    """One message; None when the other side is gone (EOF), ValueError when too long or bad."""
    line = stream.readline(MESSAGE_CAP_BYTES + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise ValueError("message too long or cut")
    return json.loads(line)


def _load_exec_filter(fd: int) -> None:
    """Stack a seccomp filter (compiled by the harness) that denies execve: bwrap's own filter
    cannot, since bwrap itself must exec this interpreter after loading it."""
    import ctypes

    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    bpf = b"".join(chunks)

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = Prog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0 or libc.prctl(
        pr_set_seccomp, seccomp_mode_filter, ctypes.byref(prog), 0, 0
    ):
        raise OSError(ctypes.get_errno(), "sandbox: cannot load the exec filter")


def _drop_to(uid: int) -> None:
    """From uid 0 of the sandbox's user namespace (host uid 0, as the harness runs as root) to
    ``uid`` (host uid ``uid``), with no capability left, not even in the bounding set."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    os.chown(os.getcwd(), uid, uid)  # /tmp, made by bwrap as uid 0
    pr_capbset_drop, last_cap = 24, int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last_cap + 1):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "sandbox: cannot drop a capability")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears the permitted and effective capabilities
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
        raise OSError("sandbox: cannot drop to the sandbox's uid")


def _apply_limits(cfg: dict) -> None:
    import resource

    mem, cpu = cfg["memory_bytes"], cfg["cpu_s"]
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["file_bytes"], cfg["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))


def _install_guard() -> None:
    """Second line only (it can be switched off from inside): no subprocesses, sockets or
    ctypes, no writes outside the working directory."""
    root = os.getcwd()
    deny = tuple(
        "socket. subprocess. os.fork os.forkpty os.exec os.posix_spawn os.spawn os.system os.kill"
        " os.killpg ctypes. os.setuid os.chroot pty. _posixsubprocess. os.startfile os.putenv"
        " os.unsetenv sys.addaudithook".split()
    )
    writes = frozenset(
        "os.remove os.rmdir os.rename os.link os.symlink os.truncate os.chmod os.chown os.mkdir"
        " shutil.rmtree shutil.copyfile shutil.move os.utime".split()
    )
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
                if isinstance(a, int) and a >= 0 and event != "os.chmod":
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


def _serve(fn, req_fd: int, resp_fd: int) -> None:
    """Answer the checker's calls until it hangs up."""
    requests = open(req_fd, "rb")  # noqa: SIM115 - lives as long as the process
    while True:
        try:
            message = receive(requests)
            if message is None:
                return
            args, kwargs = decode(message)
            answer = {"ok": encode(fn(*args, **kwargs))}
        except Exception as exc:  # the candidate's own failure: an answer like any other
            answer = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        try:
            send(resp_fd, answer)
        except ValueError as exc:
            send(resp_fd, {"error": f"ValueError: {exc}"})


def _candidate(cfg: dict, source: bytes) -> None:
    with open("solution.py", "wb") as fh:  # before the limits: not cut by RLIMIT_FSIZE
        fh.write(source)
    _apply_limits(cfg)
    _install_guard()
    namespace = {"__name__": "__main__"}
    exec(compile(source, "solution.py", "exec"), namespace)
    sys.stdout.flush()
    if cfg.get("entry_point") is not None:
        fn = namespace.get(cfg["entry_point"])
        if not callable(fn):
            raise NameError(f"the program defines no function {cfg['entry_point']!r}")
        _serve(fn, cfg["req_fd"], cfg["resp_fd"])


class CandidateError(Exception):
    """The candidate's process gave no usable answer (it raised, ended or sent no data)."""


def _checker(cfg: dict, job: dict) -> None:
    req_fd, verdict_fd = cfg["req_fd"], cfg["verdict_fd"]
    answers = open(cfg["resp_fd"], "rb")  # noqa: SIM115 - lives as long as the process
    _apply_limits(cfg)
    _install_guard()

    def candidate(*args, **kwargs):
        try:
            send(req_fd, encode((args, kwargs)))
        except BrokenPipeError:
            raise CandidateError("the candidate's process has ended") from None
        reply = receive(answers)
        if reply is None:
            raise CandidateError("the candidate's process ended without an answer")
        if type(reply) is dict and len(reply) == 1 and "ok" in reply:
            return decode(reply["ok"])
        if type(reply) is dict and len(reply) == 1 and type(reply.get("error")) is str:
            raise CandidateError(reply["error"])
        raise CandidateError("malformed answer")

    namespace = {"__name__": "__checker__"}
    exec(compile(job["prompt"], "prompt.py", "exec"), namespace)
    namespace[job["entry_point"]] = candidate  # tests that call it by name (HumanEval/33)
    exec(compile(job["test"], "test.py", "exec"), namespace)
    namespace["check"](candidate)
    sys.stdout.flush()
    os.write(verdict_fd, b"pass\n")


def main() -> None:
    role, cfg = sys.argv[1], json.loads(sys.argv[2])
    if cfg.get("drop_to_uid") is not None:
        _drop_to(cfg["drop_to_uid"])
    if cfg.get("exec_filter_fd") is not None:
        _load_exec_filter(cfg["exec_filter_fd"])
    chunks = []
    while chunk := os.read(0, 1 << 20):
        chunks.append(chunk)
    os.close(0)
    data = b"".join(chunks)
    if role == "candidate":
        _candidate(cfg, data)
    elif role == "checker":
        _checker(cfg, json.loads(data))
    elif role != "probe":  # the harness's check that sandboxes start here: nothing to run
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
