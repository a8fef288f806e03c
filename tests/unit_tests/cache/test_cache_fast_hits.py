"""Fast hits: decoded entries kept with the entry, one independent copy per hit.

`FrozenGenerations` shares immutable values, copies flat containers and rebuilds
nested ones with `marshal`, and builds models as pydantic's `__copy__` does
(docs/internals.md): pinned here against `model_copy(deep=True)`, with its fallback.
A `MemoryStore` keeps the decoded entry with the stored value, so an entry replaced,
expired, evicted or cleared is never served from it; other stores' entries are
recognised by the stored text.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation
from pydantic import BaseModel

from langchain_tokenopt.cache import llm_cache, serialization
from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.serialization import FrozenGenerations
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.stores import MemoryStore
from tests.unit_tests.cache.test_cache import FakeClock, entry_keys


class Parsed(BaseModel):
    city: str


GENERATIONS: dict[str, list[Generation]] = {
    "chat": [
        ChatGeneration(
            message=AIMessage(
                content=[{"type": "text", "text": "Paris"}],
                tool_calls=[{"name": "f", "args": {"x": [1, 2]}, "id": "c1"}],
                usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
                response_metadata={"logprobs": {"tokens": ["Paris"]}, "inf": float("inf")},
                additional_kwargs={"refusal": None},
                id="run-1",
            ),
            generation_info={"finish_reason": "stop"},
        )
    ],
    "chunk": [ChatGenerationChunk(message=AIMessageChunk(content="partial", id="c"))],
    "text": [Generation(text="plain", generation_info={"logprobs": [0.1]})],
    "extra field": [ChatGeneration(message=AIMessage("x", custom_extra={"k": [1]}))],
    # Extra names are data, never source of the compiled copy.
    "odd extra names": [
        ChatGeneration(message=AIMessage("x", **{"a'b": {"c": 1}, 'x"): 1#': None}))
    ],
    "two generations": [
        ChatGeneration(message=AIMessage("one", id="a")),
        ChatGeneration(message=AIMessage("two", response_metadata={"n": [1, {"m": 2}]})),
    ],
}


@pytest.mark.parametrize("name", GENERATIONS)
def test_a_thawed_copy_equals_a_pydantic_deep_copy(name: str) -> None:
    """Pins the pydantic model layout `FrozenGenerations` builds (docs/internals.md)."""
    original = GENERATIONS[name]
    copies = FrozenGenerations(original).thaw()
    assert len(copies) == len(original)
    for thawed, deep in zip(copies, [g.model_copy(deep=True) for g in original], strict=True):
        assert type(thawed) is type(deep)
        assert dumps(thawed) == dumps(deep)
        assert thawed == deep
        assert thawed.model_fields_set == deep.model_fields_set
        message = getattr(thawed, "message", None)
        if message is not None:
            assert message.model_fields_set == deep.message.model_fields_set  # type: ignore[attr-defined]
            assert message.__pydantic_extra__ == deep.message.__pydantic_extra__  # type: ignore[attr-defined]


def test_thawed_copies_share_no_mutable_state() -> None:
    frozen = FrozenGenerations(GENERATIONS["chat"])
    first, second = frozen.thaw()[0], frozen.thaw()[0]
    assert isinstance(first, ChatGeneration) and isinstance(second, ChatGeneration)
    assert isinstance(first.message, AIMessage) and isinstance(second.message, AIMessage)
    first.message.response_metadata["logprobs"]["tokens"].append("changed")
    first.message.tool_calls[0]["args"]["x"].append(3)
    first.generation_info["finish_reason"] = "changed"  # type: ignore[index]
    assert second.message.response_metadata["logprobs"]["tokens"] == ["Paris"]
    assert second.message.tool_calls[0]["args"]["x"] == [1, 2]
    assert second.generation_info == {"finish_reason": "stop"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
JSON_DICTS = st.dictionaries(st.text(), JSON_VALUES, max_size=4)


def mutate_everything(value: Any) -> None:
    """Change every dict and list reachable from `value`, in place."""
    if isinstance(value, dict):
        for item in list(value.values()):
            mutate_everything(item)
        value["mutated by the caller"] = True
    elif isinstance(value, list):
        for item in value:
            mutate_everything(item)
        value.append("mutated by the caller")


@settings(max_examples=60, deadline=None)
@given(JSON_DICTS, JSON_DICTS, st.none() | JSON_DICTS, st.text())
def test_any_json_fields_copy_equal_and_independent(
    response_metadata: dict[str, Any],
    additional_kwargs: dict[str, Any],
    generation_info: dict[str, Any] | None,
    content: str,
) -> None:
    message = AIMessage(
        content, response_metadata=response_metadata, additional_kwargs=additional_kwargs
    )
    original = ChatGeneration(message=message, generation_info=generation_info)
    frozen = FrozenGenerations([original])
    expected = copy.deepcopy(original)
    first = frozen.thaw()[0]
    assert first == expected and first.model_fields_set == expected.model_fields_set
    assert isinstance(first, ChatGeneration)
    mutate_everything(first.message.response_metadata)
    mutate_everything(first.message.additional_kwargs)
    mutate_everything(first.generation_info)
    first.message.content = "changed"
    assert frozen.thaw()[0] == expected


def test_a_value_marshal_cannot_copy_falls_back_to_deep_copies() -> None:
    message = AIMessage("x", additional_kwargs={"parsed": Parsed(city="Paris")})
    frozen = FrozenGenerations([ChatGeneration(message=message)])
    first, second = frozen.thaw()[0], frozen.thaw()[0]
    assert isinstance(first, ChatGeneration) and isinstance(second, ChatGeneration)
    first.message.additional_kwargs["parsed"].city = "Rome"
    assert second.message.additional_kwargs["parsed"] == Parsed(city="Paris")


def answer(text: str) -> list[Generation]:
    return [ChatGeneration(message=AIMessage(text))]


def test_a_replaced_entry_is_never_served_from_the_memo() -> None:
    store = MemoryStore()
    cache, other = TokenOptCache(store), TokenOptCache(store)
    cache.update("p", "llm", answer("first"))
    assert cache.lookup("p", "llm")[0].text == "first"  # type: ignore[index]
    other.update("p", "llm", answer("second"))  # another cache on the same store
    assert cache.lookup("p", "llm")[0].text == "second"  # type: ignore[index]


def test_an_expired_or_cleared_entry_is_a_miss_despite_the_memo() -> None:
    clock = FakeClock()
    cache = TokenOptCache(MemoryStore(time_func=clock), ttl_seconds=10)
    cache.update("p", "llm", answer("a"))
    assert cache.lookup("p", "llm") is not None
    clock.now += 11
    assert cache.lookup("p", "llm") is None
    cache.update("p", "llm", answer("b"))
    cache.clear()
    assert cache.lookup("p", "llm") is None


@pytest.mark.asyncio
async def test_async_hits_come_from_the_memo_too() -> None:
    cache = TokenOptCache(ttl_seconds=60, max_entries=10)
    await cache.aupdate("p", "llm", answer("a"))
    hits: list[Any] = [await cache.alookup("p", "llm") for _ in range(3)]
    assert [h[0].text for h in hits] == ["a", "a", "a"]
    assert all(h[0].message.response_metadata[CACHE_HIT_KEY] for h in hits)
    assert hits[0][0] is not hits[1][0]
    assert (await cache.astats()).hits == 3


def test_a_model_layout_the_copy_does_not_know_falls_back_to_deep_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If pydantic kept state the thaw does not rebuild, copies must stay complete."""
    from langchain_tokenopt.cache import serialization

    real_freeze = serialization._freeze

    def incomplete(model: Any) -> Any:
        copy = real_freeze(model)

        def copy_missing_fields() -> Any:
            made = copy()
            object.__setattr__(made, "__dict__", {})  # state the copy failed to rebuild
            return made

        return copy_missing_fields

    monkeypatch.setattr(serialization, "_freeze", incomplete)
    frozen = FrozenGenerations(GENERATIONS["chat"])
    (copy,) = frozen.thaw()
    assert copy == GENERATIONS["chat"][0] and copy is not GENERATIONS["chat"][0]


