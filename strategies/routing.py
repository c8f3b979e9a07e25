"""Routing-only strategies: one model per query, one sample (k = 1).

* ``knn-router`` and ``lr-router`` follow RouterBench (Hu et al., 2024, §4): predict each model's
  quality on the query from its features — the mean correctness of the k nearest training
  queries (cosine similarity), or a per-model logistic regression — and pick
  ``argmax_m  q̂_m(x) − ĉ_m / wtp``, where ĉ_m is the model's mean training-split cost divided
  by the dearest model's and ``wtp`` is RouterBench's willingness to pay λ (§4): a larger
  willingness to pay buys dearer, better answers (``wtp=inf`` weighs quality only). Sweeping it
  traces the front.
* ``threshold-router`` is RouteLLM (Ong et al., 2024, §3): a strong/weak pair, a predicted win
  rate P(strong beats weak | x) from a classifier, and a threshold calibrated on the training
  split (out-of-fold predictions) so that a target share of queries goes to the strong model.
  RouteLLM routes between the dearest and the cheapest model (``pair=extremes``); on a ladder of
  more models that pair lies far below the single-model hull, so the default pair
  (``pair=auto``) is the one whose two-model front, replayed on the training split, is best.
* ``cascade`` is a FrugalGPT-style cascade (Chen et al., 2023, §3.2): call models cheapest first
  and stop at the first answer whose confidence clears that model's threshold. Confidence is the
  answer's log-probability where the bank has one, else the agreement of k samples (the share
  voting for the plurality answer, which is then returned). Thresholds are set on the training
  split: ``escalate`` is the share of training queries each stage passes on. Agreement of k
  samples takes only k values, so most queries tie; ties are broken by a seeded random number
  per query (drawn afresh for the test stream), so a stage escalates exactly ``escalate`` of the
  training queries it scores and close to it on test. The chain is the pool sorted by
  training-split cost, less its ``skip`` cheapest models (or ``models``).

The first three share :class:`Router`, a family base whose subclasses only ``choose`` a model
per query from its features (RouteLLM's ``Router`` shape); its ``run`` draws and decides.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.sampling import k_subsets
from uisbench.store.arrays import BankArrays
from uisbench.strategies.aggregators import agreement, take
from uisbench.strategies.base import Decisions, RunContext, Strategy, bounded, choice
from uisbench.strategies.costing import (
    cost_unit,
    draw_by_choice,
    expected_cost,
    front_log_area,
    log_grid,
    mean_correct,
    request_cost,
    unit_option,
)
from uisbench.strategies.features import KINDS, query_features, single_thread, train_features


def model_costs(train: BankArrays, models: list[str], unit: str) -> np.ndarray:
    """Mean one-sample cost of each model on the training split, in ``unit``."""
    return np.array([expected_cost(train, m, 1, unit) for m in models])


def correctness_matrix(train: BankArrays, models: list[str]) -> np.ndarray:
    """(train queries × models) expected k=1 correctness; a model's mean where unknown."""
    y = np.column_stack([mean_correct(train, m) for m in models])
    col_mean = np.nanmean(np.where(np.isfinite(y), y, np.nan), axis=0)
    return np.where(np.isfinite(y), y, np.nan_to_num(col_mean)[None, :])


def fit_logistic(x: np.ndarray, p: np.ndarray, c: float = 1.0) -> Any:
    """Logistic regression on fractional targets p ∈ [0, 1] (each row twice, weighted)."""
    from sklearn.linear_model import LogisticRegression

    if np.all(p == p[0]) and p[0] in (0.0, 1.0) or len(p) < 2:
        return float(np.mean(p)) if len(p) else 0.5
    xx = np.vstack([x, x])
    yy = np.r_[np.ones(len(p)), np.zeros(len(p))]
    ww = np.r_[p, 1.0 - p]
    keep = ww > 0
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit(xx[keep], yy[keep], sample_weight=ww[keep])
    return model


def predict_logistic(model: Any, x: np.ndarray) -> np.ndarray:
    if isinstance(model, float):
        return np.full(len(x), model)
    return model.predict_proba(x)[:, 1]


@dataclass
class Routes:
    """A router's choice for a stream of queries: ``models[index[i]]`` answers query i."""

    models: list[str]
    index: np.ndarray
    extra: list[dict[str, Any]]


