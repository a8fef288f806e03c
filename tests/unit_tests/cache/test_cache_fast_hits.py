"""Fast hits: decoded entries kept per cache, one independent copy per hit.

`FrozenGenerations` copies with `marshal` and builds models as pydantic's `__copy__`
does (docs/internals.md): pinned here against `model_copy(deep=True)`, with its
fallback. The memory store's decoded entries are recognised by the stored text, so
an entry replaced, expired or cleared is never served from the memo.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation
from pydantic import BaseModel

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.serialization import FrozenGenerations
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.stores import MemoryStore
from tests.unit_tests.cache.test_cache import FakeClock


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
}


@pytest.mark.parametrize("name", GENERATIONS)
def test_a_thawed_copy_equals_a_pydantic_deep_copy(name: str) -> None:
    """Pins the pydantic model layout `FrozenGenerations` builds (docs/internals.md)."""
    original = GENERATIONS[name]
    (thawed,), (deep,) = FrozenGenerations(original).thaw(), [original[0].model_copy(deep=True)]
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

    real_thaw = serialization._thaw

    def incomplete(frozen: Any) -> Any:
        model = real_thaw(frozen)
        object.__setattr__(model, "__dict__", {})  # state the thaw failed to rebuild
        return model

    monkeypatch.setattr(serialization, "_thaw", incomplete)
    frozen = FrozenGenerations(GENERATIONS["chat"])
    (copy,) = frozen.thaw()
    assert copy == GENERATIONS["chat"][0] and copy is not GENERATIONS["chat"][0]
