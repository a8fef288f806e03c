"""What the cache reads from langchain-core, pinned to the installed version.

langchain-core has no public API for these, so the cache reads them itself (listed in
docs/internals.md, "langchain-core: cache"): the prompt a chat model passes to
`BaseCache.lookup`, the model named in its `llm_string`, and `_get_llm_string`, which
`CachedStreamRunnable` calls to share entries with `invoke()`. Each test below fails
when an upgrade changes one of them; each fallback test shows that a change degrades
to a miss or an unknown model, never to an error.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_tokenopt.cache.exactness import prompt_text
from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.cache.savings import UNKNOWN_MODEL, model_from_llm_string
from langchain_tokenopt.cache.streaming import CachedStreamRunnable


class RecordingCache(TokenOptCache):
    """A TokenOptCache that keeps the keys langchain-core asks it for."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[tuple[str, str]] = []

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        self.keys.append((prompt, llm_string))
        return super().lookup(prompt, llm_string)


class NamedFakeChatModel(GenericFakeChatModel):
    """A fake chat model that names its model, as provider integrations do."""

    model_name: str = "gpt-4o-mini"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}


def keys_of_an_invoke(model: GenericFakeChatModel, messages: Any) -> tuple[str, str]:
    cache = RecordingCache()
    model.cache = cache
    model.invoke(messages)
    (key,) = cache.keys
    return key


# -- the prompt: dumps(messages) of the chat model's input ---------------------------


def test_prompt_text_reads_the_prompt_langchain_core_passes_to_the_cache() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("4")]))
    prompt, _ = keys_of_an_invoke(
        model, [SystemMessage("Be brief."), HumanMessage("What is 2+2?", id="m1")]
    )
    split = prompt_text(prompt)
    assert split is not None
    context, text = split
    assert text == "What is 2+2?"
    assert "Be brief." in context and "What is 2+2?" not in context


@pytest.mark.parametrize(
    "prompt",
    ["[{not json", '[{"lc": 2, "id": ["x"]}]', "[{}]", "plain words"],
)
def test_a_prompt_in_another_shape_is_compared_as_plain_text(prompt: str) -> None:
    assert prompt_text(prompt) == ("", prompt)


def test_a_chat_prompt_whose_last_message_has_no_readable_text_is_exact_only() -> None:
    shapeless = '[{"lc": 1, "type": "constructor", "id": ["HumanMessage"], "kwargs": 3}]'
    assert prompt_text(shapeless) is None
    cache = TokenOptCache(similarity_threshold=0.3)
    cache.update(shapeless, "llm", [Generation(text="x")])
    assert cache.lookup(shapeless.replace("3}", "4}"), "llm") is None


# -- the model named in llm_string --------------------------------------------------


def test_the_model_is_read_from_a_serializable_models_llm_string() -> None:
    openai = pytest.importorskip("langchain_openai")
    chat = openai.ChatOpenAI(model="gpt-4o-mini", api_key="unused")
    assert model_from_llm_string(chat._get_llm_string()) == "gpt-4o-mini"
    # Call-time parameters come after "---" and win over the constructor's.
    assert model_from_llm_string(chat._get_llm_string(model="gpt-4o")) == "gpt-4o"


def test_the_model_is_read_from_a_plain_models_llm_string() -> None:
    model = NamedFakeChatModel(messages=iter([AIMessage("hi")]))
    _, llm_string = keys_of_an_invoke(model, "hello")
    assert llm_string == model._get_llm_string()
    assert model_from_llm_string(llm_string) == "gpt-4o-mini"


def test_an_llm_string_without_a_model_counts_hits_under_the_unknown_model() -> None:
    assert model_from_llm_string("{'something': 'else'}") is None
    cache = TokenOptCache()
    usage: Any = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    cache.update(
        "p", "no model here", [ChatGeneration(message=AIMessage("x", usage_metadata=usage))]
    )
    assert cache.lookup("p", "no model here") is not None
    saved = cache.stats().by_model[UNKNOWN_MODEL]
    assert (saved.hits, saved.saved_input_tokens, saved.unpriced_hits) == (1, 10, 1)


# -- CachedStreamRunnable and _get_llm_string ---------------------------------------


def test_a_stream_uses_the_keys_invoke_uses() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("Paris"), AIMessage("called")]))
    cache = RecordingCache()
    list(CachedStreamRunnable(model, cache).stream([HumanMessage("Capital?", id="a")]))
    model.cache = cache
    assert model.invoke([HumanMessage("Capital?", id="b")]).content == "Paris"
    streamed, invoked = cache.keys
    assert streamed == invoked


def test_structured_output_hints_are_left_out_of_the_key_as_invoke_leaves_them() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("Paris"), AIMessage("called")]))
    cache = RecordingCache()
    hint: dict[str, Any] = {
        "ls_structured_output_format": {"kwargs": {"method": "json_schema"}, "schema": {}}
    }
    list(CachedStreamRunnable(model.bind(**hint), cache).stream("Capital?"))
    model.cache = cache
    assert model.invoke("Capital?", **hint).content == "Paris"
    streamed, invoked = cache.keys
    assert streamed == invoked


class KeylessChatModel(GenericFakeChatModel):
    """As if an upgrade removed `_get_llm_string`."""

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        raise AttributeError("_get_llm_string")


def test_without_a_model_key_a_stream_goes_to_the_model_uncached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = KeylessChatModel(messages=iter([AIMessage("one"), AIMessage("two")]))
    cache = TokenOptCache()
    streaming = CachedStreamRunnable(model, cache)
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.cache.streaming"):
        assert streaming.invoke("q").content == "one"
        assert streaming.invoke("q").content == "two"
    assert cache.stats().entries == 0
    warnings = [r for r in caplog.records if "without the cache" in r.getMessage()]
    assert len(warnings) == 1  # once per process and model class, not per call


class AsyncKeylessChatModel(KeylessChatModel):
    """Its own class, so its warning is not the one the sync test already logged."""


async def test_without_a_model_key_an_async_stream_goes_to_the_model_uncached() -> None:
    model = AsyncKeylessChatModel(messages=iter([AIMessage("one"), AIMessage("two")]))
    streaming = CachedStreamRunnable(model, TokenOptCache())
    assert (await streaming.ainvoke("q")).content == "one"
    assert (await streaming.ainvoke("q")).content == "two"
