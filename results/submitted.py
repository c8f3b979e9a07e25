"""Result files others submitted, shown on the board beside the local runs.

``uisbench site build --results DIR`` reads every result file in ``DIR`` (``uisbench results
export``, :mod:`uisbench.results.export`) and keeps those whose bank content digest matches a
bank of the local database (one line for each it leaves out, and why). Each is shown with its
provenance (strategy and code version, submitter, uisbench version and commit) and a badge:

- *submitted*: as exported, nothing re-run here;
- *verified*: ``uisbench gate --baseline FILE --verify`` re-ran every configuration here, each
  strategy in its own process, and found every one equal within the tolerances, both ways (an
  accuracy neither lower nor higher by more than ``max_accuracy_drop``, a mean cost neither
  higher nor lower by more than ``max_cost_increase``). The gate writes its verdict beside the
  file (``NAME.verified.json``) with the file's SHA-256: a file edited afterwards is *submitted*
  again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from uisbench.errors import UisbenchError
from uisbench.files import read_bounded
from uisbench.provenance import git_commit, uisbench_version
from uisbench.results.compare import Comparison
from uisbench.results.export import MAX_RESULT_BYTES, ResultSet, read_results
from uisbench.store import schema
from uisbench.store.digest import bank_digest

VERIFICATION_FORMAT = "uisbench-verification/1"
VERIFIED_SUFFIX = ".verified.json"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a result file, read as :func:`read_results` reads it (bounded)."""
    return "sha256:" + hashlib.sha256(read_bounded(Path(path), MAX_RESULT_BYTES)).hexdigest()


def verification_path(path: Path) -> Path:
    """Where the gate's verdict on the result file ``path`` is kept: ``NAME.verified.json``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".json") + VERIFIED_SUFFIX)


# ---------------------------------------------------------------- the gate's verdict
def equal_within_tolerance(cmp: Comparison) -> list[str]:
    """Why the re-run is not the submitted result (empty: equal within the tolerances, both
    ways, every configuration re-run)."""
    tol = cmp.tolerances
    why = [f"{task} {config}: not re-run" for task, config in cmp.missing]
    for r in cmp.rows:
        if abs(r.d_acc) > tol.max_accuracy_drop:
            why.append(
                f"{r.task} {r.config}: accuracy {r.acc_candidate:.4f} here, "
                f"{r.acc_baseline:.4f} submitted"
            )
        if np.isfinite(r.d_cost) and abs(r.d_cost) > tol.max_cost_increase:
            why.append(f"{r.task} {r.config}: mean cost {r.d_cost:+.1%} here")
    return why


def write_verification(results_path: Path, cmp: Comparison) -> tuple[Path, bool]:
    """Write the gate's verdict beside the result file; (its path, verified)."""
    why = equal_within_tolerance(cmp)
    record = {
        "format": VERIFICATION_FORMAT,
        "results": Path(results_path).name,
        "sha256": file_sha256(results_path),
        "verified": not why,
        "why_not": why,
        "tolerances": asdict(cmp.tolerances),
        "isolation": "process",
        "uisbench_version": uisbench_version(),
        "git_commit": git_commit(),
        "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "configs": [
            {"task": r.task, "config": r.config, "accuracy": r.acc_candidate, "d_cost": r.d_cost}
            for r in cmp.rows
        ],
    }
    out = verification_path(results_path)
    out.write_text(json.dumps(record, indent=1, allow_nan=False, default=str) + "\n", "utf-8")
    return out, not why


def _verified(path: Path, sha: str) -> dict[str, Any] | None:
    """The gate's record for this exact file, if it verified it."""
    record_path = verification_path(path)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and record.get("format") == VERIFICATION_FORMAT
    if ok and record.get("sha256") == sha and record.get("verified") is True:
        return record
    return None


# ---------------------------------------------------------------- on the board
@dataclass
class Submission:
    """One submitted result file matched to a local bank, summarised per configuration."""

    file: str
    sha256: str
    bank: str  # the local bank with the same content
    status: str  # "submitted" | "verified"
    provenance: dict[str, Any]
    configs: list[dict[str, Any]] = field(default_factory=list)
    verified_at: str | None = None


def _local_digests(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        names = list(
            conn.execute(select(schema.banks.c.name).order_by(schema.banks.c.name)).scalars()
        )
        return {bank_digest(conn, name): name for name in names}


def _mean(x: Any) -> float | None:
    x = np.asarray(x, dtype=float)
    return float(np.nanmean(x)) if np.isfinite(x).any() else None


def _configs(results: ResultSet) -> list[dict[str, Any]]:
    code = results.provenance.get("code") or {}
    groups: dict[tuple[str, str], list] = {}
    for run in results.runs:
        groups.setdefault((run.task, run.config), []).append(run)
    out = []
    for (task, config), runs in sorted(groups.items()):
        q = [r.queries for r in runs]
        out.append(
            {
                "task": task,
                "config": config,
                "strategy": runs[0].strategy,
                "code": code.get(runs[0].strategy) if isinstance(code, dict) else None,
                "seeds": sorted({r.seed for r in runs}),
                "n_queries": int(np.mean([len(x) for x in q])),
                "accuracy": _mean(np.concatenate([x["correct"].to_numpy() for x in q])),
                "dollars": _mean(np.concatenate([x["dollars"].to_numpy() for x in q])),
                "flops": _mean(np.concatenate([x["flops"].to_numpy() for x in q])),
                "tokens": _mean(np.concatenate([x["tokens"].to_numpy() for x in q])),
            }
        )
    return out


def load_submissions(engine: Engine, folder: Path) -> list[Submission]:
    """The result files in ``folder`` made on a local bank (matched by content digest), each
    with its badge; a file left out gets one line on stderr saying why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UisbenchError(f"--results {folder}: not a folder")
    local = _local_digests(engine)
    out = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(VERIFIED_SUFFIX):
            continue
        try:
            results = read_results(path)
        except UisbenchError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        if results.digest not in local:
            print(
                f"skipped: {path.name}: made on bank {results.bank!r} {results.digest}, "
                "which no local bank matches",
                file=sys.stderr,
            )
            continue
        sha = file_sha256(path)
        record = _verified(path, sha)
        prov = {
            k: results.provenance.get(k) for k in ("submitter", "uisbench_version", "git_commit")
        }
        out.append(
            Submission(
                file=path.name,
                sha256=sha,
                bank=local[results.digest],
                status="verified" if record else "submitted",
                provenance=prov,
                configs=_configs(results),
                verified_at=record.get("verified_at") if record else None,
            )
        )
    return out
