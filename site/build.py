"""``uisbench site build``: render the leaderboard database into a static HTML site.

The site renders what the results layer hands it (the boards of :mod:`uisbench.results.leaderboard`,
the rows of :mod:`uisbench.results.site_data`) and reads the database through nothing else.

The site opens from ``file://`` with no network: chart libraries are vendored in ``static/`` and
each chart's data is inlined in its page (and written beside it as CSV and JSON). Every string
from a model or a data set passes through jinja2 with autoescape on; chart specs are embedded with
``tojson``, which escapes ``<``, ``>``, ``&`` and quotes.

Pages: ``index.html`` (one ranked table and Pareto chart per task), ``tasks/`` (a page per task
with its charts and every configuration), ``configs/`` (settings, runs, regret curve), ``runs/``
(provenance and the drill-down decisions), ``queries/`` (one page per drilled-down query). The
drill-down is bounded: the first :data:`DRILL_QUERIES` test queries of each task (by key) get a page
(``uisbench site build --queries N``; 0 for all), so a 10,000-query bank builds as fast as a small
one.

Publishing: two builds from one database are byte-identical apart from the build stamp (the
footer's "Built ..." time, which honours ``SOURCE_DATE_EPOCH``, the reproducible-builds
convention). Page names come from keys, not insertion-order ids (runs by their run key, queries
by their query key), so links stay valid across rebuilds. Every page's footer states the
provenance of the data: each bank's name, content digest, source and licence (from the bank's
``NAME.bank.json``), and the uisbench version and commit that built the site. Links are
relative, so the site works under any sub-path; ``--base-url`` adds canonical URLs and a
``sitemap.xml`` for the address it is deployed at.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import escape

from uisbench.costs import DEFAULT_PREFIX_CACHE, DOLLARS_NOTE, FLOPS_NOTE
from uisbench.errors import UisbenchError
from uisbench.provenance import git_commit, uisbench_version
from uisbench.results.budget import METHOD as BUDGET_METHOD
from uisbench.results.leaderboard import UNITS, TaskBoard, leaderboard, mean_curve, regret_curves
from uisbench.results.report import dash_reasons, short_config
from uisbench.results.site_data import (
    bank_provenance,
    complete_runs,
    drill_rows,
    models_by_name,
)
from uisbench.site.bidi import download_cell, download_json, dumps_without_bidi, strip_bidi
from uisbench.site.charts import (
    budget_spec,
    law_spec,
    learning_curve_spec,
    pareto_spec,
    plot_group,
    regret_spec,
)
from uisbench.site.writer import PageWriter
from uisbench.tasks import task_note

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: Strategy-table columns left out when no strategy of the task has a figure in them.
EMPTY_COLUMN_NAMES = {
    "aiq_flops": "AIQ (flops)",
    "aiq_dollars": "AIQ (dollars)",
    "apgr": "APGR",
    "cpt50": "CPT(50%)",
    "cpt80": "CPT(80%)",
    "match": "cost to match the best single model",
}
CHART_UNITS = ("flops", "dollars")  # tokens are charted only when neither is known
DRILL_QUERIES = 30  # queries per task that get a drill-down page (bounded: big banks stay fast)
MAX_BANK_SAMPLES = 32  # recorded samples shown per model on a query page
HERE = Path(__file__).resolve().parent
SYNTHETIC_NOTE = "SYNTHETIC bank: generated for speed tests; these are not model results."
#: Columns of a Pareto chart's points (also its CSV/JSON download).
POINT_COLUMNS = [
    "config_label",
    "short",
    "label",
    "strategy",
    "family",
    "group",
    "kind",
    "accuracy",
    "ci_low",
    "ci_high",
    "cost",
    "samples_per_query",
    "n_queries",
    "n_seeds",
    "href",
]


# ----------------------------------------------------------------------- formatting
def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def fmt_num(x: Any, spec: str = ".3g") -> str:
    if _nan(x):
        return "—"
    return format(float(x), spec)


def fmt_cost(x: Any, unit: str) -> str:
    if _nan(x):
        return "—"
    x = float(x)
    if unit == "dollars":
        return f"${x:.3g}"
    if unit == "tokens":
        return f"{x:,.0f}"
    if unit == "latency_s":
        return f"{x:.3g} s"
    return f"{x:.3g}"


def fmt_time(x: Any) -> str:
    """Timestamps to the second, with their zone when they carry one."""
    if _nan(x) or x is pd.NaT:
        return "—"
    if isinstance(x, datetime):
        return x.strftime("%Y-%m-%d %H:%M:%S") + (f" {x.tzname()}" if x.tzinfo else " UTC")
    return str(x)


def fmt_pct(x: Any) -> str:
    return "—" if _nan(x) else f"{100 * float(x):.1f}%"


def readable(x: Any) -> str:
    """A scalar as a reader wants it: floats to 4 significant digits, None as —."""
    if _nan(x):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (float, np.floating)):
        return format(float(x), ".4g")
    return str(x)


def json_text(obj: Any) -> str:
    """JSON for a reader (× and α as themselves, not ``\\u00d7``); escaped by the template."""
    return dumps_without_bidi(obj, ensure_ascii=False, sort_keys=True, default=str)


def sort_key(x: Any) -> str:
    """Value for the ``data-sort`` attribute: numbers sort numerically, NaN last."""
    if _nan(x):
        return ""
    if isinstance(x, (int, float, np.integer, np.floating)):
        return repr(float(x))
    return str(x)


def board_slug(board: TaskBoard) -> str:
    """A board's page name: task@bank, with the prefix-cache setting where it is not the
    default (boards of one task and bank under two settings must not share a page)."""
    cache = board.prefix_cache
    suffix = "@" + cache if cache and cache != DEFAULT_PREFIX_CACHE else ""
    return slug(board.task + "@" + board.bank + suffix)


def _board_runs(board: TaskBoard, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a board summarises: its task and bank, under its prefix-cache setting."""
    mine = runs[(runs["task"] == board.task) & (runs["board"] == board.bank)]
    if board.prefix_cache and "prefix_cache" in mine:
        mine = mine[mine["prefix_cache"] == board.prefix_cache]
    return mine