class Router(Strategy):
    """Family base of the one-model-per-query routers (the shape of RouteLLM's ``Router``).

    A subclass writes :meth:`choose` (and ``fit``); ``run`` reads the test queries' features,
    draws one sample of each query's model through the meter and yields the decisions.
    Its ``Params`` carry ``features`` (the query features, :mod:`.features`).
    """

    family = "routing"

    @abstractmethod
    def choose(self, x: np.ndarray, ctx: RunContext) -> Routes:
        """The model for each query of ``ctx.stream``, from its features ``x``."""

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        q = ctx.stream
        x = query_features(ctx.meter, q, self.params.features)
        with single_thread():
            routes = self.choose(x, ctx)
        handle = draw_by_choice(ctx.meter, routes.models, q, routes.index)
        yield Decisions(q, handle, extra=routes.extra)


class _QualityRouter(Router):
    """Shared RouterBench routing: predicted quality minus normalised cost / willingness to pay."""

    @dataclass
    class Params:
        # willingness to pay (RouterBench's λ): larger buys dearer answers; inf: quality only
        wtp: float = bounded(20.0, gt=0, allow_inf=True)
        features: str = choice("auto", *KINDS)
        unit: str = unit_option()

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        # Cost is normalised by the dearest model's: log-spaced from where every query goes to
        # the cheapest model up to quality only (inf).
        return [{"wtp": w} for w in (*log_grid(0.033, 330.0, 11), float("inf"))]

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        if train.n_queries == 0:
            raise UisbenchError(f"strategy {self.name} needs a training split to fit on")
        self.unit = cost_unit(ctx.model_meta, self.params.unit, train)
        cost = model_costs(train, ctx.models, self.unit)
        self.norm_cost = cost / cost.max()
        x = train_features(train.prompts, self.params.features)
        with single_thread():
            self._fit(x, correctness_matrix(train, ctx.models), train, ctx)

    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray, train: BankArrays, ctx: RunContext) -> None:
        """Learn per-model quality from training features ``x`` and correctness ``y`` (of the
        training split ``train``; a fit shared across settings goes to ``ctx.cache``)."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted quality, ``(queries, models)``."""

    def choose(self, x: np.ndarray, ctx: RunContext) -> Routes:
        quality = self.predict(x)
        index = np.argmax(quality - self.norm_cost[None, :] / self.params.wtp, axis=1)
        extra = [{"model": ctx.models[c], "unit": self.unit} for c in index.tolist()]
        return Routes(ctx.models, index, extra)


class KnnRouter(_QualityRouter):
    """RouterBench's kNN router: quality = mean correctness of the k nearest training queries."""

    name = "knn-router"
    description = "Routing: kNN quality predictor on query embeddings, argmax quality − cost/wtp."

    @dataclass
    class Params(_QualityRouter.Params):
        neighbors: int = bounded(10, ge=1)

    def _fit(self, x: np.ndarray, y: np.ndarray, train: BankArrays, ctx: RunContext) -> None:
        self.train_x, self.train_y = x, y

    def predict(self, x: np.ndarray) -> np.ndarray:
        k = min(self.params.neighbors, len(self.train_x))
        sim = x @ self.train_x.T  # vectors are L2-normalised: cosine similarity
        nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        return self.train_y[nn].mean(axis=1)


class LogisticRouter(_QualityRouter):
    """Per-model logistic regression of P(correct | x) (RouterBench's learned predictor)."""

    name = "lr-router"
    description = "Routing: per-model logistic correctness predictor, argmax quality − cost/wtp."

    @dataclass
    class Params(_QualityRouter.Params):
        c: float = bounded(1.0, gt=0)  # inverse L2 strength of the logistic fit

    def _fit(self, x: np.ndarray, y: np.ndarray, train: BankArrays, ctx: RunContext) -> None:
        def fit() -> list[Any]:
            return [fit_logistic(x, y[:, j], self.params.c) for j in range(y.shape[1])]

        # the same fit for every willingness to pay and seed of a sweep: fitted once
        key = ("lr-router", tuple(ctx.models), self.params.features, self.params.c)
        self.models_ = ctx.cache.get(train, key, fit)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([predict_logistic(m, x) for m in self.models_])


PAIR_SHARES = np.linspace(0.0, 1.0, 11)


def win_target(train: BankArrays, weak: str, strong: str) -> np.ndarray:
    """RouteLLM's golden label per training query: P(strong correct and weak wrong)."""
    p_s = np.nan_to_num(mean_correct(train, strong))
    p_w = np.nan_to_num(mean_correct(train, weak))
    return p_s * (1.0 - p_w)


