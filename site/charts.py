"""Vega-Lite specifications of the site's charts, as plain dicts (rendered by vendored vega-embed).

Specs carry their data inline (``datasets``) because browsers refuse to fetch files from a page
opened with ``file://``; the same records are written beside the page as CSV and JSON downloads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier; never fetched
AXIS_TITLES = {
    "flops": "FLOPs per query (log scale)",
    "dollars": "US dollars per query (log scale)",
    "tokens": "Tokens per query (log scale)",
    "param_calls": "Parameter-weighted calls per query, Σ N_active (log scale)",
}
COST_FORMAT = {"flops": ".2~s", "dollars": "$.2~g", "tokens": ".2~s", "param_calls": ".2~s"}
#: Fixed colours so a family looks the same on every chart of the site.
GROUP_COLORS = {
    "single models": "#4c4c4c",
    "random mix": "#9e9e9e",
    "oracle (upper bound)": "#d62728",
    "routing": "#1f77b4",
    "tts": "#2ca02c",
    "uniscale": "#9467bd",
    "t2": "#ff7f0e",
    "decomposed": "#8c564b",
}
EXTRA_COLORS = ["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8", "#98df8a"]
KIND_SHAPES = {
    "single model": "diamond",
    "strategy": "circle",
    "random mix": "square",
    "oracle (upper bound)": "cross",
}


#: The chart parameter behind the "show upper bounds" checkbox, and the test for such a point.
TOGGLE = "show_upper"
UPPER_TEST = "(datum.kind === 'oracle (upper bound)')"


def plot_group(row: pd.Series) -> str:
    """Colour group of a configuration: its family, with the reference points apart."""
    if row["kind"] == "single model":
        return "single models"
    if row["kind"] in ("random mix", "oracle (upper bound)"):
        return row["kind"]
    return str(row["family"])


def _color_scale(groups: list[str]) -> dict[str, Any]:
    domain, extra = [], iter(EXTRA_COLORS * 4)
    rng = []
    for g in groups:
        domain.append(g)
        rng.append(GROUP_COLORS.get(g) or next(extra))
    return {"domain": domain, "range": rng}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows (NaN → null)."""
    return [{k: _clean(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _chart(height: int, body: dict[str, Any]) -> dict[str, Any]:
    """A Vega-Lite spec as wide as its container, ``height`` pixels tall: the frame every chart
    here shares, then the chart's own ``body``."""
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        **body,
    }


def pareto_spec(points: pd.DataFrame, fronts: pd.DataFrame, unit: str) -> dict[str, Any] | None:
    """Accuracy vs cost (log x): every configuration with its 95% CI, each family's front,
    single models labelled, the oracle marked. None when no point has a positive cost."""
    pts = points[points["cost"] > 0]
    if pts.empty:
        return None
    fr = fronts[(fronts["unit"] == unit) & (fronts["cost"] > 0)] if len(fronts) else fronts
    kinds = set(pts["kind"])
    order = [g for g in GROUP_COLORS if g in set(pts["group"])]
    order += sorted(set(pts["group"]) - set(order))
    color = {
        "field": "group",
        "type": "nominal",
        "title": "family / reference",
        "scale": _color_scale(order),
        "legend": {"orient": "right"},
    }
    x = {
        "field": "cost",
        "type": "quantitative",
        "title": AXIS_TITLES.get(unit, unit),
        "scale": {"type": "log", "nice": False, "padding": 28},
        "axis": {
            "format": COST_FORMAT.get(unit, ".2~g"),
            "grid": True,
            "tickCount": 6,
            "gridOpacity": 0.5,
        },
    }
    # The y-axis follows what is drawn: upper bounds (the oracle) are hidden until the reader
    # ticks the box, so they do not squeeze every real strategy into the bottom of the chart.
    y = {
        "field": "accuracy",
        "type": "quantitative",
        "title": "Accuracy (share of test queries correct)",
        "scale": {"zero": False, "nice": True, "padding": 12},
        "axis": {"format": ".0%"},
    }
    has_upper = bool((pts["kind"] == "oracle (upper bound)").any())
    visible = {"filter": f"!{UPPER_TEST} || {TOGGLE}"}
    front_visible = {"filter": f"datum.group !== 'oracle (upper bound)' || {TOGGLE}"}
    cost_title = AXIS_TITLES.get(unit, unit).replace(" (log scale)", "")
    tooltip = [
        {"field": "config_label", "title": "configuration"},
        {"field": "group", "title": "family"},
        {"field": "accuracy", "format": ".3f"},
        {"field": "ci_low", "title": "95% CI low", "format": ".3f"},
        {"field": "ci_high", "title": "95% CI high", "format": ".3f"},
        {"field": "cost", "title": cost_title, "format": ".3~g"},
        {"field": "samples_per_query", "title": "samples/query", "format": ".2f"},
    ]
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "points"},
            "transform": [visible],
            "mark": {"type": "rule", "opacity": 0.35, "strokeWidth": 1.5},
            "encoding": {
                "x": x,
                "y": {**y, "field": "ci_low"},
                "y2": {"field": "ci_high"},
                "color": color,
            },
        },
        {
            "data": {"name": "fronts"},
            "transform": [front_visible],
            "mark": {"type": "line", "strokeWidth": 2, "opacity": 0.85},
            "encoding": {
                "x": x,
                "y": y,
                "color": color,
                "order": {"field": "cost"},
                "detail": {"field": "group"},
            },
        },
        {
            "data": {"name": "points"},
            "transform": [visible],
            "mark": {
                "type": "point",
                "cursor": "pointer",
                "filled": True,
                "size": 90,
                "opacity": 0.9,
                "stroke": "white",
                "strokeWidth": 0.6,
            },
            "encoding": {
                "x": x,
                "y": y,
                "color": color,
                "shape": {
                    "field": "kind",
                    "type": "nominal",
                    "title": "point",
                    "scale": {
                        "domain": [k for k in KIND_SHAPES if k in kinds],
                        "range": [v for k, v in KIND_SHAPES.items() if k in kinds],
                    },
                    "legend": {"orient": "right"},
                },
                "tooltip": tooltip,
                "href": {"field": "href"},
            },
        },
    ]
    # Single models and each family's best point are labelled (upper bounds are not); labels
    # near the right edge go to the left.
    labelled = "datum.label"
    log_c = np.log10(pts["cost"].to_numpy(float))
    cut = float(log_c.min() + 0.8 * (log_c.max() - log_c.min()))
    is_labelled = (pts["label"].fillna("") != "").to_numpy() if "label" in pts else log_c < 0
    for side, test, dx in (("left", "<", 8), ("right", ">=", -8)):
        present = is_labelled & ((log_c < cut) if test == "<" else (log_c >= cut))
        if not present.any():
            continue  # an empty layer makes vega warn about an infinite extent
        mark = {"type": "text", "align": side, "dx": dx, "dy": -7, "fontSize": 11, "color": "#333"}
        layers.append(
            {
                "data": {"name": "points"},
                "transform": [{"filter": f"{labelled} && log(datum.cost) / LN10 {test} {cut!r}"}],
                "mark": mark,
                "encoding": {"x": x, "y": y, "text": {"field": "label"}},
            }
        )
    front_rows = fr.rename(columns={"front": "group"}) if len(fr) else fr
    params = [{"name": TOGGLE, "value": False}]
    if has_upper:
        params[0]["bind"] = {"input": "checkbox", "name": "show upper bounds (oracle) "}
    return _chart(
        380,
        {
            "params": params,
            "datasets": {"points": records(pts), "fronts": records(front_rows)},
            "layer": layers,
            "config": {
                "font": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
                "axis": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": 600},
                "legend": {
                    "labelFontSize": 11,
                    "titleFontSize": 12,
                    "labelLimit": 220,
                    "symbolOpacity": 1,
                },
                "view": {"stroke": "#ccc"},
            },
        },
    )


