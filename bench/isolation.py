"""Isolation benchmark: the default job in-process against every strategy in its own process.

One command::

    .venv/bin/python bench/isolation.py [--rounds 1]

runs the default job (``uisbench run``: every strategy's default sweep, three seeds, on the bank
shipped with uisbench) into a fresh SQLite database once with ``--isolation inprocess`` and once
with ``--isolation process`` (the built-ins forked per run from the strategy template, as every
plugin is), alternating within each round so that both see the same machine load, and prints
the wall time of each, their ratio, the load average and the isolation layers in force. It also
checks that both jobs print the same report (they replay the same decisions). The figures are
written to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uisbench.isolation import isolation_layers

TARGET_RATIO = 1.5


def one_job(mode: str, folder: Path) -> tuple[float, str]:
    db = folder / f"{mode}.db"
    db.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "uisbench.cli", "run", "--isolation", mode, "--db", str(db)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, check=True)
    return time.perf_counter() - start, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"isolation layers: {', '.join(isolation_layers())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for r in range(args.rounds):
            load = os.getloadavg()
            t_in, rep_in = one_job("inprocess", folder)
            t_proc, rep_proc = one_job("process", folder)
            same = "same report" if rep_in == rep_proc else "REPORTS DIFFER"
            ratio = t_proc / t_in
            verdict = "within" if ratio <= TARGET_RATIO else "over"
            print(
                f"round {r}: inprocess {t_in:.1f} s, process {t_proc:.1f} s, ratio {ratio:.2f} "
                f"({verdict} the {TARGET_RATIO}x target), {same}; load average at start "
                f"{load[0]:.1f}, at end {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
