"""Run pages show what a strategy reports: UniScale's learning curve, T2's extrapolation check."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.fakes import FakeBank, FakeModel
from uisbench import Runner, import_file, open_engine
from uisbench.site.build import build_site
from uisbench.store.bankfile import models_file_beside


def test_run_pages_show_learning_curve_and_extrapolation(tmp_path: Path) -> None:
    bank = FakeBank(
        task="toy",
        queries=60,
        train=30,
        models=[
            FakeModel("small", accuracy=0.4, samples=8, params_b=1.0, train_tokens_t=1.0),
            FakeModel("large", accuracy=0.8, samples=8, params_b=8.0, train_tokens_t=2.0),
        ],
    )
    path = bank.write(tmp_path)
    engine = open_engine(str(tmp_path / "r.db"))
    import_file(engine, path, models_file_beside(path))
    runner = Runner(engine, "toy", "toy")
    uni = runner.run("uniscale:cost_weight=0.3,alpha=0.5,dim=0,norm=linear,features=hash", 0)
    t2 = runner.run("t2:budget=0.5,restarts=4", 0)
    out = build_site(engine, tmp_path / "site")
    pages = {p.read_text(encoding="utf-8"): p for p in (out / "runs").glob("*.html")}
    uni_page = next(t for t in pages if f"Run #{uni.run_id}" in t)
    t2_page = next(t for t in pages if f"Run #{t2.run_id}" in t)

    assert 'id="learning"' in uni_page
    spec = re.search(r'<script type="application/json" id="learning-spec">(.*?)</script>', uni_page)
    layers = json.loads(spec.group(1))["layer"]  # reward and accuracy on their own axes
    values = [v for layer in layers for v in layer["data"]["values"]]
    assert {v["series"] for v in values} == {"mean reward so far", "accuracy so far"}
    assert max(v["queries_seen"] for v in values) == 30  # the whole test stream
    assert "pulls" in uni_page
    assert 'id="learning"' not in t2_page
    assert "extrapolation" in t2_page and "best_on_train" in t2_page
