"""Text options are declared with their choices (``choice()``) and checked when parsed."""

from __future__ import annotations

import dataclasses

import pytest

from uisbench.errors import UisbenchError
from uisbench.strategies import STRATEGIES, Strategy, choice
from uisbench.strategies.base import parse_params

#: Built-in text options that name one of a fixed set of values.
TEXT_OPTIONS = ("unit", "features", "norm", "pair", "metric", "signal")


def builtin_fields() -> list[tuple[str, dataclasses.Field]]:
    out = []
    for name in STRATEGIES.names():
        if STRATEGIES.distribution(name) != "uisbench":
            continue
        for f in dataclasses.fields(STRATEGIES.get(name).Params):
            if f.name in TEXT_OPTIONS:
                out.append((name, f))
    return out


def test_every_builtin_text_option_declares_its_choices():
    fields = builtin_fields()
    assert len(fields) >= 10  # unit alone is on most strategies
    undeclared = [f"{n}.{f.name}" for n, f in fields if "choices" not in f.metadata]
    assert undeclared == []
    for _, f in fields:
        assert f.default in f.metadata["choices"]


@pytest.mark.parametrize(("name", "field"), builtin_fields(), ids=lambda x: getattr(x, "name", x))
def test_a_typo_fails_at_parse_time_with_the_choices(name, field):
    cls = STRATEGIES.get(name)
    with pytest.raises(UisbenchError) as exc:
        cls(**{field.name: "typo"})  # no fit, no bank: refused by parse_params alone
    message = str(exc.value)
    assert f"{field.name}='typo' must be one of" in message
    assert all(c in message for c in field.metadata["choices"])
    for value in field.metadata["choices"]:
        assert getattr(cls(**{field.name: value}).params, field.name) == value


def test_choice_on_a_plugins_own_params():
    @dataclasses.dataclass
    class Params:
        mode: str = choice("fast", "slow", "fast")

    assert dataclasses.fields(Params)[0].metadata["choices"] == ("fast", "slow")
    assert parse_params(Params, {"mode": "slow"}, "p").mode == "slow"
    with pytest.raises(UisbenchError, match="mode='quick' must be one of fast, slow"):
        parse_params(Params, {"mode": "quick"}, "p")
    assert issubclass(STRATEGIES.get("majority"), Strategy)
