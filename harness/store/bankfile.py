"""The flat outcome format: one JSON object per (task, query, model, sample), JSONL or JSONL.gz.

Reading validates every line and names the first bad one; writing emits the same fields so that
``bank export`` of an imported file gives back the same records.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import numbers
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from uisbench.errors import UisbenchError
from uisbench.files import read_bounded
from uisbench.store.schema import banks, models, queries, runs, tasks
from uisbench.terminal import COMMANDS

#: Fields every line must carry (values may be null where the type allows).
FIELDS = tuple(
    """task query_id split prompt reference model sample answer correct
    input_tokens output_tokens cost_usd latency_s logprob""".split()
)
#: Extensions written only when present: the full sample text and a verifier/reward score.
OPTIONAL_FIELDS = ("text", "score")
#: Prices a models file may give, USD per million tokens (cached: a cached prompt prefix).
PRICES = ("price_in_per_mtok", "price_out_per_mtok", "price_cached_in_per_mtok")


@dataclass(frozen=True, slots=True)
class FlatRow:
    task: str
    query_id: str
    split: str | None
    prompt: str
    reference: str | None
    model: str
    sample: int
    answer: str | None
    correct: bool
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_s: float | None
    logprob: float | None
    text: str | None = None
    score: float | None = None


def open_text(path: Path, mode: str = "r") -> IO[Any]:
    """Open plain or gzip-compressed JSONL by suffix."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode.replace("t", "") + "b"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def _bad(path: Path, lineno: int, why: str) -> UisbenchError:
    return UisbenchError(f"{path.name}: line {lineno}: {why}")