def oof_win_rate(x: np.ndarray, target: np.ndarray, seed: int) -> tuple[list, np.ndarray]:
    """5-fold logistic win-rate models and their out-of-fold predictions on the training split."""
    from sklearn.model_selection import KFold

    oof = np.empty(len(target))
    clfs = []
    for tr, te in KFold(n_splits=min(5, len(target)), shuffle=True, random_state=seed).split(x):
        clfs.append(fit_logistic(x[tr], target[tr]))
        oof[te] = predict_logistic(clfs[-1], x[te])
    return clfs, oof


def pair_front(
    train: BankArrays, x: np.ndarray, weak: str, strong: str, unit: str
) -> tuple[np.ndarray, np.ndarray]:
    """(mean cost, accuracy) of the threshold router on the training split at each share of
    ``PAIR_SHARES``, from out-of-fold win rates (the queries' own labels never score them)."""
    _, oof = oof_win_rate(x, win_target(train, weak, strong), 0)
    acc = {m: np.nan_to_num(mean_correct(train, m)) for m in (weak, strong)}
    cost = {m: np.nan_to_num(request_cost(train, m, 1, unit)) for m in (weak, strong)}
    costs, accs = [], []
    for share in PAIR_SHARES:
        to_s = oof > np.quantile(oof, 1.0 - share) if share < 1 else np.ones(len(oof), bool)
        to_s &= share > 0
        costs.append(float(np.where(to_s, cost[strong], cost[weak]).mean()))
        accs.append(float(np.where(to_s, acc[strong], acc[weak]).mean()))
    return np.array(costs), np.array(accs)


class ThresholdRouter(Router):
    """RouteLLM: strong/weak pair, threshold on the predicted strong win rate.

    The classifier predicts P(strong correct and weak wrong | x) — the win rate of RouteLLM's
    golden-label setting — by logistic regression on query features. Its threshold is the
    ``1 − share`` quantile of out-of-fold (5-fold) training predictions, and test queries are
    scored by the mean of the five fold models (so both come from models that did not see the
    query), so about ``share`` of queries go to the strong model (RouteLLM §5, thresholds
    calibrated to a strong-call percentage).

    The pair: ``strong``/``weak`` when given; ``pair=extremes`` is RouteLLM's dearest and
    cheapest model; ``pair=auto`` (default) replays every pair (weak cheaper than strong) on the
    training split — out-of-fold win rates, shares 0, 0.1, …, 1 — and keeps the pair whose
    front has the largest area under its accuracy-vs-log-cost staircase over the pool's cost
    range (:func:`uisbench.strategies.costing.front_log_area`).
    """

    name = "threshold-router"
    description = "Routing: RouteLLM strong/weak pair, win-rate threshold calibrated to a share."

    @dataclass
    class Params:
        share: float = bounded(0.5, ge=0, le=1)
        strong: str = ""
        weak: str = ""
        pair: str = choice("auto", "extremes")  # auto: best two-model front on train
        features: str = choice("auto", *KINDS)
        unit: str = unit_option()

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        shares = [round(s, 2) for s in np.linspace(0.1, 0.9, 9)]  # cost is linear in the share
        return [{"share": s} for s in shares] if len(models) > 1 else []

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        if train.n_queries < 2:
            raise UisbenchError("threshold-router needs a training split (2+ queries)")
        for m in (self.params.strong, self.params.weak):
            if m and m not in ctx.models:
                raise UisbenchError(f"unknown model {m!r} (pool: {', '.join(ctx.models)})")
        unit = cost_unit(ctx.model_meta, self.params.unit, train)
        x = train_features(train.prompts, self.params.features)
        self.weak, self.strong = self._pair(train, ctx, x, unit)

        def classifiers() -> tuple[list[Any], np.ndarray]:
            with single_thread():
                return oof_win_rate(x, win_target(train, self.weak, self.strong), ctx.seed)

        # the same classifiers for every share of a sweep (with one seed): fitted once
        key = ("threshold-clfs", self.weak, self.strong, self.params.features, ctx.seed)
        self.clfs, oof = ctx.cache.get(train, key, classifiers)
        self.threshold = float(np.quantile(oof, 1.0 - self.params.share))

    def _pair(self, train: BankArrays, ctx: RunContext, x: np.ndarray, unit: str):
        """(weak, strong): as given, RouteLLM's extremes, or the best pair on the training split
        (fitted once per training split: a share sweep reuses it through ``ctx.cache``)."""
        p = self.params
        models = ctx.models
        cost = dict(zip(models, model_costs(train, models, unit)))
        by_cost = sorted(models, key=cost.get)
        if p.pair == "extremes" or (p.strong and p.weak) or len(models) < 3:
            return p.weak or by_cost[0], p.strong or by_cost[-1]

        def best_pair() -> tuple[str, str]:
            cands = [
                (w, s)
                for i, w in enumerate(by_cost)
                for s in by_cost[i + 1 :]
                if (not p.weak or w == p.weak) and (not p.strong or s == p.strong)
            ]
            with single_thread():
                fronts = {c: pair_front(train, x, *c, unit) for c in cands}
            lo, hi = cost[by_cost[0]], cost[by_cost[-1]]
            area = {c: front_log_area(*fronts[c], lo, hi) for c in cands}
            return max(cands, key=lambda c: (area[c], -cost[c[1]]))

        key = ("threshold-pair", tuple(models), unit, p.features, p.weak, p.strong)
        return ctx.cache.get(train, key, best_pair)

    def choose(self, x: np.ndarray, ctx: RunContext) -> Routes:
        win = np.mean([predict_logistic(c, x) for c in self.clfs], axis=0)
        to_strong = win > self.threshold if self.params.share < 1.0 else np.ones(len(x), bool)
        if self.params.share == 0.0:
            to_strong[:] = False
        models = [self.weak, self.strong]
        extra = [{"model": models[int(s)], "win_rate": float(w)} for s, w in zip(to_strong, win)]
        return Routes(models, to_strong.astype(int), extra)


