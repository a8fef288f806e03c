"""Streaming for runnables that take one input and stream one output.

LangChain's default `stream` of a `Runnable` calls `invoke` and yields one chunk. A
runnable that wraps a chat model and should pass its chunks through (the router, tool
binding) implements a transform over a one-input iterator; these two functions feed it
that iterator with the run's callbacks and config, the way LangChain's own
`RunnableLambda` does (through `Runnable._transform_stream_with_config`, a protected
method for subclasses; see docs/internals.md). Should a release drop it, the chunks
still stream, without a run of their own in traces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

__all__ = ["astream_one", "stream_one"]

Input = TypeVar("Input")
Output = TypeVar("Output")


def stream_one(
    runnable: Runnable[Input, Output],
    input: Input,
    transform: Callable[..., Iterator[Output]],
    config: RunnableConfig | None,
    **kwargs: Any,
) -> Iterator[Output]:
    """Chunks of `transform(iter([input]), run_manager, config)` inside one traced run.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> def shout(inputs, run_manager, config):
        ...     yield from next(inputs).upper()
        >>> echo = RunnableLambda(lambda text: text)
        >>> list(stream_one(echo, "hi", shout, None))
        ['H', 'I']
    """
    with_config = getattr(runnable, "_transform_stream_with_config", None)
    if with_config is None:  # upstream fallback: no traced run around the chunks
        yield from transform(iter([input]), None, ensure_config(config), **kwargs)
        return
    yield from with_config(iter([input]), transform, config, **kwargs)


async def astream_one(
    runnable: Runnable[Input, Output],
    input: Input,
    transform: Callable[..., AsyncIterator[Output]],
    config: RunnableConfig | None,
    **kwargs: Any,
) -> AsyncIterator[Output]:
    """Async `stream_one`: chunks of `transform` over a one-input async iterator."""

    async def single() -> AsyncIterator[Input]:
        yield input

    with_config = getattr(runnable, "_atransform_stream_with_config", None)
    if with_config is None:  # upstream fallback: no traced run around the chunks
        async for chunk in transform(single(), None, ensure_config(config), **kwargs):
            yield chunk
        return
    async for chunk in with_config(single(), transform, config, **kwargs):
        yield chunk