def regret_spec(curve: pd.DataFrame) -> dict[str, Any] | None:
    """Cumulative regret vs queries seen (mean over seeds), one line per reference."""
    series = {
        "regret_best_fixed": "vs best fixed arm (in hindsight)",
        "regret_oracle": "vs per-query oracle",
    }
    rows = []
    for col, name in series.items():
        if col in curve and curve[col].notna().any():
            part = curve[["queries_seen", col]].dropna().rename(columns={col: "regret"})
            part["reference"] = name
            rows.append(part)
    if not rows:
        return None
    data = pd.concat(rows, ignore_index=True)
    return _chart(
        300,
        {
            "data": {"values": records(data)},
            "mark": {"type": "line", "strokeWidth": 2},
            "encoding": {
                "x": {
                    "field": "queries_seen",
                    "type": "quantitative",
                    "title": "Queries seen (stream position)",
                },
                "y": {
                    "field": "regret",
                    "type": "quantitative",
                    "title": "Cumulative regret (reward units, mean over seeds)",
                },
                "color": {
                    "field": "reference",
                    "type": "nominal",
                    "title": "regret against",
                    "legend": {"orient": "bottom"},
                },
                "tooltip": [
                    {"field": "queries_seen", "title": "queries seen"},
                    {"field": "regret", "format": ".2f"},
                    {"field": "reference"},
                ],
            },
        },
    )


