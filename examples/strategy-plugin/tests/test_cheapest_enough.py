"""The example plugin's own tests: uisbench's conformance check, and what its option does."""

from __future__ import annotations

import pytest
from uisbench_example import CheapestEnough

from uisbench.errors import UisbenchError
from uisbench.strategies import STRATEGIES
from uisbench.testing import CHECK_BANK, check_strategy


def test_keeps_the_strategy_contract():
    check_strategy(CheapestEnough)


def test_target_trades_accuracy_for_cost():
    """target=0.3 takes the cheapest model (30 % right on the check bank), 1.0 the best (80 %)."""
    report = check_strategy(CheapestEnough, settings=[{"target": 0.3}, {"target": 1.0}])
    low, high = report.accuracy.values()
    assert low < 0.5 < high


def test_options_are_checked_when_parsed():
    with pytest.raises(UisbenchError, match="target=1.5 must be <= 1"):
        CheapestEnough(target="1.5")
    with pytest.raises(UisbenchError, match="unit='flop' must be one of auto, flops"):
        CheapestEnough(unit="flop")


def test_registered_under_its_name():
    assert STRATEGIES.distribution("cheapest-enough") == "uisbench-example-plugin"
    assert STRATEGIES.get("cheapest-enough") is CheapestEnough
    assert len(CHECK_BANK.models) == 3
