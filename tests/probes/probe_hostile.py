"""Probe the whole public API and every command with hostile input, and count failures.

Run it with `python tests/probes/probe_hostile.py` (add `-v` to see every case). It
calls every public constructor, function and the main public methods with wrong types,
NaN, infinities, huge and negative numbers and structures nested 100,000 levels deep,
replays the crafted cases of issue 20, and runs `tokenopt count`, `analyze`, `report`
(and `demo`'s options) on hostile files and stdin. Each case ends in one of:

* ok: a correct result (where a result can be checked, it is: nothing lost);
* typed: a `TokenOptError` (our errors, each also the matching builtin);
* untyped: any other exception (a bare ValueError, a RecursionError...);
* traceback: a command printed a traceback or let an exception escape `main`;
* hang: no answer within the case's time limit;
* loss: a result that lost or changed what it was given;
* accepted: a value that cannot be right was taken without an error.

The summary prints the count of each; the exit code is 0 only when untyped, traceback,
hang, loss and accepted are all zero. `tests/probes/test_probe_hostile.py` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import io
import json
import os
import reprlib
import sqlite3
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENOPT_DEBUG", "")

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import langchain_tokenopt as lt
from langchain_tokenopt.cli.app import main
from langchain_tokenopt.errors import TokenOptError

#: Seconds a single case may take before it counts as a hang.
CASE_TIMEOUT_SECONDS = 20.0
DEEP = 100_000
FAILURES = ("untyped", "traceback", "hang", "loss", "accepted")
#: Cases whose fix belongs to the other half of issue 20 (decoding stored values with a
#: depth limit): with `--pending-stored` their failures count as "pending", not as
#: failures, and a pending case that passes is reported so the mark can go.
STORED_DATA_CASES = ("SQLiteStore.get(deep raw", "SQLiteStore.scan over raw")

# A str where a store belongs is a SQLite path: keep the file out of the checkout.
_SCRATCH_PATH = os.path.join(tempfile.mkdtemp(prefix="probe-hostile-"), "x.sqlite")


def _deep_list(depth: int = DEEP) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_dict(depth: int = DEEP) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


HOSTILE: list[tuple[str, Any]] = [
    ("None", None),
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("-inf", float("-inf")),
    ("-1", -1),
    ("0", 0),
    ("10**400", 10**400),
    ("1e300", 1e300),
    ("True", True),
    ("'x'", "x"),
    ("''", ""),
    ("b'x'", b"x"),
    ("object", _Opaque()),
    ("[]", []),
    ("{}", {}),
    ("deep list", _deep_list()),
    ("deep dict", _deep_dict()),
]


def _short(value: Any) -> str:
    """A bounded description of a value or error, even when its repr would fail."""
    try:
        return (
            reprlib.repr(value)[:160]
            if not isinstance(value, BaseException)
            else (f"{type(value).__name__}: {str(value)[:160]}")
        )
    except Exception:  # a deep structure's repr overflows: its type is enough
        return f"a {type(value).__name__}"


@dataclass
class Outcome:
    case: str
    verdict: str
    detail: str = ""


def _run_with_timeout(call: Callable[[], Any], timeout: float) -> tuple[str, Any]:
    """('ok', result) | ('raised', exception) | ('hang', None), in a daemon thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # the probe classifies everything
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return "hang", None
    if "error" in box:
        return "raised", box["error"]
    return "ok", box.get("result")


def _classify(
    name: str,
    call: Callable[[], Any],
    *,
    expect_error: bool = False,
    check: Callable[[Any], bool] | None = None,
    timeout: float = CASE_TIMEOUT_SECONDS,
) -> Outcome:
    status, value = _run_with_timeout(call, timeout)
    if status == "hang":
        return Outcome(name, "hang", f"no answer in {timeout:g}s")
    if status == "raised":
        if isinstance(value, TokenOptError):
            return Outcome(name, "typed", _short(value))
        return Outcome(name, "untyped", _short(value))
    if expect_error:
        return Outcome(name, "accepted", f"returned {_short(value)}")
    if check is not None:
        try:
            good = check(value)
        except Exception as exc:  # the check itself failing means a bad result
            return Outcome(name, "loss", f"check raised {type(exc).__name__}: {exc}")
        if not good:
            return Outcome(name, "loss", f"result {_short(value)}")
    return Outcome(name, "ok")


# ---------------------------------------------------------------------- the API


def _kind(value: Any) -> str:
    """A runnable body that cannot fail on any input (str() of a deep list would)."""
    return type(value).__name__


def _chat_model() -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage("hi")] * 1000))


