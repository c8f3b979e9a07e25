"""Isolation benchmark: the default job in-process against every strategy in its own process.

One command::

    .venv/bin/python bench/isolation.py [--rounds 1]

runs the default job (``uisbench run``: every strategy's default sweep, three seeds, on the bank
shipped with uisbench) into a fresh SQLite database once with ``--isolation inprocess`` and once
with ``--isolation process`` (the built-ins forked per run from the strategy template, as every
plugin is), alternating within each round so that both see the same machine load, and prints
the wall time of each, their ratio, the load average and the isolation layers in force. It also
prints the CPU time (user + system) of each command with all its processes, a ratio that the load
of a shared machine moves far less than the wall one: the command's and its workers' from
``getrusage``, and each strategy template's with its children's (bubblewrap does not pass them
up) sampled from ``/proc`` every 0.2 s until it ends (what a template spends in its last 0.2 s
is missed). It checks that both jobs print the same report (they replay the
same decisions). Run it with another checkout's interpreter to time that checkout (the command
runs ``sys.executable -m uisbench.cli``). The figures are written to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from uisbench.isolation import isolation_layers

TARGET_RATIO = 1.5


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _templates(root: int, seen: dict[int, float]) -> None:
    """Record the CPU seconds (own and waited-for children's) of each strategy template among
    ``root``'s descendants."""
    parent: dict[int, int] = {}
    fields: dict[int, list[str]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    rest = fh.read().rpartition(")")[2].split()
            except OSError:
                continue
            parent[int(name)], fields[int(name)] = int(rest[1]), rest

    def template(pid: int) -> bool:  # the interpreter (not bubblewrap) running template_main
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            return False
        return b"python" in os.path.basename(argv[0]) and b"template_main" in b" ".join(argv)

    tick = os.sysconf("SC_CLK_TCK")
    for pid, rest in fields.items():
        up = pid
        while up in parent and up != root:
            up = parent[up]
        # a template, not one of its runs' children (their time is in its cutime once waited)
        if up == root and template(pid) and not template(parent[pid]):
            cpu = sum(int(x) for x in rest[11:15]) / tick  # utime stime cutime cstime
            seen[pid] = max(seen.get(pid, 0.0), cpu)


def one_job(mode: str, folder: Path) -> tuple[float, float, str]:
    """(wall s, CPU s, report) of the default job into a fresh database."""
    db = folder / f"{mode}.db"
    db.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "uisbench.cli", "run", "--isolation", mode, "--db", str(db)]
    cpu, start, seen = _cpu(), time.perf_counter(), {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=folder)
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(proc.stdout.read)
        while proc.poll() is None:
            _templates(proc.pid, seen)
            time.sleep(0.2)
        report = out.result().decode()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}")
    return time.perf_counter() - start, _cpu() - cpu + sum(seen.values()), report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"isolation layers: {', '.join(isolation_layers())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for r in range(args.rounds):
            load = os.getloadavg()
            t_in, c_in, rep_in = one_job("inprocess", folder)
            t_proc, c_proc, rep_proc = one_job("process", folder)
            same = "same report" if rep_in == rep_proc else "REPORTS DIFFER"
            ratio = t_proc / t_in
            verdict = "within" if ratio <= TARGET_RATIO else "over"
            print(
                f"round {r}: inprocess {t_in:.1f} s, process {t_proc:.1f} s, ratio {ratio:.2f} "
                f"({verdict} the {TARGET_RATIO}x target); CPU {c_in:.1f} s and {c_proc:.1f} s, "
                f"ratio {c_proc / c_in:.2f}; {same}; load average at start "
                f"{load[0]:.1f}, at end {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