def slug(text: str) -> str:
    """A file-name-safe, collision-free name for any string."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "x"
    return f"{base}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def short_label(label: str) -> str:
    """``single:model=llama3.1-8b`` → ``llama3.1-8b`` for chart labels."""
    _, _, rest = label.partition(":")
    return rest.removeprefix("model=") if label.startswith("single:") else label


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=strip_bidi,
    )
    env.policies["json.dumps_function"] = dumps_without_bidi
    env.filters.update(
        num=fmt_num,
        cost=fmt_cost,
        pct=fmt_pct,
        sortkey=sort_key,
        time=fmt_time,
        readable=readable,
        column_name=lambda c: EMPTY_COLUMN_NAMES.get(c, c),
        shortcfg=lambda label: short_label(short_config(str(label))),
        json_text=json_text,
    )
    env.globals.update(
        UNITS=UNITS,
        FLOPS_NOTE=FLOPS_NOTE,
        DOLLARS_NOTE=DOLLARS_NOTE,
        SYNTHETIC_NOTE=SYNTHETIC_NOTE,
        MAX_SAMPLES=MAX_BANK_SAMPLES,
        isnan=_nan,
    )
    return env


def run_page(run_key: str) -> str:
    """A run's page, named by its run key (stable across databases and rebuilds)."""
    return f"runs/{run_key[:16]}.html"