#: A stage's threshold: (confidence, tie-break). A query escalates when its (confidence,
#: tie-break) pair is below it in lexicographic order.
Threshold = tuple[float, float]
NEVER: Threshold = (-np.inf, -np.inf)
ALWAYS: Threshold = (np.inf, np.inf)


def share_threshold(conf: np.ndarray, tie: np.ndarray, share: float) -> Threshold:
    """The threshold below which ``round(share · n)`` of the n (confidence, tie-break) pairs
    fall: exactly that share of the training queries escalates, however many tie."""
    n = len(conf)
    j = int(round(share * n))
    if j <= 0:
        return NEVER
    if j >= n:
        return ALWAYS
    t = np.lexsort((tie, conf))[j]
    return float(conf[t]), float(tie[t])


def escalates(conf: np.ndarray, tie: np.ndarray, tau: Threshold) -> np.ndarray:
    """Queries whose (confidence, tie-break) is below the threshold ``tau``."""
    return (conf < tau[0]) | ((conf == tau[0]) & (tie < tau[1]))


#: A cascade's confidence signals (``auto``: log-prob where the bank has it).
SIGNALS = ("auto", "logprob", "agreement")


def check_signal(signal: str, k: int) -> None:
    """A cascade's confidence signal: the first sample's log-prob, or agreement of k samples."""
    if signal not in SIGNALS:
        raise UisbenchError(f"signal must be one of {', '.join(SIGNALS)}")
    if k < 2 and signal == "agreement":
        raise UisbenchError("signal=agreement needs k >= 2 samples")


def signal_option() -> Any:
    """A cascade's ``signal`` option, one of :data:`SIGNALS`."""
    return choice(*SIGNALS)


def agreement_k_option() -> Any:
    """A cascade's ``k`` option: the samples whose agreement is the confidence
    (``signal=agreement``)."""
    return bounded(3, ge=1)


class SignalChecked:
    """Base of a cascade's ``Params`` (with :func:`signal_option`, :func:`agreement_k_option`):
    ``signal`` and ``k`` checked together when parsed."""

    signal: str
    k: int

    def validate(self) -> None:
        check_signal(self.signal, self.k)


