"""What a strategy sees of the test queries: the bank without its correctness.

The meter hands strategies a *blind* view of the bank (:func:`blind`): every array but
``correct`` — answers, tokens, costs, log-probs, prompts. Correctness of the test queries reaches
a strategy only through the meter (:meth:`~uisbench.meter.Meter.feedback` after it committed an
answer, :meth:`~uisbench.meter.Meter.oracle`/:meth:`~uisbench.meter.Meter.peek`, which mark the
run an upper bound). Evaluation-only figures that need it (regret against the best fixed arm,
a scaling law's test error) are computed by the runner after the decisions are committed,
through :meth:`uisbench.strategies.Strategy.evaluate`. The training split (``ctx.train``) keeps
its correctness: strategies fit on it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn

from uisbench.errors import UisbenchError
from uisbench.store.arrays import BankArrays

HIDDEN_MESSAGE = (
    "test-split correctness is hidden from strategies: learn it through meter.feedback() after "
    "committing an answer, or meter.oracle() (which marks the run an upper bound); figures for "
    "evaluation only belong in Strategy.evaluate(), which the runner calls after the decisions"
)


class HiddenCorrectness:
    """Stands where ``correct`` would be: indexing keeps it hidden, any use of a value raises."""

    def __getitem__(self, key: Any) -> HiddenCorrectness:
        return self  # a subset of a blind bank is still blind

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UisbenchError(HIDDEN_MESSAGE)

    __array__ = __iter__ = __len__ = __bool__ = __float__ = __int__ = _refuse
    __and__ = __rand__ = __or__ = __ror__ = __eq__ = __ne__ = __invert__ = _refuse
    __add__ = __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = __truediv__ = _refuse
    __array_ufunc__ = __array_function__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name: str) -> NoReturn:  # .sum(), .shape, .astype(), ...
        raise UisbenchError(HIDDEN_MESSAGE)


def blind(bank: BankArrays) -> BankArrays:
    """The same bank with every model's ``correct`` replaced by :class:`HiddenCorrectness`."""
    models = {m: replace(a, correct=HiddenCorrectness()) for m, a in bank.models.items()}
    return replace(bank, models=models)
