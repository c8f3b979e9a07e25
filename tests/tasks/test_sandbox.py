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
        "raise SystemExit(0 if not os.path.exists(target) else 1)\n"
    )
    result = run_untrusted(code, timeout_s=5, memory_mb=256)
    assert not result.passed
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


def test_early_exit_before_the_assertions_fails() -> None:
    """Scoring needs the run's token, printed only after the program's last line ran."""
    for exit_call in ("os._exit(0)", "sys.exit(0)", "raise SystemExit"):
        result = _run(f"import os, sys\n{exit_call}\nassert 1 == 2\n")
        assert result.returncode == 0 and not result.passed, (exit_call, result)
    assert _run("import os\nassert 1 == 1\n").passed


def test_token_is_not_in_the_source_argv_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "f00d" * 8
    monkeypatch.setattr(sandbox.secrets, "token_hex", lambda n: token)
    code = (
        "import os, sys\n"
        "print('SRC', open('solution.py').read())  # check()\n"
        "print('ARGV', sys.argv, open('/proc/self/cmdline', 'rb').read())\n"
        "print('ENV', dict(os.environ), flush=True)\n"
        "os._exit(0)\n"
    )
    result = _run(code)
    assert not result.passed and "SRC" in result.output, result
    assert "check()" in result.output and token not in result.output


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
