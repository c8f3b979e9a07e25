"""What one run's fork costs a strategy template, by what the template imported.

Usage: ``python bench/fork_cost.py [MODULE,MODULE,... ...] [--forks 50]``

For each comma-separated list of modules (default: the strategy worker alone, then with
scipy.special, scipy.optimize and scikit-learn, as the routers and T2 import them), a fresh
interpreter imports them and forks ``--forks`` children that exit at once, as the template forks
one child per run. Prints the template's mappings and anonymous memory, and per fork the wall
time and the CPU of the parent (the fork) and of the child (its exit). Each list runs in its own
process, so one's imports do not weigh on the next.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

DEFAULT = [
    "uisbench.strategies.worker",
    "uisbench.strategies.worker,scipy.special",
    "uisbench.strategies.worker,scipy.optimize",
    "uisbench.strategies.worker,sklearn.linear_model",
]


def measure(modules: list[str], forks: int) -> str:
    for m in modules:
        __import__(m)
    with open("/proc/self/maps") as fh:
        maps = len(fh.readlines())
    with open("/proc/self/status") as fh:
        anon = next(line.split()[1] for line in fh if line.startswith("RssAnon"))
    start, cpu = time.perf_counter(), time.process_time()
    child_u = child_s = 0.0
    for _ in range(forks):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, _, usage = os.wait4(pid, 0)
        child_u, child_s = child_u + usage.ru_utime, child_s + usage.ru_stime
    wall, parent = time.perf_counter() - start, time.process_time() - cpu
    return (
        f"{','.join(modules)}: {maps} mappings, {int(anon) / 1024:.0f} MiB anonymous; per fork "
        f"{wall / forks * 1e3:.2f} ms wall, parent {parent / forks * 1e3:.2f} ms CPU, child "
        f"{(child_u + child_s) / forks * 1e3:.2f} ms CPU"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lists", nargs="*", default=DEFAULT, help="comma-separated module lists")
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # one list, in this process
    a = ap.parse_args()
    if a.one is not None:
        print(measure(a.one.split(","), a.forks), flush=True)
        return
    print(f"load average {os.getloadavg()[0]:.1f}")
    for modules in a.lists:
        cmd = [sys.executable, __file__, "--one", modules, "--forks", str(a.forks)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
