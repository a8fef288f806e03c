"""Cache entries hold exactly what `langchain_core.load.dumps` writes, and read back equal.

`TokenOptCache` stores `dumps(generations)` through langchain-core's public serializer:
these tests pin that on the shapes models return and on what needs `dumps`' own care
(escaped user dicts, secrets, pydantic models, foreign objects).
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk
from pydantic import BaseModel

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.stores import MemoryStore

USAGE: Any = {
    "input_tokens": 850,
    "output_tokens": 120,
    "total_tokens": 970,
    "input_token_details": {"cache_read": 100, "audio": 0},
    "output_token_details": {"reasoning": 64},
}


def chat(message: BaseMessage, **kwargs: Any) -> list[Generation]:
    return [ChatGeneration(message=message, **kwargs)]


CASES: dict[str, list[Generation]] = {
    "plain answer": chat(
        AIMessage(
            "Paris.",
            id="run-1",
            usage_metadata=USAGE,
            response_metadata={"model_name": "gpt-4o", "finish_reason": "stop"},
        )
    ),
    "tool calls": chat(
        AIMessage(
            "",
            tool_calls=[
                {"name": "search", "args": {"q": "x", "n": 3}, "id": "c1", "type": "tool_call"}
            ],
            invalid_tool_calls=[
                {
                    "name": "bad",
                    "args": "{oops",
                    "id": "c2",
                    "error": "json",
                    "type": "invalid_tool_call",
                }
            ],
            additional_kwargs={"refusal": None, "parsed": None},
        )
    ),
    "content blocks": chat(
        AIMessage(
            [
                {"type": "text", "text": "a", "annotations": []},
                {"type": "reasoning", "reasoning": "b"},
                "plain",
            ],
            name="assistant",
        )
    ),
    "falsy values that differ from the default": chat(
        AIMessage("", name="", id="", response_metadata={"logprobs": None, "n": 0, "ok": False}),
        generation_info={"finish_reason": None, "index": 0, "t": (1, 2.5, None, True)},
    ),
    "several choices": [
        ChatGeneration(message=AIMessage(f"choice {i}"), generation_info={"i": i}) for i in range(3)
    ],
    "chunks": [
        ChatGenerationChunk(
            message=AIMessageChunk(content="streamed", id="lc_run-1", usage_metadata=USAGE)
        )
    ],
    "other message types": [
        ChatGeneration(message=HumanMessage("hi", id="h")),
        ChatGeneration(message=SystemMessage("be brief")),
        ChatGeneration(message=ToolMessage("42", tool_call_id="c1", status="error")),
    ],
    "text generations": [
        Generation(text="plain", generation_info={"logprobs": [0.1, -2.0], "s": "é ü 中 \u2028"}),
        GenerationChunk(text=""),
    ],
    "unicode and control characters": chat(AIMessage('quote " backslash \\ tab \t nul \x00 😀')),
    "non-finite floats": chat(AIMessage("x", response_metadata={"inf": float("inf")})),
}


def stored_payload(generations: list[Generation]) -> str:
    """The serialized generations a cache writes to its store for `generations`."""
    store = MemoryStore()
    TokenOptCache(store).update("p", "llm", generations)
    (entry,) = [value for _, value in store.scan("tokenopt:cache:e:")]
    assert isinstance(entry, dict) and isinstance(entry["g"], str)
    return entry["g"]


@pytest.mark.parametrize("name", CASES)
def test_entries_hold_what_dumps_writes(name: str) -> None:
    generations = CASES[name]
    assert stored_payload(generations) == dumps(generations)


@pytest.mark.parametrize("name", CASES)
def test_entries_read_back_equal(name: str) -> None:
    cache = TokenOptCache()
    cache.update("p", "llm", CASES[name])
    found = cache.lookup("p", "llm")
    assert found is not None and found is not CASES[name]
    for got, sent in zip(found, CASES[name], strict=True):
        if isinstance(sent, ChatGeneration):
            assert isinstance(got, ChatGeneration)
            got.message.response_metadata.pop("tokenopt_cache_hit")
        assert dumps(got) == dumps(sent)  # equal up to JSON (a tuple comes back a list)


class SecretMessage(AIMessage):
    """A message class that declares a secret: only `dumps` knows how to hide it."""

    token: str = ""

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"token": "MY_TOKEN"}


class ExtraAttributes(AIMessage):
    """A message class that adds serialized attributes on top of AIMessage's own."""

    @property
    def lc_attributes(self) -> dict[str, Any]:
        return {**super().lc_attributes, "tool_calls": [], "shadow": "kept"}


class Parsed(BaseModel):
    answer: int


FALLBACKS: dict[str, list[Generation]] = {
    "user dict with an lc key (escaped by dumps)": chat(
        AIMessage("x", response_metadata={"lc": 1, "type": "constructor", "id": ["os"]})
    ),
    "user dict that looks escaped": chat(
        AIMessage("x", additional_kwargs={"__lc_escaped__": {"a": 1}})
    ),
    "a declared secret": chat(SecretMessage(content="x", token="sk-123")),
    "a pydantic model that is not Serializable": chat(
        AIMessage("x", additional_kwargs={"parsed": Parsed(answer=4)})
    ),
    "a non-JSON object": [Generation(text="x", generation_info={"when": object()})],
}


NOT_SERIALIZABLE = ("a pydantic model that is not Serializable", "a non-JSON object")


@pytest.mark.parametrize("name", [name for name in FALLBACKS if name not in NOT_SERIALIZABLE])
def test_values_that_need_dumps_care_are_stored_as_dumps_writes_them(name: str) -> None:
    generations = FALLBACKS[name]
    assert stored_payload(generations) == dumps(generations)


@pytest.mark.parametrize("name", NOT_SERIALIZABLE)
def test_a_value_dumps_cannot_serialize_is_not_stored(name: str) -> None:
    store = MemoryStore()
    TokenOptCache(store).update("p", "llm", FALLBACKS[name])
    assert list(store.scan("tokenopt:cache:e:")) == []


def test_a_secret_is_never_written_in_clear() -> None:
    text = stored_payload(FALLBACKS["a declared secret"])
    assert "sk-123" not in text
    assert "MY_TOKEN" in text


def test_overridden_lc_attributes_are_merged_as_to_json_merges_them() -> None:
    generations = chat(
        ExtraAttributes(content="x", tool_calls=[{"name": "t", "args": {}, "id": "1"}])
    )
    text = stored_payload(generations)
    assert text == dumps(generations)
    assert '"shadow": "kept"' in text


def test_a_user_dict_with_an_lc_key_round_trips_as_data() -> None:
    cache = TokenOptCache()
    cache.update("p", "llm", FALLBACKS["user dict with an lc key (escaped by dumps)"])
    found = cache.lookup("p", "llm")
    assert found is not None and isinstance(found[0], ChatGeneration)
    metadata = found[0].message.response_metadata
    assert metadata["lc"] == 1 and metadata["id"] == ["os"]
