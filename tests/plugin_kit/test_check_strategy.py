"""``uisbench.testing.check_strategy``: a strategy that keeps the contract passes, each broken
clause is caught (so the check can fail)."""

from __future__ import annotations

import pytest

from tests.plugin_kit import samples
from uisbench.testing import CHECK_BANK, ConformanceError, check_strategy


def test_a_strategy_that_keeps_the_contract_passes():
    report = check_strategy(samples.Vote)
    assert report.reference == "tests.plugin_kit.samples:Vote"
    assert list(report.accuracy) == [
        f"kit-vote:model={m.name},k=3,mode=plain" for m in CHECK_BANK.models
    ]
    acc = {label.split(",")[0]: a for label, a in report.accuracy.items()}
    assert acc["kit-vote:model=small"] < acc["kit-vote:model=big"]


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (samples.Unseeded, "gave other decisions on a rerun"),
        (samples.Oracle, "without declaring upper_bound = True"),
        (samples.Restless, "two labels for one setting"),
        (samples.OutOfBounds, "k=0 must be >= 1"),
        (samples.NoFamily, "family 'magic' is not one of"),
    ],
)
def test_each_broken_clause_is_caught(cls, message):
    with pytest.raises(ConformanceError, match=message):
        check_strategy(cls, max_settings=1)


def test_a_class_defined_in_a_function_is_refused():
    class Local(samples.Vote):
        name = "kit-local"

    with pytest.raises(ConformanceError, match="top level"):
        check_strategy(Local)
