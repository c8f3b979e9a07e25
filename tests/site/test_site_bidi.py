"""Bidi control characters in labels never reach the HTML (they would reorder what is shown)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from uisbench import Runner, import_file, open_engine
from uisbench.site.build import build_site

EVIL_MODEL = "good\u202eevil\u200f"  # displays as "goodlive" with the override in force
FORMULA_MODEL = '=HYPERLINK("http://x.test/<s>")'  # a formula, and markup, in a name
#: Embeddings, overrides, isolates and the marks LRM, RLM and ALM (U+200E, U+200F, U+061C).
BIDI = re.compile(
    "[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]|\\\\u(200[efEF]|061[cC]|202[a-eA-E]|206[6-9])"
)


def make_bidi_site(tmp_path: Path) -> Path:
    """A site whose model name, prompts and answers carry bidi controls."""
    rows = [
        dict(task="t", query_id=f"q{q}", split="test", prompt=f"p{q} \u2066x\u2069", model=m)
        | dict(reference="1", sample=k, answer="1\u202d", correct=(q + k) % 2 == 0)
        | dict(input_tokens=3, output_tokens=4, cost_usd=1e-6, latency_s=0.1, logprob=-0.5)
        for q in range(12)
        for m in (EVIL_MODEL, "plain", FORMULA_MODEL)
        for k in range(2)
    ]
    bank = tmp_path / "b.jsonl"
    bank.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    engine = open_engine(str(tmp_path / "b.db"))
    import_file(engine, bank)
    runner = Runner(engine, "t", "b")
    specs = ("single:model=plain", f"single:model={FORMULA_MODEL}", "oracle")
    for spec in (f"single:model={EVIL_MODEL}", *specs):
        runner.run(spec, 0, command="pytest")
    return build_site(engine, tmp_path / "site")


def test_bidi_controls_are_stripped_from_every_page(tmp_path: Path) -> None:
    out = make_bidi_site(tmp_path)
    pages = list(out.rglob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text("utf-8")
        assert not BIDI.search(html), (page, BIDI.search(html))
    index = (out / "index.html").read_text("utf-8")
    assert "goodevil" in index  # the label is shown, without its control character


def test_downloads_carry_no_bidi_control_and_no_formula(tmp_path: Path) -> None:
    """CSV and JSON downloads: bidi controls stripped, no raw markup, and no cell a spreadsheet
    would run as a formula (cells starting with = + - @, tab or CR are prefixed with ')."""
    import csv

    out = make_bidi_site(tmp_path)
    files = list((out / "data").glob("*.csv")) + list((out / "data").glob("*.json"))
    assert any(f.name.endswith(".configs.csv") for f in files)
    for f in files:
        text = f.read_text("utf-8")
        assert not BIDI.search(text), (f, BIDI.search(text))
        if f.suffix == ".json":
            assert "<" not in text and ">" not in text, f
            json.loads(text)
            continue
        cells = [c for r in csv.reader(text.splitlines()) for c in r]
        risky = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or c.startswith("-")]
        risky = [c for c in risky if not _number(c)]
        assert not risky, (f, risky[:3])
    configs = next(f for f in files if f.name.endswith(".configs.csv")).read_text("utf-8")
    assert "'single:model=" in configs or "'=HYPERLINK" in configs or "=HYPERLINK" not in configs


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
