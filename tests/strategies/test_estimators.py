"""pass@k: closed form against brute-force enumeration and edge cases."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from uisbench.strategies.estimators import mean_pass_at_k, pass_at_k


def _brute_force(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    draws = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in d) for d in draws) / len(draws)


@pytest.mark.parametrize(
    "n,c,k", [(5, 0, 1), (5, 1, 1), (5, 2, 3), (6, 3, 2), (8, 1, 8), (7, 6, 4)]
)
def test_matches_enumeration(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k), abs=1e-12)


def test_matches_binomial_definition_for_large_n() -> None:
    n, c, k = 200, 13, 10
    expected = 1 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)


def test_pass_at_1_is_fraction_correct() -> None:
    n = np.array([10, 10, 4])
    c = np.array([3, 0, 4])
    np.testing.assert_allclose(pass_at_k(n, c, 1), [0.3, 0.0, 1.0])


def test_vectorised_and_monotone_in_k() -> None:
    values = [pass_at_k(np.array([20, 20]), np.array([2, 5]), k) for k in (1, 2, 5, 10, 20)]
    stacked = np.stack(values)
    assert stacked.shape == (5, 2)
    assert np.all(np.diff(stacked, axis=0) >= 0)
    np.testing.assert_allclose(stacked[-1], [1.0, 1.0])


def test_huge_n_is_stable() -> None:
    value = pass_at_k(10_000, 1, 100)
    assert value == pytest.approx(0.01, rel=1e-9)


def test_mean_and_errors() -> None:
    assert mean_pass_at_k([4, 4], [0, 4], 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 5, 1)
