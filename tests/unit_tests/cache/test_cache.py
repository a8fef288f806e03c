"""`TokenOptCache` on the memory and SQLite stores: keys, serialization, TTL, LRU, stats.

Models are langchain-core's `GenericFakeChatModel`: it answers from an iterator, so a
call that reaches the model consumes the next answer and a cache hit does not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.prompts import PromptTemplate

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.stats import CacheStats
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError
from langchain_tokenopt.stores import MemoryStore, SQLiteStore, Store

ENTRY_PREFIX = "tokenopt:cache:e:"
NOT_CALLED = "the model was called although the answer was cached"


class FakeClock:
    """A clock that moves only when told to (for store TTLs)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class ScanCountingStore(MemoryStore):
    """A real MemoryStore that counts how often it is scanned."""

    def __init__(self) -> None:
        super().__init__()
        self.scans = 0

    def scan(self, prefix: str) -> Iterator[tuple[str, Any]]:
        self.scans += 1
        return super().scan(prefix)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(tmp_path / "cache.db")


def usage(input_tokens: int, output_tokens: int, cache_read: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "input_token_details": {"cache_read": cache_read},
    }


def answer(text: str, model: str = "gpt-4o", **tokens: int) -> AIMessage:
    return AIMessage(
        content=text,
        usage_metadata=usage(**tokens) if tokens else None,
        response_metadata={"model_name": model},
    )


def fake_model(cache: TokenOptCache, *answers: AIMessage) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([*answers, AIMessage(NOT_CALLED)]), cache=cache)


def entry_keys(store: Store) -> list[str]:
    return [key for key, _ in store.scan(ENTRY_PREFIX)]


def chat_prompt(text: str) -> str:
    return dumps([HumanMessage(text)])


# -- keys -----------------------------------------------------------------------


def test_second_identical_call_is_answered_from_the_cache(store: Store) -> None:
    cache = TokenOptCache(store)
    model = fake_model(cache, answer("Paris"))
    first = model.invoke("Capital of France?")
    second = model.invoke("Capital of France?")
    assert first.content == second.content == "Paris"


def test_different_stop_or_call_parameters_are_different_entries(store: Store) -> None:
    cache = TokenOptCache(store)
    model = fake_model(cache, answer("one"), answer("two"), answer("three"))
    assert model.invoke("q").content == "one"
    assert model.invoke("q", stop=["\n"]).content == "two"
    assert model.invoke("q", temperature=0.9).content == "three"
    assert model.invoke("q").content == "one"
    assert len(entry_keys(store)) == 3


def test_different_prompts_are_different_entries(store: Store) -> None:
    cache = TokenOptCache(store)
    cache.update("prompt a", "llm", [Generation(text="a")])
    cache.update("prompt b", "llm", [Generation(text="b")])
    assert cache.lookup("prompt a", "llm") == [Generation(text="a")]
    assert cache.lookup("prompt b", "llm") == [Generation(text="b")]
    assert cache.lookup("prompt a", "other llm") is None


def test_namespaces_share_nothing(store: Store) -> None:
    first = TokenOptCache(store, namespace="app1")
    second = TokenOptCache(store, namespace="app2")
    first.update("p", "llm", [Generation(text="from app1")])
    assert second.lookup("p", "llm") is None
    second.update("p", "llm", [Generation(text="from app2")])
    second.clear()
    assert first.lookup("p", "llm") == [Generation(text="from app1")]


# -- serialization ----------------------------------------------------------------


def test_entries_are_langchain_json_not_pickle(store: Store) -> None:
    cache = TokenOptCache(store)
    message = AIMessage(
        content="Paris",
        tool_calls=[{"name": "lookup", "args": {"city": "Paris"}, "id": "c1"}],
        usage_metadata=usage(10, 2),
    )
    cache.update("p", "llm", [ChatGeneration(message=message)])
    (raw,) = [value for _, value in store.scan(ENTRY_PREFIX)]
    json.dumps(raw)  # plain JSON all the way down
    revived = json.loads(raw["g"])
    assert revived[0]["lc"] == 1 and revived[0]["id"][-1] == "ChatGeneration"
    replayed = cache.lookup("p", "llm")
    assert replayed is not None
    assert replayed[0].message.tool_calls == message.tool_calls  # type: ignore[attr-defined]
    assert replayed[0].message.usage_metadata == message.usage_metadata  # type: ignore[attr-defined]


