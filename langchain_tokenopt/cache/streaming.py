"""Cached streaming: `stream()` / `astream()` that a `TokenOptCache` can answer.

LangChain's caches only serve `invoke` / `generate`: `BaseChatModel.stream()` never
looks at a cache, so every streamed request pays the provider again.
`CachedStreamRunnable` wraps a chat model: on a hit it replays the cached answer as
`AIMessageChunk`s (marked with `CACHE_HIT_KEY`) without calling the model; on a miss
it streams from the model, passes every chunk through, and stores the aggregated
message when the stream ends normally (an interrupted stream is not cached).

Keys are computed exactly as `BaseChatModel` computes them for its cache (the
message list without ids through `langchain_core.load.dumps`, and the model's
`_get_llm_string(stop, **kwargs)`), so `invoke()` through the same cache and the
stream share entries: a streamed answer is served to a later `invoke()` and the
other way round.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.load import dumpd, dumps
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    message_chunk_to_message,
)
from langchain_core.messages.tool import ToolCallChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, LLMResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.config import ensure_config, merge_configs

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.core.logs import log_once
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.messages import as_messages
from langchain_tokenopt.core.validation import int_in_range, optional
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["CachedStreamRunnable"]

logger = logging.getLogger(__name__)

# Structured-output hints that BaseChatModel.generate pops before computing its
# cache key; popped here too so both paths compute the same key.
_NOT_IN_KEY = ("ls_structured_output_format", "structured_output_format")


def _cached_message(generations: Sequence[Generation]) -> BaseMessage:
    first = generations[0]
    message = getattr(first, "message", None)
    if isinstance(message, BaseMessage):
        return message
    return AIMessage(content=first.text, response_metadata={CACHE_HIT_KEY: True})


def _replay_chunks(message: BaseMessage, chunk_chars: int | None) -> list[AIMessageChunk]:
    """`message` as chunks whose sum equals it: text pieces, then one last chunk with
    tool calls, usage and metadata."""
    content = message.content
    pieces: list[str | list[str | dict[str, Any]]]
    if isinstance(content, str) and chunk_chars and len(content) > chunk_chars:
        pieces = [content[i : i + chunk_chars] for i in range(0, len(content), chunk_chars)]
    else:
        pieces = [content]
    tool_chunks: list[ToolCallChunk] = []
    usage = None
    if isinstance(message, AIMessage):
        usage = message.usage_metadata
        for call in message.tool_calls:
            tool_chunks.append(
                ToolCallChunk(
                    name=call["name"],
                    args=json.dumps(call["args"]),
                    id=call.get("id"),
                    index=len(tool_chunks),
                    type="tool_call_chunk",
                )
            )
        for invalid in message.invalid_tool_calls:
            tool_chunks.append(
                ToolCallChunk(
                    name=invalid.get("name"),
                    args=invalid.get("args"),
                    id=invalid.get("id"),
                    index=len(tool_chunks),
                    type="tool_call_chunk",
                )
            )
    chunks = [AIMessageChunk(content=piece, id=message.id) for piece in pieces[:-1]]
    chunks.append(
        AIMessageChunk(
            content=pieces[-1],
            id=message.id,
            additional_kwargs=dict(message.additional_kwargs),
            response_metadata={**message.response_metadata, CACHE_HIT_KEY: True},
            usage_metadata=usage,
            tool_call_chunks=tool_chunks,
            chunk_position="last",
        )
    )
    return chunks


def _add(total: AIMessageChunk | None, chunk: BaseMessage) -> AIMessageChunk:
    if not isinstance(chunk, AIMessageChunk):
        chunk = AIMessageChunk(
            content=chunk.content,
            id=chunk.id,
            additional_kwargs=dict(chunk.additional_kwargs),
            response_metadata=dict(chunk.response_metadata),
        )
    return chunk if total is None else total + chunk


def _no_chunks(model: BaseChatModel) -> InvalidArgumentError:
    """`invoke` on a model whose stream was empty: no answer to return, nothing cached."""
    return InvalidArgumentError(
        f"model ({type(model).__name__}) streamed no chunks, so there is no answer to "
        "return (nothing was cached); check that the model's stream() yields its answer"
    )


class CachedStreamRunnable(Runnable[LanguageModelInput, BaseMessage]):
    """A chat model whose `stream()` / `astream()` are served by a `TokenOptCache`.

    On a hit no request is sent: the cached answer is replayed as `AIMessageChunk`s,
    the last one carrying tool calls, `usage_metadata` and `response_metadata` with
    `CACHE_HIT_KEY` set, and the model's callbacks get `on_chat_model_start`, one
    `on_llm_new_token` per chunk and `on_llm_end` with the replayed message, as
    langchain-core does for an `invoke()` hit (so a usage tracker records it as
    saved). On a miss the model streams as usual and the aggregated message is cached
    once the stream ends; a stream that raises or is abandoned is not cached.
    `invoke()` / `ainvoke()` aggregate the stream.

    Args:
        model: a `BaseChatModel`, or one bound with `bind_tools(...)` / `bind(...)`
            (the bound arguments become part of the key).
        cache: the `TokenOptCache` to read and fill.
        replay_chunk_chars: split replayed text into chunks of this many characters;
            None replays the text as one chunk.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage
        >>> model = GenericFakeChatModel(messages=iter([AIMessage("Paris")]))
        >>> from langchain_tokenopt import TokenOptCache
        >>> streaming = CachedStreamRunnable(model, TokenOptCache())
        >>> "".join(str(c.content) for c in streaming.stream("Capital of France?"))
        'Paris'
        >>> "".join(str(c.content) for c in streaming.stream("Capital of France?"))
        'Paris'
    """

    def __init__(
        self,
        model: BaseChatModel | Runnable[Any, Any],
        cache: TokenOptCache,
        *,
        replay_chunk_chars: int | None = None,
    ) -> None:
        bound_kwargs: dict[str, Any] = {}
        bound_config: RunnableConfig = {}
        if isinstance(model, RunnableBinding):
            bound_kwargs = dict(model.kwargs)
            bound_config = cast("RunnableConfig", dict(model.config or {}))
            model = model.bound
        if not isinstance(model, BaseChatModel):
            raise ArgumentTypeError(
                "CachedStreamRunnable wraps a chat model (BaseChatModel, optionally "
                f"with bind_tools/bind), got {type(model).__name__}"
            )
        if not isinstance(cache, TokenOptCache):
            raise ArgumentTypeError(f"cache must be a TokenOptCache, got {type(cache).__name__}")
        optional(int_in_range, replay_chunk_chars, "replay_chunk_chars", minimum=1)
        self.model = model
        self.cache = cache
        self.replay_chunk_chars = replay_chunk_chars
        self._bound_kwargs = bound_kwargs
        self._bound_config = bound_config

    # -- keys -----------------------------------------------------------------

    def _prepare(
        self, input: LanguageModelInput, config: RunnableConfig | None, kwargs: dict[str, Any]
    ) -> tuple[
        list[BaseMessage], RunnableConfig, list[str] | None, dict[str, Any], str, str | None
    ]:
        messages = as_messages(input, taker="CachedStreamRunnable")
        merged_config = ensure_config(merge_configs(self._bound_config, config))
        call_kwargs = {**self._bound_kwargs, **kwargs}
        stop = call_kwargs.pop("stop", None)
        key_kwargs = {k: v for k, v in call_kwargs.items() if k not in _NOT_IN_KEY}
        normalized = [
            m.model_copy(update={"id": None}) if m.id is not None else m for m in messages
        ]
        prompt = dumps(normalized)
        llm_string = self._llm_string(stop, key_kwargs)
        return messages, merged_config, stop, call_kwargs, prompt, llm_string

    def _llm_string(self, stop: list[str] | None, key_kwargs: dict[str, Any]) -> str | None:
        """The model's own cache key part, or None (stream uncached) if it cannot say.

        The same private helper `BaseChatModel` uses for its cache key, so the stream
        and `invoke()` share entries (docs/internals.md, "langchain-core: cache").
        """
        try:
            return self.model._get_llm_string(stop=stop, **key_kwargs)
        except Exception as exc:  # upstream changed: stream without the cache, not fail
            log_once(
                logger,
                f"llm_string:{type(self.model).__name__}",
                logging.WARNING,
                "CachedStreamRunnable streams %s without the cache: its cache key is "
                "unavailable (%s). Please report this with your langchain-core version.",
                type(self.model).__name__,
                exc,
            )
            return None

    def _start_options(self, stop: list[str] | None, call_kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            params = self.model._get_invocation_params(stop=stop, **call_kwargs)
        except Exception:  # tracing detail only; never fail a cache hit for it
            params = {"stop": stop, **call_kwargs}
        return params

    # -- replay on a hit ------------------------------------------------------

    def _replay(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        stop: list[str] | None,
        call_kwargs: dict[str, Any],
        cached: BaseMessage,
    ) -> Iterator[AIMessageChunk]:
        manager = CallbackManager.configure(
            config.get("callbacks"),
            self.model.callbacks,
            self.model.verbose,
            config.get("tags"),
            self.model.tags,
            config.get("metadata"),
            self.model.metadata,
        )
        run: CallbackManagerForLLMRun = manager.on_chat_model_start(
            dumpd(self.model),
            [messages],
            invocation_params=self._start_options(stop, call_kwargs),
            options={"stop": stop},
            name=config.get("run_name"),
            run_id=config.get("run_id"),
            batch_size=1,
        )[0]
        total: AIMessageChunk | None = None
        for chunk in _replay_chunks(cached, self.replay_chunk_chars):
            run.on_llm_new_token(str(chunk.content), chunk=ChatGenerationChunk(message=chunk))
            total = _add(total, chunk)
            yield chunk
        assert total is not None
        run.on_llm_end(
            LLMResult(generations=[[ChatGeneration(message=message_chunk_to_message(total))]])
        )

    async def _areplay(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        stop: list[str] | None,
        call_kwargs: dict[str, Any],
        cached: BaseMessage,
    ) -> AsyncIterator[AIMessageChunk]:
        manager = AsyncCallbackManager.configure(
            config.get("callbacks"),
            self.model.callbacks,
            self.model.verbose,
            config.get("tags"),
            self.model.tags,
            config.get("metadata"),
            self.model.metadata,
        )
        runs = await manager.on_chat_model_start(
            dumpd(self.model),
            [messages],
            invocation_params=self._start_options(stop, call_kwargs),
            options={"stop": stop},
            name=config.get("run_name"),
            run_id=config.get("run_id"),
            batch_size=1,
        )
        run: AsyncCallbackManagerForLLMRun = runs[0]
        total: AIMessageChunk | None = None
        for chunk in _replay_chunks(cached, self.replay_chunk_chars):
            await run.on_llm_new_token(str(chunk.content), chunk=ChatGenerationChunk(message=chunk))
            total = _add(total, chunk)
            yield chunk
        assert total is not None
        await run.on_llm_end(
            LLMResult(generations=[[ChatGeneration(message=message_chunk_to_message(total))]])
        )

    # -- Runnable -------------------------------------------------------------

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[BaseMessage]:
        """Replay a cached answer, or stream from the model and cache the result."""
        messages, merged, stop, call_kwargs, prompt, llm_string = self._prepare(
            input, config, kwargs
        )
        if llm_string is None:
            yield from self.model.stream(messages, merged, stop=stop, **call_kwargs)
            return
        cached = self.cache.lookup(prompt, llm_string)
        if cached:
            yield from self._replay(messages, merged, stop, call_kwargs, _cached_message(cached))
            return
        total: AIMessageChunk | None = None
        for chunk in self.model.stream(messages, merged, stop=stop, **call_kwargs):
            total = _add(total, chunk)
            yield chunk
        if total is not None:
            message = message_chunk_to_message(total)
            self.cache.update(prompt, llm_string, [ChatGeneration(message=message)])

    async def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[BaseMessage]:
        """Async `stream`."""
        messages, merged, stop, call_kwargs, prompt, llm_string = self._prepare(
            input, config, kwargs
        )
        if llm_string is None:
            async for chunk in self.model.astream(messages, merged, stop=stop, **call_kwargs):
                yield chunk
            return
        cached = await self.cache.alookup(prompt, llm_string)
        if cached:
            async for replayed in self._areplay(
                messages, merged, stop, call_kwargs, _cached_message(cached)
            ):
                yield replayed
            return
        total: AIMessageChunk | None = None
        async for chunk in self.model.astream(messages, merged, stop=stop, **call_kwargs):
            total = _add(total, chunk)
            yield chunk
        if total is not None:
            message = message_chunk_to_message(total)
            await self.cache.aupdate(prompt, llm_string, [ChatGeneration(message=message)])

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        """The whole answer: the aggregate of `stream()`."""
        total: AIMessageChunk | None = None
        for chunk in self.stream(input, config, **kwargs):
            total = _add(total, chunk)
        if total is None:
            raise _no_chunks(self.model)
        return message_chunk_to_message(total)

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        """Async `invoke`."""
        total: AIMessageChunk | None = None
        async for chunk in self.astream(input, config, **kwargs):
            total = _add(total, chunk)
        if total is None:
            raise _no_chunks(self.model)
        return message_chunk_to_message(total)
