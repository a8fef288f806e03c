"""core.runnables: one-input streaming, pinned to langchain-core's protected helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from langchain_tokenopt.core.runnables import astream_one, stream_one


class Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.names.append(str(kwargs.get("name")))


def letters(inputs: Iterator[str], run_manager: Any, config: RunnableConfig) -> Iterator[str]:
    yield from next(inputs)


async def aletters(
    inputs: AsyncIterator[str], run_manager: Any, config: RunnableConfig
) -> AsyncIterator[str]:
    for letter in await anext(inputs):
        yield letter


def test_langchain_core_still_has_the_protected_stream_helpers() -> None:
    assert callable(getattr(Runnable, "_transform_stream_with_config", None))
    assert callable(getattr(Runnable, "_atransform_stream_with_config", None))


def test_stream_one_streams_inside_one_run_of_the_runnable() -> None:
    starts = Starts()
    runnable = RunnableLambda(lambda text: text, name="shouter")
    config: RunnableConfig = {"callbacks": [starts]}
    assert list(stream_one(runnable, "hey", letters, config)) == ["h", "e", "y"]
    assert starts.names == ["shouter"]

    async def collect() -> list[str]:
        return [c async for c in astream_one(runnable, "ab", aletters, config)]

    assert asyncio.run(collect()) == ["a", "b"]
    assert starts.names == ["shouter", "shouter"]


def test_without_the_protected_helpers_the_chunks_still_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(Runnable, "_transform_stream_with_config")
    monkeypatch.delattr(Runnable, "_atransform_stream_with_config")
    runnable = RunnableLambda(lambda text: text)
    assert list(stream_one(runnable, "hey", letters, None)) == ["h", "e", "y"]

    async def collect() -> list[str]:
        return [c async for c in astream_one(runnable, "ab", aletters, None)]

    assert asyncio.run(collect()) == ["a", "b"]


class ChainEvents(BaseCallbackHandler):
    """Records the chain runs and chat-model calls it is told about."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.events.append(f"start:{kwargs.get('name')}")

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        self.events.append("end")

    def on_chain_error(self, error: BaseException, **kwargs: Any) -> None:
        self.events.append(f"error:{type(error).__name__}")

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.events.append("model")


def _router_answer(config: RunnableConfig) -> tuple[str, list[str]]:
    from langchain_core.language_models import GenericFakeChatModel

    from langchain_tokenopt.routing.router import ModelRouter, Tier

    model = GenericFakeChatModel(messages=iter(["fine"]))
    router = ModelRouter(tiers=[Tier(model, model_name="gpt-4o-mini")])
    events = ChainEvents()
    answer = router.invoke("hi", {**config, "callbacks": [events], "run_name": "route"})
    return str(answer.content), events.events


def test_langchain_core_still_has_the_protected_call_helpers() -> None:
    assert callable(Runnable._call_with_config) and callable(Runnable._acall_with_config)


@pytest.mark.parametrize("upstream", [True, False], ids=["upstream helper", "fallback"])
def test_call_in_run_gives_one_run_with_child_callbacks(
    upstream: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not upstream:
        monkeypatch.delattr(Runnable, "_call_with_config")
    text, events = _router_answer({})
    assert text == "fine"
    assert events[0] == "start:route" and events[-1] == "end"
    assert "model" in events  # the model called inside the run reports to its callbacks


@pytest.mark.parametrize("upstream", [True, False], ids=["upstream helper", "fallback"])
def test_acall_in_run_gives_one_run_and_reports_errors(
    upstream: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_tokenopt.core.runnables import acall_in_run

    if not upstream:
        monkeypatch.delattr(Runnable, "_acall_with_config")
    events = ChainEvents()
    echo = RunnableLambda(lambda text: text)

    async def fail(text: str) -> str:
        raise KeyError(text)

    with pytest.raises(KeyError):
        asyncio.run(acall_in_run(echo, fail, "x", {"callbacks": [events], "run_name": "f"}))
    assert events.events == ["start:f", "error:KeyError"]