def usage_answer(text: str) -> list[Generation]:
    message = AIMessage(
        text,
        usage_metadata={"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100},
        response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
        tool_calls=[{"name": "f", "args": {"x": [1]}, "id": "c1"}],
        id="run-1",
    )
    return [ChatGeneration(message=message, generation_info={"finish_reason": "stop"})]


def bounded_cache(clock: FakeClock | None = None) -> TokenOptCache:
    """A memory cache with TTL, LRU bound and statistics on: the fast hit path."""
    store = MemoryStore() if clock is None else MemoryStore(time_func=clock)
    return TokenOptCache(store, ttl_seconds=3600, max_entries=100, flush_interval_seconds=60)


def scribble_on_hit(hit: Sequence[Generation] | None) -> AIMessage:
    """Change what a caller can reach of a `usage_answer` hit (its message's content,
    metadata, tool call arguments and name, the generation's info); the message, for
    more."""
    assert hit is not None and isinstance(hit[0], ChatGeneration)
    message = hit[0].message
    assert isinstance(message, AIMessage)
    message.content = "changed"
    message.response_metadata["model_name"] = "changed"
    message.tool_calls[0]["args"]["x"].append(2)
    message.name = "set by the caller"  # pydantic adds "name" to this copy's fields set
    hit[0].generation_info["finish_reason"] = "changed"  # type: ignore[index]
    return message


def test_a_caller_mutating_a_hit_does_not_change_the_next_hit() -> None:
    cache = bounded_cache()
    cache.update("p", "llm", usage_answer("Paris"))
    before = cache.lookup("p", "llm")
    assert before is not None and isinstance(before[0], ChatGeneration)
    fields_set = set(before[0].message.model_fields_set)
    assert "name" not in fields_set
    first = cache.lookup("p", "llm")
    message = scribble_on_hit(first)
    message.usage_metadata["input_tokens"] = 0  # type: ignore[index]
    message.tool_calls.append({"name": "g", "args": {}, "id": "c2", "type": "tool_call"})
    message.additional_kwargs["added"] = True
    message.id = "changed"
    first.append(Generation(text="appended"))  # type: ignore[union-attr]
    again = cache.lookup("p", "llm")
    assert again == cache.lookup("p", "llm")
    assert again is not None and len(again) == 1 and isinstance(again[0], ChatGeneration)
    fresh = again[0].message
    assert isinstance(fresh, AIMessage)
    assert (fresh.content, fresh.id) == ("Paris", "run-1")
    assert fresh.response_metadata == {
        "model_name": "gpt-4o-mini",
        "finish_reason": "stop",
        CACHE_HIT_KEY: True,
    }
    assert fresh.usage_metadata == {
        "input_tokens": 1000,
        "output_tokens": 100,
        "total_tokens": 1100,
    }
    assert fresh.tool_calls == [{"name": "f", "args": {"x": [1]}, "id": "c1", "type": "tool_call"}]
    assert fresh.additional_kwargs == {}
    assert again[0].generation_info == {"finish_reason": "stop"}
    assert fresh.name is None and fresh.model_fields_set == fields_set


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets an item each time the cache decodes a stored entry."""
    decoded: list[int] = []
    real = serialization.decode_generations

    def counting(entry: Any) -> list[Generation]:
        decoded.append(1)
        return real(entry)

    monkeypatch.setattr(llm_cache, "decode_generations", counting)
    return decoded


def test_a_memory_entry_is_decoded_once_then_again_only_when_rewritten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded = count_decodes(monkeypatch)
    cache = bounded_cache()
    cache.update("p", "llm", usage_answer("a"))
    for _ in range(5):
        assert cache.lookup("p", "llm") is not None
    assert len(decoded) == 1
    cache.update("p", "llm", usage_answer("b"))
    assert cache.lookup("p", "llm")[0].text == "b"  # type: ignore[index]
    assert cache.lookup("p", "llm")[0].text == "b"  # type: ignore[index]
    assert len(decoded) == 2


def test_fast_hits_are_counted_with_their_savings_before_and_after_a_flush() -> None:
    cache = bounded_cache()
    cache.update("p", "llm", usage_answer("a"))
    cache.update("q", "llm", usage_answer("b"))
    for _ in range(3):
        cache.lookup("p", "llm")
    cache.lookup("q", "llm")
    cache.lookup("unknown", "llm")
    stats = cache.stats()  # flushes the buffered hits
    assert (stats.hits, stats.misses, stats.saved_input_tokens) == (4, 1, 4000)
    assert stats.by_model["gpt-4o-mini"].hits == 4
    assert stats.by_model["gpt-4o-mini"].saved_output_tokens == 400
    cache.lookup("p", "llm")
    assert cache.stats().hits == 5
    cache.lookup("p", "llm")  # buffered, then dropped with the rest
    cache.reset_stats()
    assert (cache.stats().hits, cache.stats().saved_input_tokens) == (0, 0)


def test_fast_hits_record_access_times_with_the_entry_expiry() -> None:
    cache = bounded_cache()
    cache.update("p", "llm", usage_answer("a"))
    assert cache.lookup("p", "llm") is not None
    ((key, (accessed, expires)),) = cache._touches.items()
    entry: Any = cache.store.get(cache._entry_prefix + key)
    assert expires == entry["c"] + 3600 and accessed >= entry["c"]


def test_a_fast_hit_expires_with_the_store_clock() -> None:
    clock = FakeClock()
    cache = bounded_cache(clock)
    cache.update("p", "llm", usage_answer("a"))
    assert cache.lookup("p", "llm") is not None
    clock.now += 3599
    assert cache.lookup("p", "llm") is not None
    clock.now += 2
    assert cache.lookup("p", "llm") is None
    assert entry_keys(cache.store) == []


def test_fast_hits_keep_entries_from_lru_eviction() -> None:
    cache = TokenOptCache(max_entries=10, flush_interval_seconds=60)
    for i in range(10):
        cache.update(f"p{i}", "llm", [Generation(text=str(i))])
    for i in range(5):  # the first five are now the most recently used
        assert cache.lookup(f"p{i}", "llm") is not None
    cache.update("p10", "llm", [Generation(text="10")])  # evicts down to 9
    kept = [i for i in range(11) if cache.lookup(f"p{i}", "llm") is not None]
    assert kept == [0, 1, 2, 3, 4, 7, 8, 9, 10]


def test_an_unreadable_memory_entry_is_a_logged_miss_and_is_deleted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = bounded_cache()
    cache.update("p", "llm", usage_answer("a"))
    assert cache.lookup("p", "llm") is not None
    (key,) = entry_keys(cache.store)
    cache.store.set(key, {"v": 1, "g": "not langchain json"})
    assert cache.lookup("p", "llm") is None
    assert entry_keys(cache.store) == []
    assert "Dropping unreadable cache entry" in caplog.text