def _batch_model() -> Any:
    """A ChatOpenAI at a closed port: building a BatchAPIRunnable never connects, and a
    bad input that got past the checks would fail with a connection error (untyped)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0
    )


@tool
def _weather(city: str) -> str:
    """Weather in a city."""
    return city


def _constructors() -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """Public constructors and functions with arguments that work, to mutate one by one."""
    model = _chat_model()
    retriever = lt.ToolRetriever([_weather])
    budget = lt.TokenBudget(max_tokens=1000)
    tier = lt.Tier(model=_chat_model(), quality=0.5, name="t", model_name="gpt-4o-mini")
    targets: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
        "TokenOptCache": (lt.TokenOptCache, {}),
        "CoalescingRunnable": (lt.CoalescingRunnable, {"runnable": RunnableLambda(_kind)}),
        "TokenAwareTextSplitter": (lt.TokenAwareTextSplitter, {"chunk_size": 16}),
        "TokenCounter": (lt.TokenCounter, {"model": "gpt-4o"}),
        "PriceTable": (lt.PriceTable, {}),
        "ModelPrice": (lt.ModelPrice, {"input_per_mtok": 1, "output_per_mtok": 2}),
        "TextIndex": (lt.TextIndex, {}),
        "MessageDeduplicator": (lt.MessageDeduplicator, {}),
        "PromptCompressor": (lt.PromptCompressor, {}),
        "ExtractiveSummarizer": (lt.ExtractiveSummarizer, {}),
        "LLMSummarizer": (lt.LLMSummarizer, {"model": model}),
        "HeuristicScorer": (lt.HeuristicScorer, {}),
        "LearnedScorer": (lt.LearnedScorer, {}),
        "MemoryStore": (lt.MemoryStore, {}),
        "SQLiteStore": (lt.SQLiteStore, {}),
        "SummarizingChatMessageHistory": (lt.SummarizingChatMessageHistory, {}),
        "TokenBudget": (lt.TokenBudget, {"max_tokens": 100}),
        "UsageTracker": (lt.UsageTracker, {}),
        "UsageReport": (lt.UsageReport, {"events": []}),
        "UsageEvent.from_dict": (
            lt.UsageEvent.from_dict,
            {"data": {"run_id": "r", "agent": "a", "model": "gpt-4o"}},
        ),
        "ToolRetriever": (lt.ToolRetriever, {"tools": [_weather]}),
        "CachedStreamRunnable": (
            lt.CachedStreamRunnable,
            {"model": model, "cache": lt.TokenOptCache()},
        ),
        "Tier": (lt.Tier, {"model": _chat_model(), "quality": 0.5, "model_name": "gpt-4o"}),
        "ModelRouter": (lt.ModelRouter, {"tiers": [tier]}),
        "bind_relevant_tools": (lt.bind_relevant_tools, {"model": model, "tools": retriever}),
        "RelevantToolsRunnable": (
            lt.RelevantToolsRunnable,
            {"model": model, "retriever": retriever},
        ),
        "CompressionMiddleware": (lt.CompressionMiddleware, {}),
        "SummaryRecallMiddleware": (lt.SummaryRecallMiddleware, {}),
        "TokenBudgetMiddleware": (lt.TokenBudgetMiddleware, {"budget": budget}),
        "ToolRetrievalMiddleware": (lt.ToolRetrievalMiddleware, {}),
        "CostRouterMiddleware": (
            lt.CostRouterMiddleware,
            {"router": lt.ModelRouter(tiers=[tier])},
        ),
        "price": (lt.price, {"model": "gpt-4o", "usage": {"input_tokens": 1}}),
        "read_transcript": (lt.read_transcript, {"text": '[{"role": "user", "content": "hi"}]'}),
        "analyze_transcript": (
            lt.analyze_transcript,
            {"transcript": lt.read_transcript('[{"role": "user", "content": "hi"}]')},
        ),
        "deduplicate_messages": (lt.deduplicate_messages, {"messages": [HumanMessage("hi")]}),
        "analyze_token_efficiency": (lt.analyze_token_efficiency, {"events": []}),
        "Usage.parse": (lt.Usage.parse, {"data": {"input_tokens": 1}}),
        "LearnedScorer.from_dict": (lt.LearnedScorer.from_dict, {"data": {}}),
        "BatchAPIRunnable": (lt.BatchAPIRunnable, {"model": _batch_model()}),
    }
    return targets


def _methods() -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """Public methods with arguments that work, to mutate one by one."""
    counter = lt.TokenCounter("gpt-4o")
    cache = lt.TokenOptCache()
    memory = lt.MemoryStore()
    sqlite = lt.SQLiteStore()
    compressor = lt.PromptCompressor()
    splitter = lt.TokenAwareTextSplitter(chunk_size=16)
    index = lt.TextIndex()
    index.add("a", "hello world")
    dedup = lt.MessageDeduplicator()
    table = lt.PriceTable()
    history = lt.SummarizingChatMessageHistory(max_tokens=200)
    scorer = lt.HeuristicScorer()
    retriever = lt.ToolRetriever([_weather])
    coalescing = lt.CoalescingRunnable(RunnableLambda(_kind), window_ms=1)
    batched = lt.BatchAPIRunnable(_batch_model())
    targets: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
        "TokenCounter.count_text": (counter.count_text, {"text": "hi"}),
        "TokenCounter.count_messages": (counter.count_messages, {"messages": ["hi"]}),
        "TokenCounter.count_message": (counter.count_message, {"message": HumanMessage("hi")}),
        "TokenCounter.count_tools": (counter.count_tools, {"tools": [_weather]}),
        "TokenCounter.encode": (counter.encode, {"text": "hi"}),
        "TokenOptCache.lookup": (cache.lookup, {"prompt": "p", "llm_string": "l"}),
        "TokenOptCache.update": (
            cache.update,
            {"prompt": "p", "llm_string": "l", "return_val": [Generation(text="x")]},
        ),
        "TokenOptCache.alookup": (
            lambda prompt, llm_string: asyncio.run(cache.alookup(prompt, llm_string)),
            {"prompt": "p", "llm_string": "l"},
        ),
        "TokenOptCache.aupdate": (
            lambda prompt, llm_string, return_val: asyncio.run(
                cache.aupdate(prompt, llm_string, return_val)
            ),
            {"prompt": "p", "llm_string": "l", "return_val": [Generation(text="x")]},
        ),
        "PromptCompressor.compress": (compressor.compress, {"text": "hi"}),
        "PromptCompressor.invoke": (compressor.invoke, {"input": "hi"}),
        "TokenAwareTextSplitter.split_text": (splitter.split_text, {"text": "hi"}),
        "TextIndex.add": (index.add, {"key": "b", "text": "hi"}),
        "TextIndex.query": (index.query, {"text": "hi"}),
        "MessageDeduplicator.invoke": (dedup.invoke, {"input": [HumanMessage("hi")]}),
        "PriceTable.price": (table.price, {"model": "gpt-4o", "usage": {"input_tokens": 1}}),
        "PriceTable.set": (
            table.set,
            {"model": "m", "value": {"input_per_mtok": 1, "output_per_mtok": 1}},
        ),
        "SummarizingChatMessageHistory.add_messages": (
            history.add_messages,
            {"messages": [HumanMessage("hi")]},
        ),
        "HeuristicScorer.score": (scorer.score, {"messages": "hi"}),
        "ToolRetriever.invoke": (retriever.invoke, {"input": "weather"}),
        "CoalescingRunnable.invoke": (coalescing.invoke, {"input": "hi"}),
        "CoalescingRunnable.ainvoke": (
            lambda input: asyncio.run(coalescing.ainvoke(input)),
            {"input": "hi"},
        ),
        # An empty batch is the working call that sends nothing (no network here).
        "BatchAPIRunnable.batch": (batched.batch, {"inputs": []}),
        "BatchAPIRunnable.abatch": (
            lambda inputs, return_exceptions=False: asyncio.run(
                batched.abatch(inputs, return_exceptions=return_exceptions)
            ),
            {"inputs": []},
        ),
        "BatchAPIRunnable.cancel": (batched.cancel, {"key": "nothing-saved"}),
    }
    for store_name, store in (("MemoryStore", memory), ("SQLiteStore", sqlite)):
        targets.update(
            {
                f"{store_name}.get": (store.get, {"key": "k"}),
                f"{store_name}.set": (store.set, {"key": "k", "value": 1, "ttl_seconds": 10}),
                f"{store_name}.add": (store.add, {"key": "n", "amount": 1}),
                f"{store_name}.delete": (store.delete, {"key": "k"}),
                f"{store_name}.scan": (_scanner(store), {"prefix": "k"}),
                f"{store_name}.clear": (store.clear, {"namespace": "zz"}),
            }
        )
    return targets


def _scanner(store: Any) -> Callable[[Any], list[Any]]:
    return lambda prefix: list(store.scan(prefix))


def _signature_names(call: Callable[..., Any], base: dict[str, Any]) -> list[str]:
    try:
        parameters = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return list(base)
    names = [
        name
        for name, parameter in parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        and name not in ("self", "config", "kwargs", "args", "time_func", "clock")
    ]
    return names or list(base)


def _bind(call: Callable[..., Any], arguments: dict[str, Any]) -> Callable[[], Any]:
    return lambda: call(**arguments)


def api_cases() -> Iterator[Outcome]:
    """Every target with its working arguments, then one argument at a time made hostile."""
    for group in (_constructors(), _methods()):
        for target, (call, base) in group.items():
            yield _classify(f"{target}(working arguments)", _bind(call, base))
            for name in _signature_names(call, base):
                for label, value in HOSTILE:
                    yield _classify(f"{target}({name}={label})", _bind(call, {**base, name: value}))


# ------------------------------------------------------------- the cases


def _split_joins_back(text: str) -> Callable[[Any], bool]:
    return lambda chunks: "".join(chunks) == text


def crafted_cases(workdir: Path) -> Iterator[Outcome]:
    """The hostile inputs issue 20 lists, each with the answer it must get."""
    nan, inf = float("nan"), float("inf")
    fn = RunnableLambda(str.upper)
    expected_errors: dict[str, Callable[[], Any]] = {
        "CoalescingRunnable(window_ms=nan)": lambda: lt.CoalescingRunnable(fn, window_ms=nan),
        "CoalescingRunnable(window_ms=inf)": lambda: lt.CoalescingRunnable(fn, window_ms=inf),
        "CoalescingRunnable(window_ms=1e300)": lambda: lt.CoalescingRunnable(fn, window_ms=1e300),
        "CoalescingRunnable(max_batch_size=nan)": lambda: lt.CoalescingRunnable(
            fn,
            max_batch_size=nan,  # type: ignore[arg-type]
        ),
        "TokenAwareTextSplitter(chunk_size=nan)": lambda: lt.TokenAwareTextSplitter(
            chunk_size=nan  # type: ignore[arg-type]
        ),
        "TokenAwareTextSplitter(chunk_overlap=nan)": lambda: lt.TokenAwareTextSplitter(
            chunk_overlap=nan  # type: ignore[arg-type]
        ),
        "TokenAwareTextSplitter(chunk_size=inf)": lambda: lt.TokenAwareTextSplitter(
            chunk_size=inf  # type: ignore[arg-type]
        ),
        "TokenOptCache(ttl_seconds=inf)": lambda: lt.TokenOptCache(ttl_seconds=inf),
        "TokenOptCache(ttl_seconds=nan)": lambda: lt.TokenOptCache(ttl_seconds=nan),
        "TokenOptCache(ttl_seconds=1e300)": lambda: lt.TokenOptCache(ttl_seconds=1e300),
        "TokenOptCache(store='x')": lambda: lt.TokenOptCache(store=_SCRATCH_PATH),  # type: ignore[arg-type]
        "TokenOptCache.lookup(None, 'llm')": lambda: lt.TokenOptCache().lookup(
            None,  # type: ignore[arg-type]
            "llm",
        ),
        "MemoryStore.set(ttl_seconds=1e300)": lambda: lt.MemoryStore().set(
            "k", 1, ttl_seconds=1e300
        ),
        "SQLiteStore.set(ttl_seconds=1e300)": lambda: lt.SQLiteStore().set(
            "k", 1, ttl_seconds=1e300
        ),
        "MemoryStore.set(deep value)": lambda: lt.MemoryStore().set("k", _deep_list()),
        "SQLiteStore.set(deep value)": lambda: lt.SQLiteStore().set("k", _deep_list()),
        "LearnedScorer.from_dict(missing key)": _learned_missing_key,
        "LearnedScorer.from_dict(None)": lambda: lt.LearnedScorer.from_dict(None),  # type: ignore[arg-type]
        "PriceTable(NaN price)": lambda: lt.PriceTable(
            overrides={"m": {"input_per_mtok": nan, "output_per_mtok": 1}}
        ),
        "PriceTable(sNaN price)": lambda: lt.PriceTable(
            overrides={"m": {"input_per_mtok": "sNaN", "output_per_mtok": 1}}
        ),
        "ModelPrice(input_per_mtok=-1)": lambda: lt.ModelPrice(-1, 1),  # type: ignore[arg-type]
        "analyze_transcript(None)": lambda: lt.analyze_transcript(None),  # type: ignore[arg-type]
        "read_transcript(None)": lambda: lt.read_transcript(None),  # type: ignore[arg-type]
        "count_messages(deep content)": lambda: lt.TokenCounter().count_messages(
            [{"role": "user", "content": _deep_list()}]
        ),
        "count_messages(deep message)": lambda: lt.TokenCounter().count_messages(
            [HumanMessage(content=[{"type": "x", "v": _deep_dict()}])]
        ),
        "count_tools(deep schema)": lambda: lt.TokenCounter().count_tools([_deep_dict()]),
        "compress(deep message list)": lambda: lt.PromptCompressor().invoke(
            [{"role": "user", "content": [{"type": "x", "v": _deep_list()}]}]
        ),
        "read_transcript(deep JSON)": lambda: lt.read_transcript("[" * DEEP + "]" * DEEP),
        "read_transcript(deep JSON Lines)": lambda: lt.read_transcript(
            '{"role": "user", "content": "hi"}\n' + '{"a":' * DEEP + "1" + "}" * DEEP
        ),
        "read_transcript(5,000-digit integer)": lambda: lt.read_transcript(
            '[{"role": "user", "content": "hi", "n": ' + "9" * 5000 + "}]"
        ),
        "UsageEvent.from_dict(cache_hit='yes')": lambda: lt.UsageEvent.from_dict(
            {"run_id": "r", "agent": "a", "model": None, "cache_hit": "yes"}
        ),
        "UsageEvent.from_dict(cost NaN)": lambda: lt.UsageEvent.from_dict(
            {"run_id": "r", "agent": "a", "model": None, "cost_usd": "NaN"}
        ),
        "UsageEvent.from_dict(cost -1)": lambda: lt.UsageEvent.from_dict(
            {"run_id": "r", "agent": "a", "model": None, "cost_usd": -1}
        ),
        "UsageEvent.from_dict(cost 1e999999999)": lambda: lt.UsageEvent.from_dict(
            {"run_id": "r", "agent": "a", "model": None, "cost_usd": "1e999999999"}
        ),
        "UsageEvent.from_dict(started_at year 9999)": lambda: lt.UsageEvent.from_dict(
            {"run_id": "r", "agent": "a", "model": None, "started_at": "9999-12-31T23:59:59-05:00"}
        ),
        "TokenBudget(max_tokens=nan)": lambda: lt.TokenBudget(max_tokens=nan),  # type: ignore[arg-type]
        "TokenBudget(max_cost_usd=nan)": lambda: lt.TokenBudget(max_cost_usd=nan),
        "MessageDeduplicator(threshold=nan)": lambda: lt.MessageDeduplicator(threshold=nan),
        "PromptCompressor(level='x')": lambda: lt.PromptCompressor(level="x"),
        "TokenCounter(cache_size=nan)": lambda: lt.TokenCounter(cache_size=nan),  # type: ignore[arg-type]
        "SQLiteStore(busy_timeout_seconds=nan)": lambda: lt.SQLiteStore(busy_timeout_seconds=nan),
        "MemoryStore.add(amount=nan)": lambda: lt.MemoryStore().add("k", nan),
    }
    expected_errors.update(_batch_errors())
    for name, call in expected_errors.items():
        yield _classify(name, call, expect_error=True)

    # Nothing lost: results that must hold everything they were given.
    text = "First sentence here. Second one!\n\nA new paragraph with `code()` and 3.14.  "
    yield _classify(
        "split_text joins back into the input",
        lambda: lt.TokenAwareTextSplitter(chunk_size=4).split_text(text),
        check=_split_joins_back(text),
    )
    protected = "Run `rm -rf build` at https://example.com/a?b=1 with 42.50 and {name}."
    yield _classify(
        "compress keeps protected spans",
        lambda: lt.PromptCompressor(level="aggressive").compress(protected).text,
        check=lambda out: all(
            span in out
            for span in ("`rm -rf build`", "https://example.com/a?b=1", "42.50", "{name}")
        ),
    )
    yield _classify(
        "compress leaves deep JSON text as it is",
        lambda: lt.PromptCompressor().compress("[" * DEEP + "]" * DEEP).text,
        check=lambda out: out == "[" * DEEP + "]" * DEEP,
    )
    ttl_cache = lt.TokenOptCache(ttl_seconds=3600)

    def store_then_read() -> Any:
        ttl_cache.update("p", "l", [Generation(text="kept")])
        return ttl_cache.lookup("p", "l")

    yield _classify(
        "cache keeps what it stored",
        store_then_read,
        check=lambda found: found is not None and found[0].text == "kept",
    )
    yield _classify(
        "a cache with the maximum TTL stores in SQLite",
        lambda: _max_ttl_round_trip(workdir),
        check=lambda value: value == {"v": 1},
    )
    yield from _stored_bytes_cases(workdir)


def _batch_errors() -> dict[str, Callable[[], Any]]:
    """BatchAPIRunnable calls that must be refused before anything is sent."""
    nan, inf = float("nan"), float("inf")
    model = _batch_model()
    batched = lt.BatchAPIRunnable(model)

    def new(**arguments: Any) -> Callable[[], Any]:
        return lambda: lt.BatchAPIRunnable(model, **arguments)

    def run(inputs: Any, config: Any = None) -> Callable[[], Any]:
        return lambda: batched.batch(inputs, config)

    def arun(inputs: Any) -> Callable[[], Any]:
        return lambda: asyncio.run(batched.abatch(inputs))

    corrupt = lt.MemoryStore()
    corrupt.set("tokenopt:batch:k", {"version": 1, "provider": "openai", "count": "many"})
    return {
        "BatchAPIRunnable(poll_interval_seconds=nan)": new(poll_interval_seconds=nan),
        "BatchAPIRunnable(poll_interval_seconds=inf)": new(poll_interval_seconds=inf),
        "BatchAPIRunnable(poll_interval_seconds=1e300)": new(poll_interval_seconds=1e300),
        "BatchAPIRunnable(max_poll_interval_seconds=inf)": new(max_poll_interval_seconds=inf),
        "BatchAPIRunnable(max_poll below poll)": new(
            poll_interval_seconds=60, max_poll_interval_seconds=1
        ),
        "BatchAPIRunnable(backoff=nan)": new(backoff=nan),
        "BatchAPIRunnable(backoff=inf)": new(backoff=inf),
        "BatchAPIRunnable(backoff=0.5)": new(backoff=0.5),
        "BatchAPIRunnable(timeout_seconds=nan)": new(timeout_seconds=nan),
        "BatchAPIRunnable(timeout_seconds=-1)": new(timeout_seconds=-1),
        "BatchAPIRunnable(state_ttl_seconds=inf)": new(state_ttl_seconds=inf),
        "BatchAPIRunnable(state_ttl_seconds=1e300)": new(state_ttl_seconds=1e300),
        "BatchAPIRunnable(max_requests_per_batch=2.0)": new(max_requests_per_batch=2.0),
        "BatchAPIRunnable(max_bytes_per_batch=0)": new(max_bytes_per_batch=0),
        "BatchAPIRunnable(key_prefix='')": new(key_prefix=""),
        "BatchAPIRunnable(store='x')": new(store=_SCRATCH_PATH),
        "BatchAPIRunnable(store=dict)": new(store={}),
        "BatchAPIRunnable(fake chat model)": lambda: lt.BatchAPIRunnable(_chat_model()),
        "BatchAPIRunnable.batch('a string')": run("hello"),
        "BatchAPIRunnable.batch(None)": run(None),
        "BatchAPIRunnable.batch([ok, 5])": run(["ok", 5]),
        "BatchAPIRunnable.batch([ok, b'x'])": run(["ok", b"x"]),
        "BatchAPIRunnable.batch([ok, one message])": run(["ok", HumanMessage("x")]),
        "BatchAPIRunnable.batch([ok, []])": run(["ok", []]),
        "BatchAPIRunnable.batch([unknown role])": run([[("robot", "x")]]),
        "BatchAPIRunnable.batch([content 5])": run([[{"role": "user", "content": 5}]]),
        "BatchAPIRunnable.batch([deep list])": run(["ok", _deep_list()]),
        "BatchAPIRunnable.batch([deep content])": run(
            [[HumanMessage(content=[{"type": "x", "v": _deep_dict()}])]]
        ),
        "BatchAPIRunnable.abatch([ok, 5])": arun(["ok", 5]),
        "BatchAPIRunnable.abatch([deep list])": arun([_deep_list()]),
        "BatchAPIRunnable.invoke(None)": lambda: batched.invoke(None),  # type: ignore[arg-type]
        "BatchAPIRunnable.batch(config='x')": run(["a"], "x"),
        "BatchAPIRunnable.batch(config of 1 for 2)": run(["a", "b"], [{}]),
        "BatchAPIRunnable.batch(configurable=list)": run(["a"], {"configurable": []}),
        "BatchAPIRunnable.batch(batch_key='')": run(["a"], {"configurable": {"batch_key": ""}}),
        "BatchAPIRunnable.batch(batch_key=5)": run(["a"], {"configurable": {"batch_key": 5}}),
        "BatchAPIRunnable.batch(different batch_keys)": run(
            ["a", "b"], [{"configurable": {"batch_key": "x"}}, {"configurable": {"batch_key": "y"}}]
        ),
        "BatchAPIRunnable.batch(return_exceptions='yes')": lambda: batched.batch(
            ["a"],
            return_exceptions="yes",  # type: ignore[arg-type]
        ),
        "BatchAPIRunnable.batch(unreadable saved job)": lambda: lt.BatchAPIRunnable(
            model, store=corrupt
        ).batch(["a"], {"configurable": {"batch_key": "k"}}),
        "BatchAPIRunnable.cancel(None)": lambda: batched.cancel(None),  # type: ignore[arg-type]
        "BatchAPIRunnable.cancel('')": lambda: batched.cancel(""),
        "LearnedScorer().score before fit": lambda: lt.LearnedScorer().score([HumanMessage("x")]),
        "LearnedScorer().to_dict before fit": lambda: lt.LearnedScorer().to_dict(),
    }


def _learned_missing_key() -> Any:
    texts = ["fix the typo", "prove the theorem in detail", "hi", "derive the equations"]
    data = lt.LearnedScorer().fit(texts, [0, 1, 0, 1]).to_dict()
    del data["vectorizer"]["lowercase"]
    return lt.LearnedScorer.from_dict(data)


def _max_ttl_round_trip(workdir: Path) -> Any:
    from langchain_tokenopt.core.validation import MAX_TTL_SECONDS

    store = lt.SQLiteStore(workdir / "ttl.sqlite3")
    store.set("k", {"v": 1}, ttl_seconds=MAX_TTL_SECONDS)
    return store.get("k")


def _stored_bytes_cases(workdir: Path) -> Iterator[Outcome]:
    """Arbitrary bytes written straight into a SQLite store: get and scan must cope."""
    path = workdir / "raw.sqlite3"
    store = lt.SQLiteStore(path)
    store.set("seed", 1)
    table = _sqlite_value_table(path)
    raw_values: list[Any] = [
        b"\xff\xfe",
        b"{",
        b"[" * DEEP,
        "nan",
        "NaN",
        "1e999999",
        "9" * 5000,
        "",
        "null",
        '{"a":' * 2000 + "1" + "}" * 2000,
        3.5,
        7,
        None,
    ]
    for number, raw in enumerate(raw_values):
        key = f"raw{number}"
        _write_raw(path, table, key, raw)
        deep = isinstance(raw, (str, bytes)) and len(raw) > 1000 and raw[:2] in ("[[", b"[[", '{"')
        label = "deep raw" if deep else "raw"
        yield _classify(f"SQLiteStore.get({label} {str(raw)[:20]!r})", _getter(store, key))
    yield _classify("SQLiteStore.scan over raw values", lambda: list(store.scan("raw")))


def _getter(store: Any, key: str) -> Callable[[], Any]:
    return lambda: store.get(key)


def _sqlite_value_table(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        names = [
            str(row[0])
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
    return names[0]


def _write_raw(path: Path, table: str, key: str, raw: Any) -> None:
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        row = connection.execute(f"SELECT * FROM {table} LIMIT 1").fetchone()
        values = dict(zip(columns, row, strict=True))
        values[columns[0]] = key
        value_column = next(c for c in columns if c in ("value", "v", "data"))
        values[value_column] = raw
        marks = ", ".join("?" for _ in columns)
        connection.execute(
            f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [values[c] for c in columns],
        )


# ------------------------------------------------------------------ the commands


def run_cli(argv: list[str], stdin: bytes | None = None) -> tuple[int | None, str, str, Any]:
    """(exit code, stdout, stderr, escaped exception) of `tokenopt argv` in this process."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    escaped: Any = None
    code: int | None = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except BaseException as exc:  # an escape is what the probe looks for
                escaped = exc
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue(), escaped


