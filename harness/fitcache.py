"""The fit cache: what strategies learned on a training split, shared for one runner or replay.

A sweep runs one strategy under many settings (willingness to pay, budgets, cost weights) and
seeds on the same training split; most of them fit the same thing (a scaling law, a pair of
models, simulated arms). The harness owns one :class:`FitCache` per
:class:`uisbench.runner.Runner` (or per in-memory replay call) and hands it to every run as
``ctx.cache``; it dies with its owner. Entries are keyed by the *content* of the data fitted on
(:func:`uisbench.store.arrays.content_digest` plus the pool's model metadata) and the fit's own
key, never by a bank's name or database ids: two banks of one name with other samples get their
own fits (STYLE: state owned by a call, not a module).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from uisbench.store.arrays import BankArrays, content_digest

T = TypeVar("T")

#: Entries kept before the cache starts over (a bound on memory, not a tuning knob).
MAX_ENTRIES = 4096


class FitCache:
    """Fits keyed by (content digest of the data, the fit's own key)."""

    def __init__(self) -> None:
        self._fits: dict[tuple[str, Hashable], Any] = {}
        # id(data) → (weak reference to data, digest); an entry leaves with its data
        self._digests: dict[int, tuple[weakref.ref, str]] = {}

    def __len__(self) -> int:
        return len(self._fits)

    def digest(self, data: BankArrays) -> str:
        """Content digest of ``data`` (queries, prompts, samples, model metadata), computed once
        per object."""
        key = id(data)
        hit = self._digests.get(key)
        if hit is None or hit[0]() is not data:
            meta = json.dumps(data.model_meta, sort_keys=True, default=str).encode()
            digest = content_digest(data) + hashlib.sha256(meta).hexdigest()[:16]
            ref = weakref.ref(data, lambda _, d=self._digests, k=key: d.pop(k, None))
            hit = self._digests[key] = (ref, digest)
        return hit[1]

    def get(self, data: BankArrays, key: Hashable, compute: Callable[[], T]) -> T:
        """The fit ``key`` of ``data``: computed by ``compute()`` on first use, then reused."""
        full = (self.digest(data), key)
        if full not in self._fits:
            if len(self._fits) >= MAX_ENTRIES:
                self._fits.clear()
            self._fits[full] = compute()
        return self._fits[full]
