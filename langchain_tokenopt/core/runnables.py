"""One traced run around a runnable's own work, and streaming of one input.

`call_in_run` / `acall_in_run` give an `invoke` its own run (callbacks, tags, metadata,
child callbacks for the models it calls) through `Runnable._call_with_config`, the
protected helper LangChain's own runnables use; should a release drop it, the same run
is made with the public callback-manager functions of `langchain_core.runnables.config`.

LangChain's default `stream` of a `Runnable` calls `invoke` and yields one chunk. A
runnable that wraps a chat model and should pass its chunks through (the router, tool
binding) implements a transform over a one-input iterator; these two functions feed it
that iterator with the run's callbacks and config, the way LangChain's own
`RunnableLambda` does (through `Runnable._transform_stream_with_config`, a protected
method for subclasses; see docs/internals.md). Should a release drop it, the chunks
still stream, without a run of their own in traces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.runnables.config import (
    acall_func_with_variable_args,
    call_func_with_variable_args,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)

__all__ = ["acall_in_run", "astream_one", "call_in_run", "stream_one", "unobserved_config"]

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


def unobserved_config(config: RunnableConfig | None) -> RunnableConfig | None:
    """The config a run would get (`ensure_config`: the given one merged with the one a
    parent run passes down), or None when a callback handler would see the run: one
    given or inherited through `callbacks`, or a tracer that tracing enables (LangSmith
    environment variables, `tracing_v2_enabled`).

    A runnable whose work calls no other runnable may skip making a run nobody sees.

    Example:
        >>> from langchain_core.callbacks import StdOutCallbackHandler
        >>> unobserved_config({"tags": ["x"]})["tags"]
        ['x']
        >>> unobserved_config({"callbacks": [StdOutCallbackHandler()]}) is None
        True
    """
    config = ensure_config(config)
    if get_callback_manager_for_config(config).handlers:
        return None
    return config


def call_in_run(
    runnable: Runnable[Any, Any],
    func: Callable[..., Output],
    input: Any,
    config: RunnableConfig | None,
    **kwargs: Any,
) -> Output:
    """`func(input, [run_manager], [config], **kwargs)` inside one run of `runnable`.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> echo = RunnableLambda(lambda text: text)
        >>> call_in_run(echo, lambda text, config: text.upper(), "hi", {"run_name": "shout"})
        'HI'
    """
    with_config = getattr(runnable, "_call_with_config", None)
    if with_config is not None:
        return cast(Output, with_config(func, input, config, **kwargs))
    config = ensure_config(config)  # upstream fallback: the same run, from public parts
    manager = get_callback_manager_for_config(config)
    run_manager = manager.on_chain_start(
        None,
        input,
        name=config.get("run_name") or runnable.get_name(),
        run_id=config.pop("run_id", None),
    )
    child = patch_config(config, callbacks=run_manager.get_child())
    try:
        output = call_func_with_variable_args(func, input, child, run_manager, **kwargs)
    except BaseException as exc:
        run_manager.on_chain_error(exc)
        raise
    run_manager.on_chain_end(output)
    return output


async def acall_in_run(
    runnable: Runnable[Any, Any],
    func: Callable[..., Awaitable[Output]],
    input: Any,
    config: RunnableConfig | None,
    **kwargs: Any,
) -> Output:
    """Async `call_in_run`."""
    with_config = getattr(runnable, "_acall_with_config", None)
    if with_config is not None:
        return cast(Output, await with_config(func, input, config, **kwargs))
    config = ensure_config(config)
    manager = get_async_callback_manager_for_config(config)
    run_manager = await manager.on_chain_start(
        None,
        input,
        name=config.get("run_name") or runnable.get_name(),
        run_id=config.pop("run_id", None),
    )
    child = patch_config(config, callbacks=run_manager.get_child())
    try:
        output = await acall_func_with_variable_args(func, input, child, run_manager, **kwargs)
    except BaseException as exc:
        await run_manager.on_chain_error(exc)
        raise
    await run_manager.on_chain_end(output)
    return output
