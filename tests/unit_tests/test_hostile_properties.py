"""Property-based tests of hostile input across the public API (issue 20).

Every public constructor and entry point, given arbitrary values, either works or raises
a `TokenOptError` (never a bare builtin, never a RecursionError), loses nothing it was
given, and answers within a time limit.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage, convert_to_messages
from langchain_core.outputs import Generation
from langchain_core.runnables import RunnableLambda

import langchain_tokenopt as lt
from langchain_tokenopt import (
    ArgumentTypeError,
    InvalidArgumentError,
    NotFittedError,
    TokenOptError,
)
from langchain_tokenopt.core.boundedjson import MAX_JSON_DEPTH
from langchain_tokenopt.core.validation import MAX_DEPTH, MAX_TTL_SECONDS, check_depth
from tests.support.bounded import within


def _deep(depth: int, mapping: bool) -> Any:
    value: Any = {} if mapping else []
    for _ in range(depth):
        value = {"a": value} if mapping else [value]
    return value


#: Any value a careless or hostile caller might pass.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
hostile = st.one_of(
    json_values,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.binary(max_size=8),
    st.builds(object),
    st.builds(_deep, st.integers(MAX_DEPTH + 1, 20_000), st.booleans()),
)


def typed_or_result(call: Callable[[], Any]) -> Any:
    """The call's result, or None after a TokenOptError; any other error fails the test."""
    try:
        return within(call)
    except TokenOptError:
        return None


def _kind(value: Any) -> str:
    return type(value).__name__