class Cascade(Strategy):
    """FrugalGPT-style cascade, cheapest model first, escalating on low confidence."""

    name = "cascade"
    family = "routing"
    description = "Routing: cascade cheapest-first, escalate on low log-prob or low agreement."
    needs_answers = True

    @dataclass
    class Params(SignalChecked):
        escalate: float = bounded(0.3, ge=0, le=1)
        signal: str = signal_option()
        k: int = agreement_k_option()
        models: tuple = ()
        skip: int = bounded(0, ge=0)
        unit: str = unit_option()

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        """:meth:`cascade_sweep`, or nothing on a pool of one model (a cascade needs two)."""
        return cls.cascade_sweep(models) if len(models) > 1 else []

    @classmethod
    def cascade_sweep(cls, models: list[str]) -> list[dict[str, Any]]:
        """The default settings on a pool of two models or more."""
        chains = [0] if len(models) == 2 else [0, len(models) - 2]
        thresholds = [round(e, 2) for e in np.linspace(0.1, 0.9, 9)]
        return [{"escalate": e, "skip": s} for s in chains for e in thresholds]

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        unit = cost_unit(ctx.model_meta, self.params.unit, train)
        chain = (
            list(self.params.models)
            or sorted(ctx.models, key=lambda m: expected_cost(train, m, 1, unit))[
                self.params.skip :
            ]
        )
        if not chain:
            raise UisbenchError(f"cascade: skip={self.params.skip} leaves no model in the chain")
        for m in chain:
            if m not in ctx.models:
                raise UisbenchError(f"unknown model {m!r} (pool: {', '.join(ctx.models)})")
        self.chain = chain
        self._choose_signal(train, chain, ctx)
        self.tau: dict[str, Threshold] = {}
        self.train_escalated: dict[str, float] = {}  # share of scored training queries
        for m in chain[:-1]:
            conf = self._train_conf(train, m, ctx.rng)
            tie = ctx.rng.random(len(conf))
            ok = np.isfinite(conf)
            e = self.params.escalate
            if e >= 1.0:
                self.tau[m] = ALWAYS
            else:  # no scored training query: never escalate
                self.tau[m] = share_threshold(conf[ok], tie[ok], e) if ok.any() else NEVER
            passed = escalates(conf[ok], tie[ok], self.tau[m])
            self.train_escalated[m] = float(passed.mean()) if ok.any() else 0.0

    def _choose_signal(self, train: BankArrays, models: list[str], ctx: RunContext) -> None:
        """``self.signal`` and ``self.k``: log-prob where the bank has it for every one of
        ``models`` (``signal=auto``), else agreement of ``k`` samples, which the bank holds."""
        has_lp = all(np.isfinite(train.models[m].logprob[:, 0]).any() for m in models)
        signal = self.params.signal
        if signal == "auto":
            signal = "logprob" if has_lp else "agreement"
        if signal == "logprob" and not has_lp:
            raise UisbenchError("signal=logprob: the bank holds no log-probs for some model")
        self.signal = signal
        self.k = self.params.k if signal == "agreement" else 1
        short = [m for m in models if ctx.max_samples(m) < self.k]
        if short:
            raise UisbenchError(
                f"{self.name} with signal=agreement needs k={self.k} samples of "
                f"{', '.join(short)}; the bank holds fewer (lower k or use signal=logprob)"
            )

    def _train_conf(self, train: BankArrays, model: str, rng: np.random.Generator) -> np.ndarray:
        arr = train.models[model]
        if self.signal == "logprob":
            return arr.logprob[:, 0].astype(float)
        slot = k_subsets(rng, arr.n_avail, arr.answer.shape[1], self.k)
        _, share = agreement(np.take_along_axis(arr.answer, slot, axis=1))
        return np.where(arr.n_avail >= self.k, share, np.nan)

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        q = ctx.stream
        handle = np.full(len(q), -1, dtype=np.int64)
        stage = np.full(len(q), -1)
        open_ = np.arange(len(q))
        for i, m in enumerate(self.chain):
            draw = ctx.meter.draw(m, q[open_], self.k)
            if self.signal == "logprob":
                col = np.zeros(len(open_), dtype=np.int64)
                conf = np.nan_to_num(draw.logprob[:, 0].astype(float), nan=-np.inf)
            else:
                col, conf = agreement(draw.answer)
            last = i == len(self.chain) - 1
            tie = ctx.rng.random(len(open_))
            stop = np.ones(len(open_), bool) if last else ~escalates(conf, tie, self.tau[m])
            handle[open_[stop]] = take(draw.handle[stop], col[stop])
            stage[open_[stop]] = i
            open_ = open_[~stop]
            if not len(open_):
                break
        extra = [{"model": self.chain[s], "signal": self.signal} for s in stage.tolist()]
        yield Decisions(q, handle, extra=extra)

    def run_summary(self) -> dict[str, Any]:
        """The chain, its signal and the share of training queries each stage escalated."""
        if not hasattr(self, "train_escalated"):  # a subclass that sets thresholds its own way
            return {}
        return {"chain": self.chain, "signal": self.signal, "train_escalated": self.train_escalated}