_EVENT = {
    "run_id": "r1",
    "agent": "a",
    "model": "gpt-4o",
    "input_tokens": 10,
    "cost_usd": "0.0001",
    "started_at": "2025-01-01T00:00:00+00:00",
}


def _event(**changes: Any) -> str:
    return json.dumps({**_EVENT, **changes})


#: (name, file text, commands that accept it: every other command must refuse it with 2)
CLI_FILES: list[tuple[str, str, tuple[str, ...]]] = [
    ("deep JSON list", "[" * DEEP + "]" * DEEP, ()),
    ("deep JSON object", '{"a":' * DEEP + "1" + "}" * DEEP, ()),
    ("unknown role", '[{"role": "robot", "content": "hi"}]', ()),
    ("non-string content", '[{"role": "user", "content": 5}]', ()),
    (
        "invalid tool-call arguments",
        '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "", "tool_calls": '
        '[{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]',
        (),
    ),
    ("5,000-digit integer", '[{"role": "user", "content": "hi", "n": ' + "9" * 5000 + "}]", ()),
    ("malformed JSON", '[{"role": "user", "content": "hi"', ()),
    ("not UTF-8", "\udcff", ()),
    ("timestamp out of range", _event(started_at="9999-12-31T23:59:59-05:00"), ()),
    ("timestamp not ISO", _event(started_at="yesterday"), ()),
    ("sNaN cost", _event(cost_usd="sNaN"), ()),
    ("1e999999999 cost", _event(cost_usd="1e999999999"), ()),
    ("NaN cost", _event(cost_usd="NaN"), ()),
    ("NaN literal cost", _event().replace('"0.0001"', "NaN"), ()),
    ("Infinity cost", _event(cost_usd="Infinity"), ()),
    ("negative cost", _event(cost_usd="-1"), ()),
    ("tiny cost with 900,000 zeros", _event(cost_usd="1e-900000"), ()),
    ("cache_hit yes", _event(cache_hit="yes"), ()),
    ("negative tokens", _event(input_tokens=-5), ()),
    ("huge tokens", _event(input_tokens=10**40), ()),
    ("latency NaN", _event().replace("}", ', "latency_seconds": NaN}'), ()),
    ("model a number", _event(model=5), ()),
    ("empty file", "", ("count", "report")),
    ("a JSON string", '"hello"', ("count",)),
    ("a list of numbers", "[1, 2, 3]", ()),
]

