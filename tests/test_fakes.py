"""The fakes are faithful: a fake bank imported and loaded by the real code equals its arrays."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FakeBackend, FakeBank, FakeModel
from uisbench.live.backends import Backend
from uisbench.store.bank import import_file, info
from uisbench.store.bankfile import models_file_beside
from uisbench.store.engine import open_engine
from uisbench.store.loading import load_arrays

BANK = FakeBank(
    models=(
        FakeModel("a", [0.1, 0.9] * 6, samples=3, params_b=2.0, price_in_per_mtok=1.0),
        FakeModel("b", 0.5, samples=5, params_b=None, train_tokens_t=None, cost_usd=0.01),
    ),
    queries=12,
    train=4,
    missing=0.2,
)


@pytest.mark.parametrize("gz", [False, True])
def test_imported_file_loads_as_the_fakes_own_arrays(tmp_path, gz):
    path = BANK.write(tmp_path, gz=gz)
    engine = open_engine(str(tmp_path / "f.db"))
    stats = import_file(engine, path, models_file_beside(path))
    assert stats.inserted == 12 * (3 + 5)
    with engine.connect() as conn:
        loaded = load_arrays(conn, "toy", "toy")
    mine = BANK.arrays()
    assert loaded.query_keys == mine.query_keys
    assert list(loaded.splits) == list(mine.splits) == ["train"] * 4 + ["test"] * 8
    assert loaded.prompts == mine.prompts
    for name, want in mine.models.items():
        got = loaded.models[name]
        for f in ("n_avail", "correct", "input_tokens", "output_tokens", "cost_usd"):
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)
        for f in ("latency_s", "logprob"):
            np.testing.assert_allclose(getattr(got, f), getattr(want, f), atol=1e-6, err_msg=f)
        text = lambda arr, codes: np.where(codes >= 0, arr.answer_labels[codes], None)  # noqa: E731
        assert (text(loaded, got.answer) == text(mine, want.answer)).all()
        for key in ("params_active", "train_tokens", "price_in_per_mtok", "price_out_per_mtok"):
            assert loaded.model_meta[name][key] == mine.model_meta[name][key], (name, key)


def test_accuracy_and_gaps_follow_the_description():
    cells = BANK.arrays().models
    gaps = np.isnan(cells["b"].logprob)
    assert gaps.any() and not cells["b"].correct[gaps].any()
    assert (cells["b"].answer[gaps] == -1).all()
    big = FakeBank(models=(FakeModel("m", [0.1, 0.9] * 500, samples=40),), queries=1000).arrays()
    per_query = big.models["m"].correct.mean(axis=1)
    assert per_query[0::2].mean() == pytest.approx(0.1, abs=0.01)
    assert per_query[1::2].mean() == pytest.approx(0.9, abs=0.01)
    lp = big.models["m"].logprob
    assert lp[big.models["m"].correct].mean() > lp[~big.models["m"].correct].mean() + 1


def test_fake_backend_meets_the_backend_protocol():
    assert isinstance(FakeBackend(), Backend)


def test_info_reads_the_fake_models_file(tmp_path):
    path = BANK.write(tmp_path)
    engine = open_engine(str(tmp_path / "i.db"))
    import_file(engine, path, models_file_beside(path))
    with engine.connect() as conn:
        df = info(conn).set_index("model")
    rows = BANK.rows()
    for m in ("a", "b"):
        mine = [r["correct"] for r in rows if r["model"] == m]
        assert df.loc[m, "accuracy"] == pytest.approx(sum(mine) / len(mine))