def _batch_model() -> Any:
    """A ChatOpenAI at a closed port: constructing a BatchAPIRunnable never connects."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0
    )


#: (name, factory, working keyword arguments) of public constructors and functions.
CONSTRUCTORS: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
    ("TokenOptCache", lt.TokenOptCache, {}),
    ("CoalescingRunnable", lt.CoalescingRunnable, {"runnable": RunnableLambda(_kind)}),
    ("TokenAwareTextSplitter", lt.TokenAwareTextSplitter, {"chunk_size": 16}),
    ("TokenCounter", lt.TokenCounter, {}),
    ("PriceTable", lt.PriceTable, {}),
    ("ModelPrice", lt.ModelPrice, {"input_per_mtok": 1, "output_per_mtok": 2}),
    ("TextIndex", lt.TextIndex, {}),
    ("MessageDeduplicator", lt.MessageDeduplicator, {}),
    ("PromptCompressor", lt.PromptCompressor, {}),
    ("ExtractiveSummarizer", lt.ExtractiveSummarizer, {}),
    ("HeuristicScorer", lt.HeuristicScorer, {}),
    ("LearnedScorer", lt.LearnedScorer, {}),
    ("MemoryStore", lt.MemoryStore, {}),
    ("SQLiteStore", lt.SQLiteStore, {}),
    ("SummarizingChatMessageHistory", lt.SummarizingChatMessageHistory, {}),
    ("TokenBudget", lt.TokenBudget, {"max_tokens": 100}),
    ("UsageTracker", lt.UsageTracker, {}),
    ("UsageReport", lt.UsageReport, {"events": []}),
    ("ToolRetriever", lt.ToolRetriever, {}),
    ("CompressionMiddleware", lt.CompressionMiddleware, {}),
    ("SummaryRecallMiddleware", lt.SummaryRecallMiddleware, {}),
    ("ToolRetrievalMiddleware", lt.ToolRetrievalMiddleware, {}),
    ("price", lt.price, {"model": "gpt-4o", "usage": {"input_tokens": 1}}),
    ("read_transcript", lt.read_transcript, {"text": '[{"role": "user", "content": "hi"}]'}),
    ("deduplicate_messages", lt.deduplicate_messages, {"messages": [HumanMessage("hi")]}),
    ("analyze_token_efficiency", lt.analyze_token_efficiency, {"events": []}),
    ("Usage.parse", lt.Usage.parse, {"data": {"input_tokens": 1}}),
    (
        "UsageEvent.from_dict",
        lt.UsageEvent.from_dict,
        {"data": {"run_id": "r", "agent": "a", "model": None}},
    ),
    ("LearnedScorer.from_dict", lt.LearnedScorer.from_dict, {"data": {}}),
    ("BatchAPIRunnable", lt.BatchAPIRunnable, {"model": _batch_model()}),
]

PARAMETERS: dict[str, list[str]] = {
    "TokenOptCache": [
        "store",
        "ttl_seconds",
        "max_entries",
        "semantic",
        "similarity_threshold",
        "namespace",
        "price_table",
        "flush_interval_seconds",
    ],
    "CoalescingRunnable": ["runnable", "window_ms", "max_batch_size"],
    "TokenAwareTextSplitter": ["chunk_size", "chunk_overlap", "model", "encoding"],
    "TokenCounter": ["model", "encoding", "cache_size"],
    "PriceTable": ["overrides", "default", "provider", "memo_size"],
    "ModelPrice": ["input_per_mtok", "output_per_mtok", "cache_read_per_mtok"],
    "TextIndex": ["word_ngram_range", "stop_words", "char_ngram_range"],
    "MessageDeduplicator": ["threshold", "keep", "model", "token_counter", "min_tokens"],
    "PromptCompressor": ["level", "model"],
    "ExtractiveSummarizer": [
        "model",
        "token_counter",
        "max_summary_tokens",
        "max_sentence_tokens",
        "cache_size",
    ],
    "HeuristicScorer": ["weights", "length_saturation_tokens", "counter"],
    "LearnedScorer": ["ngram_range", "min_df", "max_features", "C", "class_weight"],
    "MemoryStore": ["max_entries"],
    "SQLiteStore": ["path", "busy_timeout_seconds"],
    "SummarizingChatMessageHistory": [
        "store",
        "max_tokens",
        "model",
        "token_counter",
        "target_ratio",
        "target_tokens",
        "max_summary_tokens",
        "summary_role",
        "state_store",
        "namespace",
        "recall_share",
    ],
    "TokenBudget": [
        "max_tokens",
        "max_cost_usd",
        "window",
        "store",
        "timezone",
        "name",
        "default_output_tokens",
        "prices",
    ],
    "UsageTracker": ["budget", "agent_key", "prices"],
    "UsageReport": ["events", "timezone", "prices"],
    "ToolRetriever": ["tools", "k", "token_budget", "always_include", "model"],
    "CompressionMiddleware": ["compressor", "level", "model"],
    "SummaryRecallMiddleware": [
        "max_tokens",
        "model",
        "target_ratio",
        "max_summary_tokens",
        "summary_role",
        "recall",
        "recall_share",
    ],
    "ToolRetrievalMiddleware": [
        "retriever",
        "k",
        "token_budget",
        "always_include",
        "recent_turns",
        "recent_weight",
        "model",
    ],
    "price": ["model", "usage", "table"],
    "read_transcript": ["text", "source"],
    "deduplicate_messages": ["messages", "threshold", "keep", "min_tokens"],
    "analyze_token_efficiency": ["events"],
    "Usage.parse": ["data"],
    "UsageEvent.from_dict": ["data"],
    "LearnedScorer.from_dict": ["data"],
    "BatchAPIRunnable": [
        "model",
        "store",
        "poll_interval_seconds",
        "max_poll_interval_seconds",
        "backoff",
        "timeout_seconds",
        "max_requests_per_batch",
        "max_bytes_per_batch",
        "key_prefix",
        "state_ttl_seconds",
    ],
}


@pytest.mark.parametrize(
    ("name", "factory", "base"), CONSTRUCTORS, ids=[c[0] for c in CONSTRUCTORS]
)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_constructor_and_function_works_or_raises_a_typed_error(
    name: str, factory: Callable[..., Any], base: dict[str, Any], data: st.DataObject
) -> None:
    parameter = data.draw(st.sampled_from(PARAMETERS[name]), label="parameter")
    value = data.draw(hostile, label="value")
    typed_or_result(lambda: factory(**{**base, parameter: value}))


@given(st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e300, -1.0]))
def test_coalescing_refuses_windows_that_never_end_or_overflow(window_ms: float) -> None:
    with pytest.raises(InvalidArgumentError, match="window_ms"):
        lt.CoalescingRunnable(RunnableLambda(_kind), window_ms=window_ms)


@given(st.floats(min_value=0, max_value=50))
def test_any_accepted_window_answers_sync_and_async_callers(window_ms: float) -> None:
    runnable = lt.CoalescingRunnable(RunnableLambda(str.upper), window_ms=window_ms)
    assert within(lambda: runnable.invoke("hi"), 10) == "HI"
    assert within(lambda: asyncio.run(runnable.ainvoke("hi")), 10) == "HI"


@given(
    text=st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
    chunk_size=st.integers(min_value=4, max_value=64),
)
def test_split_chunks_join_back_into_the_input(text: str, chunk_size: int) -> None:
    splitter = lt.TokenAwareTextSplitter(chunk_size=chunk_size)
    chunks = within(lambda: splitter.split_text(text))
    assert "".join(chunks) == text
    assert all(splitter.token_counter.count_text(chunk) <= chunk_size for chunk in chunks)


@given(st.one_of(st.floats(allow_nan=True), st.text(max_size=3), st.none(), st.booleans()))
def test_the_splitter_refuses_sizes_that_are_not_whole_token_counts(chunk_size: Any) -> None:
    with pytest.raises(TokenOptError, match="chunk_size"):
        lt.TokenAwareTextSplitter(chunk_size=chunk_size)


protected_spans = st.sampled_from(
    ["`x = 1`", "https://example.com/a?b=1", "42.50", "{name}", "'quoted text'", "<tag>"]
)


@given(
    words=st.lists(
        st.sampled_from(["the", "of", "in order to", "  ", "\n", "very", "a"]), max_size=12
    ),
    spans=st.lists(protected_spans, min_size=1, max_size=3),
    level=st.sampled_from(["lossless", "light", "aggressive"]),
)
def test_compression_keeps_every_protected_span(
    words: list[str], spans: list[str], level: str
) -> None:
    text = " ".join(words + [f" {span} " for span in spans])
    result = within(lambda: lt.PromptCompressor(level=level).compress(text))
    assert all(span in result.text for span in spans)


@given(st.integers(min_value=MAX_DEPTH + 1, max_value=100_000), st.booleans())
def test_deep_structures_raise_a_typed_error_never_recursion_error(
    depth: int, mapping: bool
) -> None:
    deep = _deep(depth, mapping)
    counter = lt.TokenCounter()
    for call in (
        lambda: counter.count_messages([{"role": "user", "content": [{"type": "x", "v": deep}]}]),
        lambda: counter.count_tools([deep if mapping else {"a": deep}]),
        lambda: lt.PromptCompressor().invoke([HumanMessage(content=[{"type": "x", "v": deep}])]),
        lambda: lt.read_transcript(json.dumps("x")[:0] + "[" * depth + "]" * depth),
        lambda: check_depth(deep, "value"),
    ):
        with pytest.raises(InvalidArgumentError, match="deep"):
            within(call)
    # Stores read back a few levels more than inputs may have (an entry wraps a message).
    # `_deep(depth)` nests depth + 1 containers (the innermost one is empty).
    if depth + 1 > MAX_JSON_DEPTH:
        with pytest.raises(lt.UnstorableValueError, match="deep"):
            within(lambda: lt.MemoryStore().set("k", deep))
    else:
        store = lt.MemoryStore()
        within(lambda: store.set("k", deep))
        assert store.get("k") == deep


@given(st.lists(json_values, max_size=4))
def test_count_messages_counts_or_raises_a_typed_error(messages: list[Any]) -> None:
    count = typed_or_result(lambda: lt.TokenCounter().count_messages(messages))
    assert count is None or int(count) >= 0


@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_read_transcript_reads_or_names_the_problem(text: str) -> None:
    try:
        transcript = within(lambda: lt.read_transcript(text, "in.json"))
    except InvalidArgumentError as exc:
        assert str(exc).startswith("in.json")
    else:
        assert transcript.messages >= 1


event_fields = st.fixed_dictionaries(
    {"run_id": st.just("r"), "agent": st.just("a")},
    optional={
        name: json_values
        for name in (
            "model",
            "input_tokens",
            "cost_usd",
            "saved_cost_usd",
            "cache_hit",
            "estimated",
            "latency_seconds",
            "started_at",
            "status",
            "task_id",
        )
    },
)


@given(event_fields)
def test_usage_events_are_sane_or_refused(data: dict[str, Any]) -> None:
    event = typed_or_result(lambda: lt.UsageEvent.from_dict(data))
    if event is not None:
        assert isinstance(event.cache_hit, bool) and isinstance(event.estimated, bool)
        assert event.input_tokens >= 0
        for cost in (event.cost_usd, event.saved_cost_usd):
            assert cost is None or (cost.is_finite() and 0 <= cost <= 1_000_000)
        assert len(lt.UsageReport([event]).render_table()) < 10_000


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**12)))
def test_every_store_accepts_and_refuses_the_same_ttls(ttl: float) -> None:
    answers = []
    for store in (lt.MemoryStore(), lt.SQLiteStore()):
        try:
            store.set("k", 1, ttl_seconds=ttl)
            answers.append("accepted")
        except InvalidArgumentError as exc:
            assert "ttl_seconds" in str(exc)
            answers.append("refused")
    assert answers[0] == answers[1]
    assert (answers[0] == "accepted") == (0 < ttl <= MAX_TTL_SECONDS)


@given(st.floats(min_value=1, max_value=MAX_TTL_SECONDS))
def test_every_accepted_ttl_of_a_second_or_more_keeps_the_value(ttl: float) -> None:
    for store in (lt.MemoryStore(), lt.SQLiteStore()):
        store.set("k", {"v": 1}, ttl_seconds=ttl)
        assert store.get("k") == {"v": 1}


@given(ttl=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_a_cache_refuses_a_bad_ttl_before_any_paid_answer(ttl: float | None) -> None:
    try:
        cache = lt.TokenOptCache(lt.SQLiteStore(), ttl_seconds=ttl)
    except InvalidArgumentError:
        assert ttl is not None and not 0 < ttl <= MAX_TTL_SECONDS
        return
    cache.update("p", "l", [Generation(text="paid")])  # an accepted TTL never fails here
    if ttl is None or ttl >= 1:
        assert cache.lookup("p", "l")[0].text == "paid"  # type: ignore[index]


# ------------------------------------------------------------ provider batches

durations = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10, max_value=10**12),
    st.integers(min_value=10**300, max_value=10**400),
)


@given(durations)
def test_batch_durations_are_accepted_exactly_when_finite_and_in_range(value: float) -> None:
    bounds: dict[str, Callable[[float], bool]] = {
        "poll_interval_seconds": lambda v: 0 < v <= 600,  # up to the default maximum
        "max_poll_interval_seconds": lambda v: 30 <= v <= 24 * 3600,
        "backoff": lambda v: 1 <= v < float("inf"),
        "timeout_seconds": lambda v: 0 < v <= MAX_TTL_SECONDS,
        "state_ttl_seconds": lambda v: 0 < v <= MAX_TTL_SECONDS,
    }
    model = _batch_model()
    number = float(value) if not isinstance(value, int) or abs(value) < 10**308 else float("inf")
    for argument, accepted in bounds.items():
        arguments: dict[str, Any] = {argument: value}
        try:
            within(lambda: lt.BatchAPIRunnable(model, **arguments))  # noqa: B023
        except InvalidArgumentError as exc:
            assert argument in str(exc)
            assert not accepted(number)
        else:
            assert accepted(number)


class _WouldSend(Exception):
    """Raised where the batch would upload: every check let the inputs through."""


def _offline_batched() -> Any:
    batched = lt.BatchAPIRunnable(_batch_model())

    def stage(lines: Any) -> Any:
        raise _WouldSend

    async def astage(lines: Any) -> Any:
        raise _WouldSend

    setattr(batched.endpoint, "stage", stage)  # noqa: B010 (a method replaced for the test)
    setattr(batched.endpoint, "astage", astage)  # noqa: B010
    return batched


def _readable(item: Any) -> bool:
    """Whether a chat model could read `item` as at least one message."""
    if isinstance(item, str):
        return True
    if not isinstance(item, list):
        return False
    try:
        return bool(convert_to_messages(item))
    except Exception:
        return False


message_like = st.one_of(
    st.tuples(st.sampled_from(["human", "ai", "system", "robot", ""]), st.text(max_size=8)),
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "tool", "x"]), "content": json_values}
    ),
    st.builds(HumanMessage, st.text(max_size=8)),
    json_values,
)
batch_items = st.one_of(st.text(max_size=10), st.lists(message_like, max_size=3), hostile)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=st.one_of(hostile, st.lists(batch_items, max_size=4)), asynchronous=st.booleans())
def test_batch_refuses_unreadable_inputs_with_a_typed_error_before_sending(
    inputs: Any, asynchronous: bool
) -> None:
    batched = _offline_batched()

    def call() -> Any:
        if asynchronous:
            return asyncio.run(batched.abatch(inputs))
        return batched.batch(inputs)

    try:
        result = within(call)
    except _WouldSend:  # only inputs a chat model can read get this far
        assert isinstance(inputs, list) and inputs
        assert all(_readable(item) for item in inputs)
    except TokenOptError as exc:
        if not isinstance(inputs, list):
            assert isinstance(exc, ArgumentTypeError) and "inputs must be a list" in str(exc)
            return
        unreadable = [i for i, item in enumerate(inputs) if not _readable(item)]
        if unreadable:  # the first item that cannot be read is named
            assert f"inputs[{unreadable[0]}]" in str(exc)
    else:
        assert inputs == [] and result == []


@given(hostile)
def test_a_batch_store_that_is_not_a_store_is_a_type_error(store: Any) -> None:
    if store is None:
        return
    with pytest.raises(ArgumentTypeError, match="store"):
        within(lambda: lt.BatchAPIRunnable(_batch_model(), store=store))


def test_a_learned_scorer_used_before_training_says_so() -> None:
    for call in (
        lambda: lt.LearnedScorer().score([HumanMessage("hi")]),
        lambda: lt.LearnedScorer().score_texts(["hi"]),
        lambda: lt.LearnedScorer().to_dict(),
    ):
        with pytest.raises(NotFittedError, match="fit"):
            call()
    assert issubclass(NotFittedError, RuntimeError)


@pytest.mark.parametrize(
    "call",
    [
        lambda: lt.TokenOptCache().lookup(None, "l"),  # type: ignore[arg-type]
        lambda: lt.TokenOptCache(store="x"),  # type: ignore[arg-type]
        lambda: lt.LearnedScorer.from_dict({"format": "x"}),
        lambda: lt.PriceTable(
            overrides={"m": {"input_per_mtok": float("nan"), "output_per_mtok": 1}}
        ),
        lambda: lt.analyze_transcript(None),  # type: ignore[arg-type]
    ],
    ids=["lookup-None", "store-str", "from_dict-missing", "nan-price", "analyze-None"],
)
def test_the_issues_wrong_arguments_raise_typed_errors(call: Callable[[], Any]) -> None:
    with pytest.raises((ArgumentTypeError, InvalidArgumentError)):
        call()


# ------------------------------------------------------------ stored data


def _write_raw(path: Path, key: str, raw: Any) -> None:
    """Put `raw` as the stored value of `key`, bypassing the store's encoder."""
    with sqlite3.connect(path) as connection:
        table = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchone()[
            0
        ]
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        row = dict(
            zip(columns, connection.execute(f"SELECT * FROM {table}").fetchone(), strict=True)
        )
        row[columns[0]] = key
        row[next(c for c in columns if c in ("value", "v", "data"))] = raw
        marks = ", ".join("?" for _ in columns)
        connection.execute(
            f"INSERT OR REPLACE INTO {table} VALUES ({marks})", [row[c] for c in columns]
        )


raw_values = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64),
    json_values.map(json.dumps),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # what a SQLite column can hold
    st.floats(allow_nan=True),
    st.none(),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_values)
def test_stored_bytes_read_back_as_json_or_as_a_miss(raw: Any, tmp_path: Path) -> None:
    path = tmp_path / "raw.sqlite3"
    store = lt.SQLiteStore(path)
    store.set("seed", 1)
    _write_raw(path, "k", raw)
    value = typed_or_result(lambda: store.get("k"))
    json.dumps(value)  # whatever comes back is JSON
    assert typed_or_result(lambda: list(store.scan(""))) is not None


def test_a_deeply_nested_stored_value_is_a_typed_corrupt_state_error(tmp_path: Path) -> None:
    path = tmp_path / "raw.sqlite3"
    store = lt.SQLiteStore(path)
    store.set("seed", 1)
    _write_raw(path, "k", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(lt.CorruptStateError, match="'k'"):
        store.get("k")
    assert [key for key, _ in store.scan("")] == ["seed"]  # skipped, not lost