#: Files every command must accept (exit 0).
CLI_GOOD: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "a chat",
        '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]',
        ("count", "analyze"),
    ),
    ("plain text", "Just some notes.\nNothing to parse.", ("count",)),
    ("events", _event() + "\n" + _event(run_id="r2"), ("report",)),
]


def _write(workdir: Path, name: str, text: str) -> Path:
    path = workdir / (name.replace(" ", "_").replace(",", "").replace("/", "_") + ".json")
    if text == "\udcff":
        path.write_bytes(b"\xff\xfe\x00bad")
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _cli_case(
    name: str,
    argv: list[str],
    *,
    expect: int,
    stdin: bytes | None = None,
    stderr_has: str | None = None,
) -> Outcome:
    status, value = _run_with_timeout(lambda: run_cli(argv, stdin), CASE_TIMEOUT_SECONDS * 3)
    label = f"tokenopt {' '.join(a if len(a) < 40 else a[:37] + '...' for a in argv)} [{name}]"
    if status == "hang":
        return Outcome(label, "hang")
    if status == "raised":
        return Outcome(label, "traceback", f"{type(value).__name__}: {value}")
    code, _out, err, escaped = value
    if escaped is not None and not (isinstance(escaped, SystemExit) and escaped.code in (0, 2)):
        return Outcome(label, "traceback", f"{type(escaped).__name__}: {escaped}")
    if "Traceback" in err:
        return Outcome(label, "traceback", err[-300:])
    if code == 1:  # the catch-all: a bug, not bad input
        return Outcome(label, "untyped", err.strip()[:300])
    if code != expect:
        verdict = "accepted" if code == 0 else "loss"
        return Outcome(label, verdict, f"exit {code}, expected {expect}: {err.strip()[:200]}")
    if code == 2 and len(err.strip().splitlines()) != 1 and "usage:" not in err:
        return Outcome(label, "traceback", f"not one line: {err[:300]}")
    if stderr_has is not None and stderr_has not in err:
        return Outcome(label, "loss", f"stderr lacks {stderr_has!r}: {err[:200]}")
    return Outcome(label, "typed" if code == 2 else "ok", err.strip()[:160])