def build_stamp() -> str:
    """The one part of the site that changes between builds: ``SOURCE_DATE_EPOCH`` or now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _arms_text(arms: Any) -> str:
    """``model×samples`` per arm drawn; a router's metered overhead (an embedding, a scorer)
    is named as such after them, never read as an arm."""
    if not arms:
        return "—"
    parts, overheads = [], []
    for a in arms:
        if isinstance(a, dict) and "overhead" in a and "model" not in a:
            overheads.append(f"overhead {a['overhead']}")
        elif isinstance(a, dict):
            parts.append(f"{a.get('model', '?')}×{a.get('n', '?')}")
        else:
            parts.append(str(a))
    return " + ".join(filter(None, [", ".join(parts), *overheads])) or "—"


def with_chosen(params: Any, summary: dict[str, Any]) -> Any:
    """A run's settings, where an option left to the strategy (None) shows what it chose
    (UniScale's tuned alpha and dim): ``— → chose 0.05``."""
    chosen = summary.get("settings")
    if not isinstance(params, dict) or not isinstance(chosen, dict):
        return params
    return {
        k: f"— → chose {readable(chosen[k])}" if v is None and k in chosen else v
        for k, v in params.items()
    }


def strategy_notes(summary: dict[str, Any]) -> list[str]:
    """One line per thing a reader of a run's figures must not miss: a bandit that pulled one
    arm throughout (it never explored), and which fit the fit warnings come from."""
    notes = []
    pulls = summary.get("pulls")
    if isinstance(pulls, dict) and len(pulls) == 1:
        ((arm, n),) = pulls.items()
        notes.append(
            f"The bandit pulled one arm throughout: {arm} on all {n} test queries "
            "(it never switched; its choice rests on the warm start)."
        )
    chosen = summary.get("settings")
    if isinstance(chosen, dict):
        picked = ", ".join(
            f"{k} {readable(v)}"
            for k, v in chosen.items()
            if k != "how" and not isinstance(v, (dict, list))
        )
        how = f" ({chosen['how']})" if chosen.get("how") else ""
        notes.append(f"Settings it chose: {picked}{how}.")
    warnings = summary.get("warnings")
    if warnings:
        fit = summary.get("fit") or "the strategy's fit"
        notes += [f"Fit warning ({fit}): {w}" for w in warnings]
    return notes


def _write_data(folder: Path, name: str, frame: pd.DataFrame) -> dict[str, str]:
    """CSV and JSON downloads of a chart's data; returns their paths relative to the site."""
    folder.mkdir(parents=True, exist_ok=True)
    numeric = set(frame.select_dtypes(include=["number", "bool"]).columns)
    cleaned = frame.copy()
    for col in [c for c in frame.columns if c not in numeric]:
        cleaned[col] = frame[col].map(download_cell)
    cleaned.to_csv(folder / f"{name}.csv", index=False)
    json_text = download_json(frame.to_json(orient="records", indent=1))
    (folder / f"{name}.json").write_text(json_text, "utf-8")
    return {"csv": f"data/{name}.csv", "json": f"data/{name}.json"}


# ----------------------------------------------------------------------- build
class _Site:
    def __init__(
        self,
        engine: Engine,
        out: Path,
        include_synthetic: bool,
        drill_queries: int,
        base_url: str | None = None,
        progress: Callable[[int, int, str], None] | None = None,
        jobs: int = 1,
    ) -> None:
        self.engine = engine
        self.progress = progress or (lambda done, total, label: None)
        self.drill_queries = drill_queries
        self.out = out
        self.include_synthetic = include_synthetic
        self.base_url = base_url
        self.env = _env()
        self.built_at = build_stamp()
        self.version = uisbench_version()
        self.commit = git_commit()
        self.paths: list[str] = []
        self.pages = PageWriter(self.env, out, jobs)
        self.submitted: list = []  # result files others submitted (results/submitted.py)

    def render(self, template: str, path: str, **ctx: Any) -> None:
        """Queue the page ``path`` (written by every core at the end of the build)."""
        common = {
            "root": "../" * path.count("/"),
            "built_at": self.built_at,
            "version": self.version,
            "commit": self.commit,
            "provenance": self.provenance,
            "canonical": f"{self.base_url}{path}" if self.base_url else None,
            "tasks_nav": self.tasks_nav,
        }
        self.pages.add(template, path, {**common, **ctx})
        self.paths.append(path)

    def _sitemap(self) -> None:
        """``sitemap.xml`` of every page at ``--base-url`` (sorted: deterministic)."""
        urls = "".join(
            f"<url><loc>{escape(self.base_url + p)}</loc></url>\n" for p in sorted(self.paths)
        )
        head = '<?xml version="1.0" encoding="UTF-8"?>\n'
        xmlns = "http://www.sitemaps.org/schemas/sitemap/0.9"
        text = f'{head}<urlset xmlns="{xmlns}">\n{urls}</urlset>\n'
        (self.out / "sitemap.xml").write_text(text, encoding="utf-8")

    def build(self) -> Path:
        run_stats, boards = leaderboard(self.engine, self.include_synthetic)
        runs = complete_runs(self.engine, self.include_synthetic)
        self.acc_by_run = (
            dict(zip(run_stats["run_id"], run_stats["accuracy"])) if len(run_stats) else {}
        )
        models = models_by_name(self.engine)
        labels = {b.bank for b in boards}
        shown = runs.loc[runs["board"].isin(labels), "bank"] if len(runs) else []
        self.provenance = bank_provenance(self.engine, list(shown))
        self._prepare_out()
        self.notes = {b.task: task_note(b.task) for b in boards}
        self.tasks_nav = [
            {
                "task": b.task,
                "bank": b.bank,
                "synthetic": b.synthetic,
                "smoke": self.notes[b.task].smoke,
                "href": f"tasks/{board_slug(b)}.html",
            }
            for b in boards
        ]
        online = run_stats.loc[run_stats["n_reward"] > 0, "run_id"] if len(run_stats) else []
        curves = regret_curves(self.engine, [int(i) for i in online])
        index_tasks = []
        for i, board in enumerate(boards):
            self.progress(i, len(boards), f"{board.task} ({len(self.paths)} pages so far)")
            index_tasks.append(self._task(board, runs, models, curves))
        self.progress(len(boards), len(boards), f"{len(self.paths)} pages")
        self.render(
            "index.html",
            "index.html",
            tasks=index_tasks,
            include_synthetic=self.include_synthetic,
            submitted=self.submitted,
        )
        self.pages.flush()
        (self.out / "sitemap.xml").unlink(missing_ok=True)
        if self.base_url:
            self._sitemap()
        return self.out

    def _prepare_out(self) -> None:
        if self.out.exists() and not (self.out / ".uisbench-site").exists():
            if any(self.out.iterdir()):
                raise UisbenchError(
                    f"{self.out} exists and is not a uisbench site; choose another --out"
                )
        for sub in ("tasks", "configs", "runs", "queries", "data", "static"):
            shutil.rmtree(self.out / sub, ignore_errors=True)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / ".uisbench-site").write_text("built by uisbench site build\n")
        shutil.copytree(HERE / "static", self.out / "static")

    # ------------------------------------------------------------------ per task
    def _task(
        self,
        board: TaskBoard,
        runs: pd.DataFrame,
        models: dict[str, dict[str, Any]],
        curves: pd.DataFrame,
    ) -> dict[str, Any]:
        """Every page of one (task, bank): its runs, configurations, drilled queries and itself;
        returns the task's entry on the index page."""
        tslug = board_slug(board)
        page = _TaskPages(
            board=board,
            slug=tslug,
            href=f"tasks/{tslug}.html",
            runs=_board_runs(board, runs),
            configs=_configs_table(board, tslug),
            ctx={"board": board, "synthetic": board.synthetic, "note": self.notes[board.task]},
        )
        charts = self._charts(page)
        downloads = {"configs": _write_data(self.out / "data", f"{tslug}.configs", page.configs)}
        drill = self._drill_down(page)
        self._run_pages(page, models, drill)
        self._config_pages(page, curves)
        qlist = self._query_pages(page, drill)
        strategies = board.strategies.copy()
        if len(board.curves):
            strategies = strategies.merge(board.curves, on="strategy", how="left")
        strategies["anchor"] = "strategy-" + strategies["strategy"].map(slug)
        n_test = int(board.configs["n_queries"].max())
        self.render(
            "task.html",
            page.href,
            charts=charts,
            configs=page.configs.to_dict(orient="records"),
            strategies=strategies.to_dict(orient="records"),
            families=board.families.to_dict(orient="records"),
            family_units=[
                u
                for u in UNITS
                if f"aiq_{u}" in board.families and board.families[f"aiq_{u}"].notna().any()
            ],
            downloads=downloads,
            queries=qlist,
            n_test=n_test,
            runs=page.runs.to_dict(orient="records"),
            families_present=sorted(page.configs["family"].unique()),
            task_href=page.href,
            budget=board.budget.to_dict(orient="records"),
            budget_method=BUDGET_METHOD,
            budget_chart=budget_spec(board.budget, board.unit),
            empty=empty_columns(strategies, board.unit),
            reasons=[r for r in dash_reasons(board) if r not in board.notes],
            **page.ctx,
        )
        primary = next((c for c in charts if c["unit"] == board.unit), None)
        return {
            "board": board,
            "href": page.href,
            "strategies": strategies.to_dict(orient="records"),
            "chart": primary or (charts[0] if charts else None),
            "n_test": n_test,
            "note": page.ctx["note"],
            "n_runs": len(page.runs),
            "slug": tslug,
            "reasons": [
                r
                for r in dash_reasons(board)
                if r not in board.notes and not r.startswith("At a model's cost")
            ],
            "empty": empty_columns(strategies, board.unit),
        }

    def _charts(self, page: _TaskPages) -> list[dict[str, Any]]:
        """One Pareto chart per cost unit that has figures, with its data as downloads."""
        configs, fronts = page.configs, page.board.fronts
        charts = []
        plotted = [u for u in CHART_UNITS if configs[u].notna().any()] or [page.board.unit]
        for u in plotted:
            pts = configs.assign(cost=configs[u])[POINT_COLUMNS].dropna(subset=["cost"])
            spec = pareto_spec(pts, fronts, u)
            if spec is None:
                continue
            links = _write_data(self.out / "data", f"{page.slug}.{u}.points", pts)
            links["fronts_csv"] = None  # no front (a board of oracle runs only)
            if len(fronts):
                fr = fronts[fronts["unit"] == u]
                name = f"{page.slug}.{u}.fronts"
                links["fronts_csv"] = _write_data(self.out / "data", name, fr)["csv"]
            hidden = int((pts["cost"] <= 0).sum())
            charts.append(
                {
                    "unit": u,
                    "spec": spec,
                    "links": links,
                    "hidden": hidden,
                    "id": f"pareto-{page.slug}-{u}",  # unique on the index, where tasks meet
                    "prefix_cache": page.board.prefix_cache,
                }
            )
        return charts

    def _drill_down(self, page: _TaskPages) -> _Drill:
        """Decisions and recorded samples of the first ``drill_queries`` test queries (by key)."""
        truns = page.runs
        run_ids = [int(r) for r in truns["id"]]
        bank_id = int(truns["bank_id"].iloc[0]) if len(truns) else -1
        rows = drill_rows(self.engine, run_ids, bank_id, self.drill_queries, MAX_BANK_SAMPLES)
        qids, dec, queries = rows.query_ids, rows.decisions, rows.queries
        if len(dec):
            dec["arms_text"] = dec["arms"].map(_arms_text)
            dec["config_label"] = dec["run_id"].map(dict(zip(truns["id"], truns["config_label"])))
            dec["seed"] = dec["run_id"].map(dict(zip(truns["id"], truns["seed"])))
        drill = _Drill(
            qids=qids,
            queries=queries,
            samples=rows.samples,
            qpage={q: f"queries/{page.slug}/{slug(queries[q]['query_key'])}.html" for q in qids},
        )
        for row in dec.to_dict(orient="records") if len(dec) else []:
            row["query_key"] = queries.get(row["query_id"], {}).get("query_key", row["query_id"])
            drill.per_run[int(row["run_id"])].append(row)
            drill.per_query[int(row["query_id"])].append(row)
        return drill

    def _run_pages(
        self, page: _TaskPages, models: dict[str, dict[str, Any]], drill: _Drill
    ) -> None:
        for _, run in page.runs.iterrows():
            rid = int(run["id"])
            summary = dict(run["summary"] or {})
            strategy_summary = dict(summary.pop("strategy", None) or {})
            curve = strategy_summary.pop("learning_curve", None)
            law = strategy_summary.pop("law_points", None)
            self.render(
                "run.html",
                run_page(run["run_key"]),
                strategy_summary=strategy_summary,
                learning_curve=learning_curve_spec(curve) if isinstance(curve, dict) else None,
                law_chart=(
                    law_spec(law, str(strategy_summary.get("metric", "")))
                    if isinstance(law, list)
                    else None
                ),
                strategy_notes=strategy_notes(strategy_summary),
                run_summary=summary,
                run={**run.to_dict(), "params": with_chosen(run["params"], strategy_summary)},
                pool=[models.get(m, {"name": m}) for m in (run["models"] or [])],
                accuracy=self.acc_by_run.get(rid),
                task_href=page.href,
                config_href=f"configs/{page.slug}/{slug(run['config_label'])}.html",
                decisions=sorted(drill.per_run.get(rid, []), key=lambda r: r["position"]),
                qpage=drill.qpage,
                n_drill=len(drill.qids),
                **page.ctx,
            )

    def _config_pages(self, page: _TaskPages, curves: pd.DataFrame) -> None:
        truns = page.runs
        runs_of = {k: g for k, g in truns.groupby("config_label")}
        curves_of = {k: g for k, g in curves.groupby("run_id")} if len(curves) else {}
        for cfg in page.configs.to_dict(orient="records"):
            cruns = runs_of.get(cfg["config_label"], truns.iloc[:0])
            parts = [curves_of[i] for i in cruns["id"] if i in curves_of]
            name = f"{page.slug}.{slug(cfg['config_label'])}.regret"
            params = cruns["params"].iloc[0] if len(cruns) else {}
            self.render(
                "config.html",
                cfg["href"],
                cfg=cfg,
                params=params or {},
                runs=[
                    {**r, "accuracy": self.acc_by_run.get(int(r["id"]))}
                    for r in cruns.to_dict(orient="records")
                ],
                regret=self._regret(parts, name),
                run_href=dict(zip(cruns["id"].astype(int), cruns["run_key"].map(run_page))),
                task_href=page.href,
                **page.ctx,
            )

    def _regret(self, parts: list[pd.DataFrame], name: str) -> dict[str, Any] | None:
        """The mean regret curve over a configuration's seeds (online strategies only)."""
        if not parts:
            return None
        c = pd.concat(parts)
        if not len(c):
            return None
        m = mean_curve(c)
        spec = regret_spec(m)
        if spec is None:
            return None
        return {
            "spec": spec,
            "links": _write_data(self.out / "data", name, m),
            "final": m.iloc[-1].to_dict(),
            "seeds": int(c["run_id"].nunique()),
        }

    def _query_pages(self, page: _TaskPages, drill: _Drill) -> list[dict[str, Any]]:
        """A page per drilled query: every run's decision and the recorded samples."""
        samples_by_q: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
        if len(drill.samples):
            for (q, model), g in drill.samples.groupby(["query_id", "model"], sort=True):
                samples_by_q[int(q)][model] = g.to_dict(orient="records")
        run_href = dict(zip(page.runs["id"].astype(int), page.runs["run_key"].map(run_page)))
        config_href = dict(zip(page.configs["config_label"], page.configs["href"]))
        qlist = []
        for q in drill.qids:
            blank = {"id": q, "query_key": str(q), "prompt": "", "reference": None}
            qrow = drill.queries.get(q, blank)
            rows = sorted(drill.per_query.get(q, []), key=lambda r: (r["config_label"], r["seed"]))
            n_ok = sum(bool(r["correct"]) for r in rows)
            qlist.append(
                {
                    "id": q,
                    "key": qrow["query_key"],
                    "href": drill.qpage[q],
                    "correct": n_ok,
                    "decisions": len(rows),
                }
            )
            self.render(
                "query.html",
                drill.qpage[q],
                q=qrow,
                decisions=rows,
                samples=samples_by_q.get(q, {}),
                task_href=page.href,
                run_href=run_href,
                config_href=config_href,
                **page.ctx,
            )
        return qlist