def garbage_entries() -> list[Any]:
    prompt_template = dumps([PromptTemplate.from_template("{x}")])
    foreign_class = json.dumps(
        [
            {
                "lc": 1,
                "type": "constructor",
                "id": ["langchain_community", "llms", "Foo"],
                "kwargs": {},
            }
        ]
    )
    return [
        "garbage",
        ["not", "an", "entry"],
        {"v": 1, "g": "{not json"},
        {"v": 1, "g": 42},
        {"v": 99, "g": dumps([Generation(text="from a future version")])},
        {"v": 1, "g": prompt_template},
        {"v": 1, "g": foreign_class},
        {"v": 1, "g": json.dumps({"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]})},
        {"v": 1, "g": dumps(AIMessage("a message, not a list of generations"))},
    ]


@pytest.mark.parametrize("garbage", garbage_entries())
def test_corrupt_or_foreign_entry_is_a_miss_deleted_and_logged(
    store: Store, garbage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache(store)
    cache.update("p", "llm", [Generation(text="good")])
    (key,) = entry_keys(store)
    store.set(key, garbage)
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.cache.llm_cache"):
        assert cache.lookup("p", "llm") is None
    assert store.get(key) is None
    assert any(key.rsplit(":", 1)[1] in r.getMessage() for r in caplog.records)
    cache.update("p", "llm", [Generation(text="good again")])
    assert cache.lookup("p", "llm") == [Generation(text="good again")]
    assert cache.stats().misses == 1


def test_a_disallowed_class_is_refused_before_it_is_built(store: Store) -> None:
    cache = TokenOptCache(store)
    cache.update("p", "llm", [Generation(text="good")])
    (key,) = entry_keys(store)
    template = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "prompts", "prompt", "PromptTemplate"],
        "kwargs": {"template": "{{ x }}", "input_variables": ["x"], "template_format": "jinja2"},
    }
    store.set(key, {"v": 1, "g": json.dumps([template])})
    assert cache.lookup("p", "llm") is None


def test_a_response_that_cannot_be_serialized_is_not_cached(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache(store)
    unserializable = Generation(text="x", generation_info={"handle": object()})
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.cache.llm_cache"):
        cache.update("p", "llm", [unserializable])
    assert entry_keys(store) == []
    assert "Not caching" in caplog.text


def test_hits_are_fresh_copies(store: Store) -> None:
    cache = TokenOptCache(store)
    cache.update("p", "llm", [ChatGeneration(message=answer("original"))])
    first = cache.lookup("p", "llm")
    assert first is not None
    first[0].message.content = "changed by the caller"  # type: ignore[attr-defined]
    second = cache.lookup("p", "llm")
    assert second is not None and second[0].text == "original"


def test_hits_share_no_nested_state_with_each_other(store: Store) -> None:
    """Every nested dict and list of a hit is its own: mutating one never leaks."""
    message = AIMessage(
        content=[{"type": "text", "text": "Paris"}],
        tool_calls=[{"name": "lookup", "args": {"city": "Paris"}, "id": "call_1"}],
        usage_metadata=usage(10, 2),
        response_metadata={"model_name": "gpt-4o", "logprobs": {"tokens": ["Paris"]}},
        additional_kwargs={"refusal": None, "extra": [1, 2]},
    )
    cache = TokenOptCache(store)
    cache.update("p", "llm", [ChatGeneration(message=message, generation_info={"k": [1]})])
    first = cache.lookup("p", "llm")
    assert first is not None
    hit = first[0]
    assert isinstance(hit, ChatGeneration) and isinstance(hit.message, AIMessage)
    hit.message.content[0]["text"] = "changed"  # type: ignore[index]
    hit.message.tool_calls[0]["args"]["city"] = "changed"
    hit.message.response_metadata["logprobs"]["tokens"].append("changed")
    hit.message.additional_kwargs["extra"].append(3)
    assert hit.message.usage_metadata is not None
    hit.message.usage_metadata["input_tokens"] = 999
    assert hit.generation_info is not None
    hit.generation_info["k"].append(2)
    second = cache.lookup("p", "llm")
    assert second is not None
    again = second[0]
    assert isinstance(again, ChatGeneration) and isinstance(again.message, AIMessage)
    assert again.message.content == [{"type": "text", "text": "Paris"}]
    assert again.message.tool_calls[0]["args"] == {"city": "Paris"}
    assert again.message.response_metadata["logprobs"] == {"tokens": ["Paris"]}
    assert again.message.additional_kwargs["extra"] == [1, 2]
    assert again.message.usage_metadata is not None
    assert again.message.usage_metadata["input_tokens"] == 10
    assert again.generation_info == {"k": [1]}


# -- hit marker ---------------------------------------------------------------------


def test_replayed_messages_are_marked_as_cache_hits(store: Store) -> None:
    cache = TokenOptCache(store)
    model = fake_model(cache, answer("Paris", input_tokens=20, output_tokens=3))
    miss = model.invoke("Capital of France?")
    hit = model.invoke("Capital of France?")
    assert CACHE_HIT_KEY not in miss.response_metadata
    assert hit.response_metadata[CACHE_HIT_KEY] is True
    # langchain-core's own marker: the original usage, plus total_cost 0.
    assert hit.usage_metadata is not None
    assert hit.usage_metadata["input_tokens"] == 20
    assert hit.usage_metadata["total_cost"] == 0  # type: ignore[typeddict-item]
    (raw,) = [value for _, value in store.scan(ENTRY_PREFIX)]
    assert CACHE_HIT_KEY not in raw["g"]  # the marker is added on replay, never stored


def test_plain_generations_come_back_equal(store: Store) -> None:
    cache = TokenOptCache(store)
    generations = [Generation(text="a", generation_info={"reason": "x"}), Generation(text="b")]
    cache.update("p", "llm", generations)
    assert cache.lookup("p", "llm") == generations


# -- TTL ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_entries_expire_after_ttl_seconds(backend: str, tmp_path: Path) -> None:
    clock = FakeClock()
    store: Store = (
        MemoryStore(time_func=clock)
        if backend == "memory"
        else SQLiteStore(tmp_path / "ttl.db", time_func=clock)
    )
    cache = TokenOptCache(store, ttl_seconds=60)
    cache.update("p", "llm", [Generation(text="fresh")])
    clock.now += 59
    assert cache.lookup("p", "llm") == [Generation(text="fresh")]
    clock.now += 2
    assert cache.lookup("p", "llm") is None
    assert cache.stats().entries == 0


# -- LRU ----------------------------------------------------------------------------


def test_lru_bound_evicts_the_least_recently_used_entry(store: Store) -> None:
    cache = TokenOptCache(store, max_entries=3)
    for name in ("a", "b", "c"):
        cache.update(name, "llm", [Generation(text=name)])
    assert cache.lookup("a", "llm") is not None  # "a" is now more recent than "b"
    cache.update("d", "llm", [Generation(text="d")])
    assert cache.lookup("b", "llm") is None
    for name in ("a", "c", "d"):
        assert cache.lookup(name, "llm") == [Generation(text=name)]
    assert cache.stats().entries == 3


def test_lru_bound_holds_while_many_entries_arrive(store: Store) -> None:
    cache = TokenOptCache(store, max_entries=50)
    for i in range(300):
        cache.update(f"p{i}", "llm", [Generation(text=str(i))])
        assert len(entry_keys(store)) <= 50
    newest = [cache.lookup(f"p{i}", "llm") for i in range(300 - 45, 300)]
    assert all(found is not None for found in newest)


def test_eviction_scans_are_amortized_not_per_insert() -> None:
    store = ScanCountingStore()
    cache = TokenOptCache(store, max_entries=100)
    for i in range(1000):
        cache.update(f"p{i}", "llm", [Generation(text=str(i))])
    # One scan per eviction pass; a pass frees 10% of the bound, so about 1000 / 10.
    assert store.scans <= 100
    assert len(entry_keys(store)) <= 100


def test_lru_counts_entries_across_cache_instances_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    writer_a = TokenOptCache.sqlite(str(path), max_entries=20)
    writer_b = TokenOptCache.sqlite(str(path), max_entries=20)
    for i in range(40):
        writer = writer_a if i % 2 else writer_b
        writer.update(f"p{i}", "llm", [Generation(text=str(i))])
    assert writer_a.stats().entries <= 20


# -- statistics -----------------------------------------------------------------------


def test_stats_count_hits_misses_and_savings_from_each_responses_usage(store: Store) -> None:
    cache = TokenOptCache(store)
    big = answer("long answer", model="gpt-4o", input_tokens=1000, output_tokens=500)
    small = answer(
        "short", model="gpt-4o-mini", input_tokens=2000, output_tokens=10, cache_read=1024
    )
    model_big = fake_model(cache, big)
    model_small = fake_model(cache, small)
    for _ in range(3):
        model_big.invoke("write an essay")
    for _ in range(2):
        model_small.invoke("summarize this")
    stats = cache.stats()
    assert isinstance(stats, CacheStats)
    assert (stats.hits, stats.misses, stats.entries) == (3, 2, 2)
    assert stats.hit_rate == pytest.approx(3 / 5)
    assert stats.saved_input_tokens == 2 * 1000 + 1 * 2000
    assert stats.saved_output_tokens == 2 * 500 + 1 * 10
    big_usd = price("gpt-4o", big.usage_metadata or {})
    small_usd = price("gpt-4o-mini", small.usage_metadata or {})
    assert stats.by_model["gpt-4o"].saved_usd == 2 * big_usd
    assert stats.by_model["gpt-4o-mini"].saved_usd == small_usd
    assert stats.saved_usd == 2 * big_usd + small_usd
    assert isinstance(stats.saved_usd, Decimal)
    assert stats.by_model["gpt-4o"].hits == 2


def test_model_comes_from_the_llm_string_when_the_response_does_not_name_it(
    store: Store,
) -> None:
    cache = TokenOptCache(store)
    message = AIMessage("ok", usage_metadata=usage(100, 10))
    llm_string = "[('_type', 'fake'), ('model', 'gpt-4o-mini'), ('stop', None)]"
    cache.update("p", llm_string, [ChatGeneration(message=message)])
    cache.lookup("p", llm_string)
    stats = cache.stats()
    assert stats.by_model["gpt-4o-mini"].saved_usd == price("gpt-4o-mini", usage(100, 10))


def test_hits_of_an_unpriced_model_count_tokens_but_no_dollars(store: Store) -> None:
    cache = TokenOptCache(store)
    message = answer("ok", model="my-own-llama", input_tokens=100, output_tokens=10)
    cache.update("p", "llm", [ChatGeneration(message=message)])
    cache.lookup("p", "llm")
    stats = cache.stats().by_model["my-own-llama"]
    assert (stats.hits, stats.saved_input_tokens, stats.unpriced_hits) == (1, 100, 1)
    assert stats.saved_usd == 0


def test_stats_are_shared_by_caches_on_one_store(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    first = TokenOptCache.sqlite(path)
    second = TokenOptCache.sqlite(path)
    first.update(
        "p", "llm", [ChatGeneration(message=answer("x", input_tokens=10, output_tokens=1))]
    )
    for _ in range(2):
        first.lookup("p", "llm")
    for _ in range(3):
        second.lookup("p", "llm")
    second.lookup("missing", "llm")
    second.flush()
    stats = first.stats()
    assert (stats.hits, stats.misses, stats.saved_input_tokens) == (5, 1, 50)


def test_counters_reach_the_store_at_once_with_a_zero_flush_interval(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    writer = TokenOptCache.sqlite(path, flush_interval_seconds=0)
    reader = TokenOptCache.sqlite(path)
    writer.update("p", "llm", [Generation(text="x")])
    writer.lookup("p", "llm")
    assert reader.stats().hits == 1


def test_clear_drops_entries_but_keeps_statistics_until_reset(store: Store) -> None:
    cache = TokenOptCache(store)
    cache.update("p", "llm", [ChatGeneration(message=answer("x", input_tokens=7, output_tokens=1))])
    cache.lookup("p", "llm")
    cache.clear()
    assert cache.lookup("p", "llm") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.saved_input_tokens) == (1, 1, 0, 7)
    cache.reset_stats()
    assert cache.stats() == CacheStats(0, 0, 0, 0, 0, 0, Decimal(0), {})


# -- async --------------------------------------------------------------------------


async def test_async_methods_share_entries_and_stats_with_sync_ones(store: Store) -> None:
    cache = TokenOptCache(store, ttl_seconds=3600, max_entries=10)
    await cache.aupdate(
        "p", "llm", [ChatGeneration(message=answer("async", input_tokens=5, output_tokens=1))]
    )
    found = cache.lookup("p", "llm")
    assert found is not None and found[0].text == "async"
    cache.update("q", "llm", [Generation(text="sync")])
    assert await cache.alookup("q", "llm") == [Generation(text="sync")]
    assert await cache.alookup("missing", "llm") is None
    stats = await cache.astats()
    assert (stats.hits, stats.misses, stats.entries, stats.saved_input_tokens) == (2, 1, 2, 5)
    await cache.aclear()
    assert await cache.alookup("p", "llm") is None


async def test_async_model_calls_use_the_cache(store: Store) -> None:
    cache = TokenOptCache(store)
    model = fake_model(cache, answer("Paris"))
    await model.ainvoke("Capital of France?")
    hit = await model.ainvoke("Capital of France?")
    assert hit.content == "Paris" and hit.response_metadata[CACHE_HIT_KEY] is True


async def test_async_lru_bound_evicts(store: Store) -> None:
    cache = TokenOptCache(store, max_entries=3)
    for name in ("a", "b", "c"):
        await cache.aupdate(name, "llm", [Generation(text=name)])
    await cache.alookup("a", "llm")
    await cache.aupdate("d", "llm", [Generation(text="d")])
    assert await cache.alookup("b", "llm") is None
    assert await cache.alookup("a", "llm") is not None


# -- arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl_seconds": 0},
        {"ttl_seconds": -5},
        {"ttl_seconds": float("inf")},
        {"ttl_seconds": float("nan")},
        {"ttl_seconds": 1e300},
        {"max_entries": 0},
        {"similarity_threshold": 0},
        {"similarity_threshold": 1.5},
        {"similarity_threshold": float("nan")},
        {"namespace": ""},
        {"flush_interval_seconds": -1},
    ],
)
def test_bad_arguments_raise_a_clear_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError, match=next(iter(kwargs))):
        TokenOptCache(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_entries": 2.5},  # was a ValueError before the argument types were checked
        {"store": "x"},
        {"ttl_seconds": "60"},
        {"namespace": 3},
        {"price_table": {}},
    ],
)
def test_arguments_of_the_wrong_type_raise_a_clear_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ArgumentTypeError, match=next(iter(kwargs))):
        TokenOptCache(**kwargs)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.lookup(None, "llm"),
        lambda c: c.lookup("p", None),
        lambda c: c.update("p", "llm", "not generations"),
        lambda c: c.update("p", "llm", [None]),
    ],
)
def test_lookup_and_update_refuse_wrong_types_before_touching_the_store(call: Any) -> None:
    cache = TokenOptCache()
    with pytest.raises(ArgumentTypeError):
        call(cache)
    assert cache.stats().misses == 0


def test_chat_prompts_for_the_standard_suite_shape(store: Store) -> None:
    cache = TokenOptCache(store)
    prompt = chat_prompt("hello")
    cache.update(prompt, "llm", [ChatGeneration(message=AIMessage("hi"))])
    found = cache.lookup(prompt, "llm")
    assert isinstance(found, list) and found[0].text == "hi"