def cli_cases(workdir: Path) -> Iterator[Outcome]:
    """Every command on hostile files, on stdin, and with hostile options."""
    commands = ("count", "analyze", "report")
    for name, text, accepted_by in CLI_FILES:
        path = _write(workdir, name, text)
        for command in commands:
            expect = 0 if command in accepted_by else 2
            yield _cli_case(name, [command, str(path)], expect=expect)
        data = path.read_bytes()
        for command in ("count", "analyze"):
            expect = 0 if command in accepted_by else 2
            yield _cli_case(f"{name} on stdin", [command, "-"], expect=expect, stdin=data)
    for name, text, accepted_by in CLI_GOOD:
        path = _write(workdir, name, text)
        for command in accepted_by:
            yield _cli_case(name, [command, str(path)], expect=0)
    events = _write(
        workdir,
        "mixed events",
        "\n".join(
            [_event(), _event(cost_usd="NaN"), _event(cache_hit="yes"), "[" * DEEP, _event()]
        ),
    )
    yield _cli_case(
        "report --skip-invalid",
        ["report", str(events), "--skip-invalid"],
        expect=0,
        stderr_has="skipped 3 invalid entries",
    )
    yield _cli_case("report without --skip-invalid", ["report", str(events)], expect=2)
    chat = _write(
        workdir,
        "mixed chat",
        "\n".join(
            [
                '{"role": "user", "content": "hi"}',
                '{"role": "robot", "content": "x"}',
                '{"role": "assistant", "content": "hello"}',
            ]
        ),
    )
    yield _cli_case(
        "analyze --skip-invalid",
        ["analyze", str(chat), "--skip-invalid"],
        expect=0,
        stderr_has="skipped 1 invalid entry",
    )
    good_chat = _write(workdir, "good chat", CLI_GOOD[0][1])
    good_events = _write(workdir, "good events", CLI_GOOD[2][1])
    missing = str(workdir / "no_such_folder" / "chart.png")
    a_folder = str(workdir)
    option_cases: list[tuple[str, list[str], int]] = [
        ("--plot in a missing folder", ["report", str(good_events), "--plot", missing], 2),
        ("--plot a folder", ["report", str(good_events), "--plot", a_folder], 2),
        ("analyze --plot in a missing folder", ["analyze", str(good_chat), "--plot", missing], 2),
        ("--similarity nan", ["analyze", str(good_chat), "--similarity", "nan"], 2),
        ("--similarity inf", ["analyze", str(good_chat), "--similarity", "inf"], 2),
        ("--max-tokens -5", ["analyze", str(good_chat), "--max-tokens", "-5"], 2),
        ("--max-tokens huge", ["analyze", str(good_chat), "--max-tokens", "9" * 5000], 2),
        ("--sessions 0", ["demo", "--sessions", "0"], 2),
        ("--sessions 10**9", ["demo", "--sessions", "1000000000"], 2),
        ("--timezone Mars", ["report", str(good_events), "--timezone", "Mars/Olympus"], 2),
        ("--encoding bogus", ["count", str(good_chat), "--encoding", "bogus"], 2),
        ("--model empty", ["count", str(good_chat), "--model", ""], 2),
        ("missing file", ["count", str(workdir / "absent.json")], 2),
        ("a folder as file", ["count", a_folder], 2),
        ("unknown command", ["frobnicate"], 2),
        ("no command", [], 2),
        ("count --text on JSON", ["count", str(good_chat), "--text"], 0),
    ]
    for name, argv, expect in option_cases:
        yield _cli_case(name, argv, expect=expect)
    plot_to = workdir / "chart"
    outcome = _cli_case(
        "--plot without suffix", ["report", str(good_events), "--plot", str(plot_to)], expect=0
    )
    if outcome.verdict == "ok" and not (workdir / "chart.png").exists():
        outcome = Outcome(outcome.case, "loss", "chart.png was not written")
    elif outcome.verdict == "ok" and "chart.png" not in outcome.detail:
        outcome = Outcome(outcome.case, "loss", f"says {outcome.detail!r}, wrote chart.png")
    yield outcome