@dataclass
class _TaskPages:
    """What every page of one (task, bank) shares."""

    board: TaskBoard
    slug: str
    href: str
    runs: pd.DataFrame
    configs: pd.DataFrame
    ctx: dict[str, Any]


@dataclass
class _Drill:
    """The drilled-down queries of one task: their rows, decisions by run and by query."""

    qids: list[int]
    queries: dict[int, dict[str, Any]]
    samples: pd.DataFrame
    qpage: dict[int, str]
    per_run: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    per_query: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def _configs_table(board: TaskBoard, tslug: str) -> pd.DataFrame:
    """The board's configurations with their chart group, short label, page and anchor."""
    configs = board.configs.copy()
    configs["group"] = configs.apply(plot_group, axis=1)
    configs["short"] = configs["config_label"].map(short_label)
    configs["label"] = chart_labels(configs, board.unit)
    configs["href"] = [f"configs/{tslug}/{slug(c)}.html" for c in configs["config_label"]]
    configs["anchor"] = "strategy-" + configs["strategy"].map(slug)
    return configs.sort_values(
        ["upper_bound", "family", "strategy", board.unit, "accuracy"], na_position="last"
    ).reset_index(drop=True)


def empty_columns(strategies: pd.DataFrame, unit: str) -> list[str]:
    """Columns of the strategy table with no figure for any strategy (left out, said so)."""
    sources = {
        "aiq_flops": "aiq_flops",
        "aiq_dollars": "aiq_dollars",
        "apgr": f"apgr_{unit}",
        "cpt50": "cpt50",
        "cpt80": "cpt80",
        "match": f"match_{unit}",
    }
    return [
        key
        for key, col in sources.items()
        if key != f"aiq_{unit}" and (col not in strategies or strategies[col].isna().all())
    ]


