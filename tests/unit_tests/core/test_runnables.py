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


def test_langchain_core_still_has_the_protected_call_helpers() -> None:
    assert callable(getattr(Runnable, "_call_with_config", None))
    assert callable(getattr(Runnable, "_acall_with_config", None))


def test_text_splitter_still_keeps_its_limits() -> None:
    from langchain_text_splitters import CharacterTextSplitter

    splitter = CharacterTextSplitter(chunk_size=7, chunk_overlap=2)
    assert (splitter._chunk_size, splitter._chunk_overlap) == (7, 2)