# ------------------------------------------------------------------------ main


def probe(
    verbose: bool = False, *, api: bool = True, cli: bool = True, pending_stored: bool = False
) -> Counter[str]:
    """Run every case; print failures (and every case when verbose); return the counts."""
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        groups: list[Iterator[Outcome]] = []
        if api:
            groups += [api_cases(), crafted_cases(workdir)]
        if cli:
            groups.append(cli_cases(workdir))
        for group in groups:
            for outcome in group:
                if pending_stored and outcome.case.startswith(STORED_DATA_CASES):
                    if outcome.verdict in FAILURES:
                        outcome = Outcome(outcome.case, "pending", outcome.detail)
                    else:
                        outcome = Outcome(outcome.case, "unpended", "passes now: drop the mark")
                counts[outcome.verdict] += 1
                if verbose or outcome.verdict in (*FAILURES, "pending", "unpended"):
                    detail = " ".join(outcome.detail.split())
                    print(f"{outcome.verdict:9} {outcome.case}: {detail}")
    return counts


def main_probe(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    parser.add_argument("--only", choices=("api", "cli"), default=None)
    parser.add_argument(
        "--pending-stored",
        action="store_true",
        help="count stored-data decoding failures as pending (fixed in the other half)",
    )
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    counts = probe(
        args.verbose,
        api=args.only != "cli",
        cli=args.only != "api",
        pending_stored=args.pending_stored,
    )
    total = sum(counts.values())
    shown = ("ok", "typed", *FAILURES, *(("pending", "unpended") if args.pending_stored else ()))
    figures = ", ".join(f"{counts[v]} {v}" for v in shown)
    print(f"{total} cases: {figures}")
    return 0 if not any(counts[v] for v in FAILURES) else 1


if __name__ == "__main__":
    sys.exit(main_probe())