def learning_curve_spec(curve: dict[str, list[float]]) -> dict[str, Any] | None:
    """An online strategy's running mean reward and accuracy vs queries seen (one run), each on
    its own axis: reward is in reward units (it may pass 1 or go negative), accuracy a share."""
    queries = curve.get("queries") or []
    series = {
        "mean_reward": ("mean reward so far", "left", "#9467bd", "Running mean reward"),
        "accuracy": ("accuracy so far", "right", "#2ca02c", "Running accuracy"),
    }
    layers = []
    for key, (name, orient, colour, title) in series.items():
        rows = [
            {"queries_seen": q, "value": v, "series": name}
            for q, v in zip(queries, curve.get(key) or [])
            if v is not None
        ]
        if not rows:
            continue
        y: dict[str, Any] = {
            "field": "value",
            "type": "quantitative",
            "title": title,
            "axis": {"orient": orient, "titleColor": colour},
            "scale": {"zero": False},
        }
        if key == "accuracy":
            y["axis"]["format"] = ".0%"
        layers.append(
            {
                "data": {"values": rows},
                "mark": {"type": "line", "strokeWidth": 2, "point": True, "color": colour},
                "encoding": {
                    "x": {"field": "queries_seen", "type": "quantitative", "title": "Queries seen"},
                    "y": y,
                    "tooltip": [
                        {"field": "queries_seen", "title": "queries seen"},
                        {"field": "value", "format": ".3f"},
                        {"field": "series"},
                    ],
                },
            }
        )
    if not layers:
        return None
    return _chart(
        240,
        {
            "layer": layers,
            "resolve": {"scale": {"y": "independent"}},
        },
    )


METRIC_TITLES = {"maj": "Majority-vote accuracy at k", "pass": "pass@k"}


def law_spec(points: list[dict[str, Any]], metric: str = "") -> dict[str, Any] | None:
    """T2's fitted law against the observed training points: per model, the observed metric at
    each k (dots) and the law's prediction (line), k on a log axis."""
    rows = [
        {"model": p["model"], "k": p["k"], "value": p[col], "series": name}
        for p in points
        for col, name in (("observed", "observed (train)"), ("predicted", "fitted law"))
        if isinstance(p, dict) and p.get(col) is not None and p.get("k")
    ]
    if not rows:
        return None
    x = {
        "field": "k",
        "type": "quantitative",
        "title": "Samples per query, k (log scale)",
        "scale": {"type": "log"},
    }
    title = METRIC_TITLES.get(metric, metric or "Metric") + " (training split)"
    y = {"field": "value", "type": "quantitative", "title": title, "axis": {"format": ".0%"}}
    color = {"field": "model", "type": "nominal", "legend": {"orient": "right"}}
    tooltip = [{"field": "model"}, {"field": "k"}, {"field": "series"}]
    tooltip.append({"field": "value", "format": ".3f"})
    return _chart(
        260,
        {
            "data": {"values": rows},
            "layer": [
                {
                    "transform": [{"filter": "datum.series === 'fitted law'"}],
                    "mark": {"type": "line", "strokeWidth": 2},
                    "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip},
                },
                {
                    "transform": [{"filter": "datum.series === 'observed (train)'"}],
                    "mark": {"type": "point", "filled": True, "size": 70},
                    "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip},
                },
            ],
        },
    )