def _num(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


#: The plausible-range table: (low, high, what the message says) per number uisbench stores or
#: reads, the one rule set for bank files (both readers), models files, live recording and result
#: files. Every number must also be finite. The ranges are generous for real data yet small
#: enough that sums over a whole board stay finite (a cost of 1e308 passed a finiteness check
#: and became ``inf`` on the report) and that every integer fits a PostgreSQL ``integer``:
#:
#: - ``sample``: 0..9,999, at most 10,000 samples per query and model (the largest repeated-
#:   sampling study, Brown et al. 2024, drew 10,000); replay holds queries × samples arrays.
#: - tokens: 0..10^8 per sample, ten times the longest context window offered (10M).
#: - ``cost_usd``: 0..$1,000 per sample (10^5 output tokens at $600/Mtok, the dearest list
#:   price, costs $60). ``latency_s``: 0..86,400 (a day per sample).
#: - ``logprob``: -10^9..0, a log-probability (sums of 10^8 tokens at -10 each fit).
#:   ``score``: -10^9..10^9 (a verifier's or reward model's score).
#: - models files: ``params_b``/``active_params_b`` 0..100,000 (10^14 parameters, fifty times
#:   the largest disclosed model), ``train_tokens_t`` 0..10,000 (10^16 tokens), prices
#:   0..$10,000 per million tokens.
#: - result files, per query: FLOPs 0..10^30, dollars 0..10^7, tokens 0..10^13, latency
#:   0..10^9 s (up to 10^4 samples of the per-sample maxima above).
MAX_SAMPLE = 9_999
MAX_TOKENS = 10**8
BOUNDS: dict[str, tuple[float, float, str]] = {
    "sample": (0, MAX_SAMPLE, f"an integer in 0..{MAX_SAMPLE}"),
    "input_tokens": (0, MAX_TOKENS, f"an integer in 0..{MAX_TOKENS:.0e} or null"),
    "output_tokens": (0, MAX_TOKENS, f"an integer in 0..{MAX_TOKENS:.0e} or null"),
    "cost_usd": (0.0, 1e3, "a number in 0..1000 (USD per sample) or null"),
    "latency_s": (0.0, 86_400.0, "a number in 0..86400 (seconds) or null"),
    "logprob": (-1e9, 0.0, "a number in -1e9..0 (a log-probability) or null"),
    "score": (-1e9, 1e9, "a number in -1e9..1e9 or null"),
    "params_b": (0.0, 1e5, "a number in 0..1e5 (billions) or null"),
    "active_params_b": (0.0, 1e5, "a number in 0..1e5 (billions) or null"),
    "train_tokens_t": (0.0, 1e4, "a number in 0..1e4 (trillions) or null"),
    **{p: (0.0, 1e4, "a number in 0..1e4 (USD per million tokens) or null") for p in PRICES},
    "query_flops": (0.0, 1e30, "a number in 0..1e30 or null"),
    "query_dollars": (0.0, 1e7, "a number in 0..1e7 or null"),
    "query_tokens": (0, 1e13, "a number in 0..1e13 or null"),
    "query_latency_s": (0.0, 1e9, "a number in 0..1e9 or null"),
}
#: The fields of a bank line that the table bounds.
LINE_BOUNDED = (
    "sample",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_s",
    "logprob",
    "score",
)


#: Characters a text value may hold at most where its database column is sized (from the
#: schema): PostgreSQL refuses longer values and any NUL byte, SQLite accepts both, so both
#: rules are checked before writing, whatever the database. Unsized text has no limit.
TEXT_LIMITS: dict[str, int] = {
    "task": tasks.c.name.type.length,
    "query_id": queries.c.query_key.type.length,
    "model": models.c.name.type.length,
    "bank name": banks.c.name.type.length,
    "family": models.c.family.type.length,
    "config label": runs.c.config_label.type.length,
}
_TEXT_FIELDS = ("task", "query_id", "prompt", "reference", "model", "answer", "text")


def text_problem(field: str, value: Any) -> str | None:
    """Why a text value cannot be stored (a NUL byte, or longer than its column; a name that
    holds a control character, which a terminal showing it would obey), or None."""
    if not isinstance(value, str):
        return None
    if "\0" in value:
        return f"{field} holds a NUL byte"
    limit = TEXT_LIMITS.get(field)
    if limit is not None and len(value) > limit:
        return f"{field} is longer than {limit} characters"
    if field in TEXT_LIMITS and COMMANDS.search(value):
        return f"{field} holds a control character"
    return None


def check_text(field: str, value: Any, where: str = "") -> None:
    """:func:`text_problem` as one line."""
    why = text_problem(field, value)
    if why:
        raise UisbenchError(f"{where}{why} ({value[:40]!r}...)")


def out_of_bounds(field: str, value: Any) -> bool:
    """True when a number of ``field`` breaks :data:`BOUNDS` (None is always allowed)."""
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return True
    lo, hi, _ = BOUNDS[field]
    if isinstance(value, numbers.Integral):  # huge ints: no float conversion (could overflow)
        return not lo <= value <= hi
    return not (math.isfinite(value) and lo <= value <= hi)


_NONE = type(None)
_TEXT, _TEXT_OR_NULL = (str,), (_NONE, str)
_COUNT_OR_NULL, _NUMBER_OR_NULL = (_NONE, int), (_NONE, int, float)
#: Allowed exact types per field of FIELDS, in order.
_FIELD_TYPES = (
    *(_TEXT, _TEXT, _TEXT_OR_NULL, _TEXT, _TEXT_OR_NULL, _TEXT),  # task … model
    (int,),  # sample
    _TEXT_OR_NULL,  # answer
    (bool,),  # correct
    *(_COUNT_OR_NULL, _COUNT_OR_NULL),  # input_tokens, output_tokens
    *(_NUMBER_OR_NULL, _NUMBER_OR_NULL, _NUMBER_OR_NULL),  # cost_usd, latency_s, logprob
)
#: Every valid tuple of exact value types of FIELDS (a few hundred): one set lookup checks them.
_OK_TYPES = frozenset(itertools.product(*_FIELD_TYPES))
_SPLITS = (None, "train", "test")
_NOT_NULL = frozenset(("task", "query_id", "prompt", "model", "sample", "correct"))
_FAST_BOUNDED = tuple(f for f in LINE_BOUNDED if f in FIELDS)


def _fast_row(obj: Any) -> FlatRow | None:
    """The common valid line in one pass (imports read millions); None sends it to the checks.

    Exact ``type`` checks are stricter than ``isinstance`` (a bool is never an int here), so
    anything unusual falls through to :func:`parse_line`, which names the problem.
    """
    if type(obj) is not dict or len(obj) != len(FIELDS):
        return None
    try:
        vals = [obj[f] for f in FIELDS]
    except KeyError:
        return None
    if tuple(map(type, vals)) not in _OK_TYPES:
        return None
    task, query_id, split, prompt, _ref, model = vals[:6]
    if not (task and query_id and prompt and model) or split not in _SPLITS:
        return None
    if any(out_of_bounds(f, obj[f]) for f in _FAST_BOUNDED):
        return None
    if any(text_problem(f, obj.get(f)) for f in _TEXT_FIELDS):
        return None
    return FlatRow(*vals)


def parse_line(obj: Any, path: Path, lineno: int) -> FlatRow:
    """Validate one decoded line; raise with the file and line number on the first problem."""
    row = _fast_row(obj)
    if row is not None:
        return row
    if not isinstance(obj, dict):
        raise _bad(path, lineno, "not a JSON object")
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        raise _bad(path, lineno, f"missing field(s) {', '.join(missing)}")
    for f in ("task", "query_id", "prompt", "model"):
        if not isinstance(obj[f], str) or not obj[f]:
            raise _bad(path, lineno, f"{f} must be a non-empty string")
    if obj["split"] not in (None, "train", "test"):
        raise _bad(path, lineno, f"split must be train, test or null, not {obj['split']!r}")
    s = obj["sample"]
    if not isinstance(s, int) or isinstance(s, bool) or s < 0:
        raise _bad(path, lineno, "sample must be a non-negative integer")
    if not isinstance(obj["correct"], bool):
        raise _bad(path, lineno, "correct must be true or false")
    for f in ("reference", "answer", "text"):
        v = obj.get(f)
        if v is not None and not isinstance(v, str):
            raise _bad(path, lineno, f"{f} must be a string or null")
    for f in ("input_tokens", "output_tokens"):
        v = obj[f]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise _bad(path, lineno, f"{f} must be a non-negative integer or null")
    for f in ("cost_usd", "latency_s", "logprob", "score"):
        if not _num(obj.get(f)):
            raise _bad(path, lineno, f"{f} must be a number or null")
    for f in _TEXT_FIELDS:
        why = text_problem(f, obj.get(f))
        if why:
            raise _bad(path, lineno, why)
    for f in LINE_BOUNDED:
        if out_of_bounds(f, obj.get(f)):
            what = BOUNDS[f][2]
            raise _bad(path, lineno, f"{f} must be {what}, not {obj[f]!r}")
    return FlatRow(**{f: obj[f] for f in FIELDS}, text=obj.get("text"), score=obj.get("score"))


def parse_json_line(line: bytes | str, path: Path, lineno: int) -> FlatRow:
    """Decode and validate one line of a bank file."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _bad(path, lineno, f"invalid JSON ({exc})") from None
    return parse_line(obj, path, lineno)


def read_rows(path: Path) -> Iterator[FlatRow]:
    """Yield validated rows; a malformed or truncated file raises on its first bad line."""
    if not path.is_file():
        raise UisbenchError(f"no such bank file: {path}")
    lineno = 0
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):  # noqa: B007 - lineno used after the loop
                if not line.strip():
                    continue
                yield parse_json_line(line, path, lineno)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # truncated gzip, bad bytes
        raise UisbenchError(f"{path.name}: unreadable after line {lineno}: {exc}") from None


#: Bytes of decompressed text parsed per block by the columnar reader.
BLOCK_BYTES = 16 << 20
ALL_FIELDS = FIELDS + OPTIONAL_FIELDS


def _arrow_schema() -> Any:
    import pyarrow as pa

    s, i, f = pa.string(), pa.int64(), pa.float64()
    types = (s, s, s, s, s, s, i, s, pa.bool_(), i, i, f, f, f, s, f)
    return pa.schema(list(zip(ALL_FIELDS, types)))


def _key_count(data: bytes, field: str) -> int:
    """Lines of a block that name ``field`` (``"field":``, as compact or ``json.dumps``-style
    JSON writes it; the pattern cannot occur inside a JSON string, where quotes are escaped,
    and pyarrow refuses a line that names a field twice): one scan of the block."""
    return data.count(b'"%s":' % field.encode())


#: A block is parsed in this many parts at once, each of at least PARSE_PART_MIN bytes.
PARSE_PARTS, PARSE_PART_MIN = 4, 1 << 20


def _arrow_block(data: bytes, n_lines: int, schema: Any) -> Any | None:
    """Parse a block of complete lines in C++ (pyarrow); None when anything is unusual.

    Arrow reads a missing field as null, so a field with nulls must be named on every line
    (its nulls then are written nulls, :func:`_key_count`); fields that may not be null never
    are. Blank lines, other spacing, or any type or value problem also
    return None, and the block goes through :func:`parse_line`, which names the bad line.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    if b"\n\n" in data or data[:1] != b"{":
        return None
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    # Parsed in a few parts on pyarrow's threads (one part used one core: most of an
    # import's time); a line longer than a part cannot be split, so then in one part.
    for size in dict.fromkeys((max(len(data) // PARSE_PARTS, PARSE_PART_MIN), len(data) + 1)):
        try:
            table = pj.read_json(
                io.BytesIO(data),
                read_options=pj.ReadOptions(block_size=size),
                parse_options=options,
            )
            table.validate(full=True)  # invalid UTF-8 (a 0xff byte, an encoded lone surrogate)
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    else:
        return None
    if table.num_rows != n_lines:
        return None
    col = table.column
    for f in FIELDS:
        nulls = col(f).null_count
        if nulls and (f in _NOT_NULL or _key_count(data, f) != n_lines):
            return None  # a required field is missing, or null where it may not be
    for f in ("task", "query_id", "prompt", "model"):
        if pc.min(pc.utf8_length(col(f))).as_py() == 0:
            return None
    split = col("split").drop_null()
    if len(split) and not pc.all(pc.is_in(split, pa.array(["train", "test"]))).as_py():
        return None
    return table if _columns_in_bounds(table) and _texts_storable(table) else None


def _texts_storable(table: Any) -> bool:
    """:func:`text_problem` column-wise: no NUL byte, no value longer than its column."""
    import pyarrow.compute as pc

    for f in _TEXT_FIELDS:
        col = table.column(f)
        if col.null_count == len(col):
            continue
        if pc.any(pc.match_substring(col, "\0")).as_py():
            return False
        limit = TEXT_LIMITS.get(f)
        if limit is not None and pc.max(pc.utf8_length(col)).as_py() > limit:
            return False
        if limit is not None and any(COMMANDS.search(v) for v in pc.unique(col).to_pylist() if v):
            return False
    return True


def _columns_in_bounds(table: Any) -> bool:
    """:data:`BOUNDS` checked column-wise (nulls allowed; NaN and infinities are not)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for f in LINE_BOUNDED:
        lo, hi, _ = BOUNDS[f]
        col = table.column(f)
        if col.null_count == len(col):
            continue
        if pa.types.is_floating(col.type) and not pc.all(pc.is_finite(col)).as_py():
            return False
        span = pc.min_max(col).as_py()
        if span["min"] < lo or span["max"] > hi:
            return False
    return True


def _python_block(lines: list[bytes], path: Path, first_lineno: int, schema: Any) -> Any:
    cols: dict[str, list] = {f: [] for f in ALL_FIELDS}
    appends = [cols[f].append for f in ALL_FIELDS]
    for lineno, line in enumerate(lines, first_lineno):
        if not line.strip():
            continue
        row = parse_json_line(line, path, lineno)
        for app, f in zip(appends, ALL_FIELDS):
            app(getattr(row, f))
    return columns_table(cols, schema)


def columns_table(cols: dict[str, list], schema: Any | None = None) -> Any:
    """A pyarrow Table of the flat fields from columns (field → list of Python values)."""
    import pyarrow as pa

    return pa.table(cols, schema=schema or _arrow_schema())


def read_blocks(path: Path) -> Iterator[Any]:
    """The same validated rows as :func:`read_rows`, as pyarrow Tables of ALL_FIELDS.

    Imports read millions of rows; parsing them one by one in Python costs more than SQLite's
    insert, so blocks are parsed by pyarrow's JSON reader (C++, without the GIL), and by the
    line-by-line checks whenever a block looks unusual (same errors, same rows).
    """
    if not path.is_file():
        raise UisbenchError(f"no such bank file: {path}")
    schema = _arrow_schema()
    lineno = 0
    try:
        # the next block is read and gunzipped on a thread of its own (zlib releases the GIL)
        # while this one is parsed
        for data, n_lines in read_ahead(_line_blocks(path)):
            if data and not data.isspace():  # strip() would copy the block
                table = _arrow_block(data, n_lines, schema)
                if table is None:
                    lines = data.split(b"\n")[:n_lines]
                    table = _python_block(lines, path, lineno + 1, schema)
                if table.num_rows:
                    yield table
            lineno += n_lines  # blank-only blocks count too (error line numbers)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # truncated gzip, bad bytes
        raise UisbenchError(f"{path.name}: unreadable after line {lineno}: {exc}") from None


def _line_blocks(path: Path) -> Iterator[tuple[bytes, int]]:
    """The file's bytes in blocks of about :data:`BLOCK_BYTES`, cut after a newline, with the
    number of lines in each (a last one without its newline too)."""
    opener = gzip.open if path.suffix == ".gz" else open
    rest = b""
    with opener(path, "rb") as fh:
        while True:
            chunk = fh.read(BLOCK_BYTES)
            data = rest + chunk
            if not chunk:
                rest = b""
            elif (cut := data.rfind(b"\n")) < 0:
                rest = data
                continue
            else:
                data, rest = data[: cut + 1], data[cut + 1 :]
            yield data, data.count(b"\n") + (bool(data) and not data.endswith(b"\n"))
            if not chunk:
                return


def read_ahead(items: Iterable[Any]) -> Iterator[Any]:
    """``items`` in order, the next one produced on a thread while the caller works on this
    one (for producers that release the GIL: gunzip, pyarrow's parser, SQLite's step). Errors
    of the producer surface in the caller, in order."""
    it = iter(items)
    with ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(next, it, _END)
        while (item := fut.result()) is not _END:
            fut = pool.submit(next, it, _END)
            yield item


_END = object()


def column_codes(table: Any, column: str) -> tuple[Any, list[Any]]:
    """Dictionary-encode a block's column in C++: (code per row, distinct values)."""
    enc = table.column(column).combine_chunks().dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()


def query_keys(table: Any) -> tuple[list[tuple[str, str]], Any, Any]:
    """A block's distinct (task, query id) keys, the first row of each, and each row's key
    (an index into the keys): per distinct value, not per row (numpy arrays)."""
    import numpy as np

    t_code, tasks = column_codes(table, "task")
    q_code, qkeys = column_codes(table, "query_id")
    pair = t_code.astype(np.int64) * len(qkeys) + q_code
    uniq, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    keys = [(tasks[p // len(qkeys)], qkeys[p % len(qkeys)]) for p in uniq.tolist()]
    return keys, first, inverse.ravel()


def same_queries(table: Any, splits: list[str | None], prompts: list[str], inverse: Any) -> Any:
    """Per row of a block, whether its split and prompt are those given for its key (by
    :func:`query_keys`' ``inverse``); no split and a null one are the same."""
    import pyarrow as pa
    import pyarrow.compute as pc

    at = pa.array(inverse)
    same = pc.and_(
        pc.equal(
            pc.fill_null(table.column("split"), ""), pa.array([s or "" for s in splits]).take(at)
        ),
        pc.equal(table.column("prompt"), pa.array(prompts).take(at)),
    )
    return same.to_numpy(zero_copy_only=False)


def count_lines(path: Path) -> int:
    """Lines of a bank file (a last one without its newline too), blank ones included: an
    upper bound of its samples, by one pass of gunzip and no parsing (about 0.6 s for a
    million samples); -1 when the file cannot be read (:func:`read_blocks` says why)."""
    opener = gzip.open if path.suffix == ".gz" else open
    lines, last = 0, b"\n"
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(BLOCK_BYTES):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError):
        return -1
    return lines + (last != b"\n")


def row_to_json(row: FlatRow) -> str:
    """One output line, fields in the documented order; extensions only when set."""
    obj = {f: getattr(row, f) for f in FIELDS}
    for f in OPTIONAL_FIELDS:
        v = getattr(row, f)
        if v is not None:
            obj[f] = v
    return json.dumps(obj, ensure_ascii=False)


#: Bytes a JSON file beside a bank may hold (its models, its source): far above any real one.
MAX_SIDECAR_BYTES = 16 << 20


def read_json_file(path: Path, limit: int = MAX_SIDECAR_BYTES) -> Any:
    """A JSON file beside a bank or a result file, decoded; anything hostile is one line.

    At most ``limit`` bytes of a regular file are read (:func:`read_bounded`). orjson is strict
    where :mod:`json` is not, and never recurses in Python: invalid UTF-8 (also an encoded lone
    surrogate), nesting deeper than 1024 levels (``json`` raised RecursionError at about 1000),
    NaN/Infinity and numbers that overflow to infinity are all refused. Integers beyond 64 bits
    come back as floats (and fail an integer check).
    """
    data = read_bounded(path, limit)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "UTF-8" in msg or "surrogate" in msg:
            raise UisbenchError(f"{path.name}: not UTF-8 text ({msg})") from None
        raise UisbenchError(f"{path.name}: invalid JSON ({msg})") from None


#: models.json fields: all optional, numbers finite and non-negative (or null).
MODEL_NUMBERS = ("params_b", "active_params_b", "train_tokens_t", *PRICES)


def read_models_file(path: Path) -> dict[str, dict[str, Any]]:
    """``NAME.models.json``: model → metadata in billions/trillions, converted to plain units."""
    if not path.exists():
        raise UisbenchError(f"no such models file: {path}")
    raw = read_json_file(path)
    if not isinstance(raw, dict):
        raise UisbenchError(f"{path.name}: expected an object mapping model names to metadata")
    return {name: _model_meta(path, name, m) for name, m in raw.items()}


def _model_meta(path: Path, name: str, m: Any) -> dict[str, Any]:
    if not name or not isinstance(m, dict):
        raise UisbenchError(f"{path.name}: metadata of {name!r} is not an object")
    for f in MODEL_NUMBERS:
        v = m.get(f)
        if out_of_bounds(f, v):
            raise UisbenchError(f"{path.name}: {name}.{f} must be {BOUNDS[f][2]}, not {v!r}")
    if not isinstance(m.get("family"), (str, _NONE)):
        raise UisbenchError(f"{path.name}: {name}.family must be a string or null")
    check_text("family", m.get("family"), f"{path.name}: {name}.")
    params = m.get("params_b")
    active = m.get("active_params_b", params)
    tokens = m.get("train_tokens_t")
    return {
        "family": m.get("family"),
        "params_total": params * 1e9 if params is not None else None,
        "params_active": active * 1e9 if active is not None else None,
        "train_tokens": tokens * 1e12 if tokens is not None else None,
        **{f: m.get(f) for f in PRICES},
    }


def models_to_json(models: dict[str, dict[str, Any]]) -> str:
    """Inverse of :func:`read_models_file` (units back to billions/trillions)."""
    out = {}
    for name, m in models.items():
        d: dict[str, Any] = {"family": m.get("family")}
        p, a, t = m.get("params_total"), m.get("params_active"), m.get("train_tokens")
        d["params_b"] = round(p / 1e9, 6) if p is not None else None
        if a is not None and a != p:
            d["active_params_b"] = round(a / 1e9, 6)
        d["train_tokens_t"] = round(t / 1e12, 6) if t is not None else None
        for f in PRICES:
            if m.get(f) is not None:
                d[f] = m[f]
        out[name] = d
    return json.dumps(out, indent=1)


def models_file_beside(path: Path) -> Path | None:
    """``NAME.models.json`` next to ``NAME.jsonl[.gz]``, if there is one."""
    guess = path.parent / (path.name.split(".jsonl")[0] + ".models.json")
    return guess if guess.is_file() else None


def bank_meta_beside(path: Path) -> dict[str, str]:
    """Optional ``NAME.bank.json`` next to ``NAME.jsonl[.gz]``: where the samples came from and
    under which licence (``{"source": ..., "licence": ...}``), shown on every site page."""
    meta = bank_meta_path(path)
    if not meta.is_file():
        return {}
    raw = read_json_file(meta)
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise UisbenchError(f"{meta.name}: expected an object of strings (source, licence)")
    return raw


#: Keys of ``NAME.bank.json`` that ``bank export`` writes back from the bank's stored config.
PROVENANCE_KEYS = ("source", "licence", "license")


def bank_meta_path(path: Path) -> Path:
    """``NAME.bank.json`` beside ``NAME.jsonl[.gz]``."""
    return path.parent / (path.name.split(".jsonl")[0] + ".bank.json")


def bank_name_from_path(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name