def chart_labels(configs: pd.DataFrame, unit: str) -> pd.Series:
    """What a Pareto chart writes beside a point: each single model's name and each family's
    best configuration (options that differ from the defaults only); upper bounds and the
    rest stay unlabelled (hover tells them)."""
    from uisbench.results.report import short_config

    labels = pd.Series("", index=configs.index, dtype=object)
    single = configs["kind"] == "single model"
    labels[single] = configs.loc[single, "short"]
    rest = configs[configs["kind"] == "strategy"]
    for _, g in rest.groupby("family", sort=True):
        best = g.sort_values(["accuracy", unit], ascending=[False, True], na_position="last")
        labels[best.index[0]] = short_config(best["config_label"].iloc[0])
    return labels


def check_base_url(url: str | None) -> str | None:
    """``https://host/sub/path/`` (a trailing slash is added); anything else is refused."""
    if url is None:
        return None
    if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", url):
        raise UisbenchError(
            f"--base-url {url!r} must be an http(s) URL, e.g. https://org.github.io/repo/"
        )
    return url if url.endswith("/") else url + "/"


def build_site(
    engine: Engine,
    out: Path | None = None,
    include_synthetic: bool = False,
    drill_queries: int = DRILL_QUERIES,
    base_url: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    results_dir: Path | None = None,
    jobs: int | None = None,
) -> Path:
    """Render the site into ``out`` (default ``_site/`` in the current directory); returns it.
    ``progress(done, total, label)`` hears of each task as its pages are decided;
    ``results_dir``: result files others submitted, shown beside the local runs
    (:mod:`uisbench.results.submitted`); ``jobs``: processes writing the pages (default: this
    machine's cores)."""
    from uisbench.parallel import default_jobs

    out = Path(out) if out is not None else Path.cwd() / "_site"
    if drill_queries < 0:
        raise UisbenchError("--queries must be 0 (all) or more")
    base_url = check_base_url(base_url)
    jobs = default_jobs() if jobs is None else jobs
    site = _Site(engine, out, include_synthetic, drill_queries, base_url, progress, jobs)
    if results_dir is not None:
        from uisbench.results.submitted import load_submissions

        site.submitted = load_submissions(engine, Path(results_dir))
    return site.build()