def budget_spec(budget: pd.DataFrame, unit: str) -> dict[str, Any] | None:
    """Families at fixed budgets: at each single model's cost (x, cheapest first), every
    family's hull accuracy (dot) with its paired 95% interval (bar, the model's accuracy plus
    the interval of the gain), beside the model's own accuracy (diamond)."""
    if budget is None or not len(budget):
        return None
    rows = []
    for _, r in budget.sort_values("budget").iterrows():
        at = str(r["budget_of"]).removeprefix("single:model=")
        if math.isfinite(r["accuracy"]):
            rows.append(
                {
                    "budget_of": at,
                    "budget": _clean(float(r["budget"])),
                    "group": r["group"],
                    "accuracy": float(r["accuracy"]),
                    "low": _clean(float(r["single_accuracy"] + r["gain_low"])),
                    "high": _clean(float(r["single_accuracy"] + r["gain_high"])),
                    "claim": r.get("claim") or "",
                }
            )
    singles = budget.drop_duplicates("budget_of").sort_values("budget")
    for _, r in singles.iterrows():
        at = str(r["budget_of"]).removeprefix("single:model=")
        rows.append(
            {
                "budget_of": at,
                "budget": _clean(float(r["budget"])),
                "group": "single models",
                "accuracy": float(r["single_accuracy"]),
                "low": None,
                "high": None,
                "claim": "the model itself",
            }
        )
    if not rows:
        return None
    order = list(dict.fromkeys(str(b).removeprefix("single:model=") for b in singles["budget_of"]))
    groups = [g for g in GROUP_COLORS if g in {r["group"] for r in rows}]
    groups += sorted({r["group"] for r in rows} - set(groups))
    x = {
        "field": "budget_of",
        "type": "nominal",
        "sort": order,
        "title": f"At the cost of (single model, cheapest first; {AXIS_TITLES.get(unit, unit)})",
        "axis": {"labelAngle": 0, "labelLimit": 200},
    }
    color = {
        "field": "group",
        "type": "nominal",
        "title": "family",
        "scale": _color_scale(groups),
        "legend": {"orient": "right"},
    }
    offset = {"field": "group", "type": "nominal", "sort": groups}
    y = {
        "field": "accuracy",
        "type": "quantitative",
        "title": "Accuracy at that budget",
        "scale": {"zero": False, "nice": True},
        "axis": {"format": ".0%"},
    }
    tooltip = [
        {"field": "budget_of", "title": "at the cost of"},
        {"field": "group", "title": "family"},
        {"field": "accuracy", "format": ".3f"},
        {"field": "low", "title": "95% low", "format": ".3f"},
        {"field": "high", "title": "95% high", "format": ".3f"},
        {"field": "claim"},
    ]
    return _chart(
        300,
        {
            "data": {"values": rows},
            "layer": [
                {
                    "transform": [{"filter": "datum.low !== null"}],
                    "mark": {"type": "rule", "strokeWidth": 2, "opacity": 0.6},
                    "encoding": {
                        "x": x,
                        "xOffset": offset,
                        "y": {**y, "field": "low"},
                        "y2": {"field": "high"},
                        "color": color,
                    },
                },
                {
                    "mark": {"type": "point", "filled": True, "size": 80, "opacity": 0.95},
                    "encoding": {
                        "x": x,
                        "xOffset": offset,
                        "y": y,
                        "color": color,
                        "shape": {
                            "condition": {
                                "test": "datum.group === 'single models'",
                                "value": "diamond",
                            },
                            "value": "circle",
                        },
                        "tooltip": tooltip,
                    },
                },
            ],
        },
    )
