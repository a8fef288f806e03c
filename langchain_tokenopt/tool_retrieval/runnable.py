"""Call a chat model with only the tools each input needs bound.

`bind_relevant_tools(model, tools)` returns a `RelevantToolsRunnable`: for each input
it asks a `ToolRetriever` for the tools the latest user message (and, down-weighted,
the turns before it) needs, keeps the tools already called in the conversation, and
runs the input through `model.bind_tools(selected)`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from langchain_tokenopt.core.messages import as_messages, text_parts
from langchain_tokenopt.core.runnables import acall_in_run, astream_one, call_in_run, stream_one
from langchain_tokenopt.core.validation import TypedValidationModel
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError
from langchain_tokenopt.tool_retrieval.retriever import (
    ToolLike,
    ToolMatch,
    ToolRetriever,
    check_count,
)

__all__ = ["RelevantToolsRunnable", "bind_relevant_tools"]

logger = logging.getLogger(__name__)


def _text_of(message: BaseMessage) -> str:
    """Text parts of a message's content, joined by spaces."""
    return " ".join(text_parts(message.content))


def _as_messages(value: Any) -> list[BaseMessage]:
    return as_messages(value, taker="bind_relevant_tools")


def _read_input(value: Any) -> tuple[LanguageModelInput, list[BaseMessage]]:
    """What the model gets, and the conversation as messages."""
    if isinstance(value, str):
        return value, [HumanMessage(value)]
    if isinstance(value, PromptValue):
        return value, value.to_messages()
    if isinstance(value, Mapping):
        if "messages" not in value:
            raise ArgumentTypeError(
                f"A dict input needs a 'messages' key, got keys {sorted(map(str, value))}."
            )
        messages = value["messages"]
        return messages, _as_messages(messages)
    if isinstance(value, Sequence):
        return value, _as_messages(value)
    raise ArgumentTypeError(
        f"Cannot bind tools for a {type(value).__name__} input: pass a str, a list of "
        "messages, a PromptValue or a dict with 'messages'."
    )


def _queries(messages: Sequence[BaseMessage], recent_turns: int) -> tuple[str, str]:
    """The latest user message, and the text of the `recent_turns` turns before it.

    A turn is a user message and the assistant replies after it (tool results are left
    out: they are long and their tools are kept bound anyway). Without any user message
    the latest message with text is the query.
    """
    humans = [i for i, message in enumerate(messages) if isinstance(message, HumanMessage)]
    if not humans:
        for message in reversed(messages):
            if not isinstance(message, ToolMessage) and (text := _text_of(message)).strip():
                return text, ""
        return "", ""
    latest = humans[-1]
    earlier = humans[:-1][-recent_turns:] if recent_turns else []
    start = earlier[0] if earlier else latest
    context = [
        _text_of(message)
        for message in messages[start:latest]
        if isinstance(message, (HumanMessage, AIMessage))
    ]
    return _text_of(messages[latest]), "\n".join(text for text in context if text.strip())


def _called_tools(messages: Sequence[BaseMessage]) -> list[str]:
    """Names of the tools the assistant called in this conversation, first call first."""
    names: list[str] = []
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call["name"] not in names:
                    names.append(call["name"])
    return names


class RelevantToolsRunnable(TypedValidationModel, RunnableSerializable[Any, BaseMessage]):
    """Calls a chat model with only the tools relevant to each input bound.

    Build it with `bind_relevant_tools`. For each input (str, message list,
    `PromptValue` or a dict with "messages") it retrieves tools on the latest user
    message plus, down-weighted by `recent_weight`, the `recent_turns` turns before it;
    keeps bound every registered tool the assistant already called in the conversation
    (they are added on top of `k` and count against the budget first); then calls
    `model.bind_tools(selected, **bind_kwargs)` and runs the input through it (a dict
    input passes its "messages"). A tool called earlier but no longer registered is not
    bound (logged once per name). With no tool selected, the model is called without
    tools, since providers reject an empty tool list. Sync, async, streaming and
    batching all go through the same selection; the selection is visible in traces as
    this runnable's run, the model call as its child.

    Example (`select_tools` shows what `invoke` would bind):
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage, ToolMessage
        >>> def get_weather(city: str) -> str:
        ...     "Current weather in a city."
        ...     return "rain"
        >>> def convert_currency(amount: float, to_currency: str) -> float:
        ...     "Convert money to another currency."
        ...     return amount
        >>> runnable = bind_relevant_tools(GenericFakeChatModel(messages=iter([])),
        ...                                [get_weather, convert_currency], k=1)
        >>> [m.name for m in runnable.select_tools("Is it raining in Paris?")]
        ['get_weather']
        >>> called = AIMessage("", tool_calls=[
        ...     {"name": "get_weather", "args": {"city": "Paris"}, "id": "1"}])
        >>> [m.name for m in runnable.select_tools([("user", "Rain in Paris?"), called,
        ...     ToolMessage("rain", tool_call_id="1"), ("user", "Convert 20 EUR to yen?")])]
        ['get_weather', 'convert_currency']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: BaseChatModel
    retriever: ToolRetriever
    k: int | None = None
    token_budget: int | None = None
    recent_turns: int = 2
    recent_weight: float = 0.5
    bind_kwargs: dict[str, Any] = Field(default_factory=dict)

    _warned: set[str] = PrivateAttr(default_factory=set)

    @field_validator("k", "token_budget", mode="before")
    @classmethod
    def _valid_optional_count(cls, value: Any) -> int | None:
        return None if value is None else check_count(value, "k and token_budget")

    @field_validator("recent_turns", mode="before")
    @classmethod
    def _valid_turns(cls, value: Any) -> int:
        return check_count(value, "recent_turns")

    @field_validator("recent_weight")
    @classmethod
    def _valid_weight(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise InvalidArgumentError(f"recent_weight must be in [0, 1], got {value}")
        return value

    def select_tools(self, input: Any) -> list[ToolMatch]:
        """The tools this runnable would bind for `input`."""
        return self._select(_read_input(input)[1])

    def _select(self, messages: Sequence[BaseMessage]) -> list[ToolMatch]:
        latest, context = _queries(messages, self.recent_turns)
        pinned = []
        for name in _called_tools(messages):
            if name in self.retriever._entries:
                pinned.append(name)
            elif name not in self._warned:
                self._warned.add(name)
                logger.warning(
                    "Tool %r was called earlier in this conversation but is not in the "
                    "registry; it is not bound.",
                    name,
                )
        return self.retriever._select(
            [(latest, 1.0), (context, self.recent_weight)], self.k, self.token_budget, pinned
        )

    def _prepare(self, input: Any) -> tuple[Runnable[LanguageModelInput, Any], Any]:
        model_input, messages = _read_input(input)
        matches = self._select(messages)
        logger.debug("Binding tools %s", [match.name for match in matches])
        if not matches:
            return self.model, model_input
        bound = self.model.bind_tools([match.tool for match in matches], **self.bind_kwargs)
        return bound, model_input

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        return call_in_run(self, self._invoke, input, config, **kwargs)

    def _invoke(
        self,
        input: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> BaseMessage:
        bound, model_input = self._prepare(input)
        result: BaseMessage = bound.invoke(model_input, config, **kwargs)
        return result

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        return await acall_in_run(self, self._ainvoke, input, config, **kwargs)

    async def _ainvoke(
        self,
        input: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> BaseMessage:
        bound, model_input = self._prepare(input)
        result: BaseMessage = await bound.ainvoke(model_input, config, **kwargs)
        return result

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[BaseMessage]:
        yield from stream_one(self, input, self._stream, config, **kwargs)

    def _stream(
        self,
        inputs: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[BaseMessage]:
        bound, model_input = self._prepare(next(inputs))
        yield from bound.stream(model_input, config, **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[BaseMessage]:
        async for chunk in astream_one(self, input, self._astream, config, **kwargs):
            yield chunk

    async def _astream(
        self,
        inputs: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AsyncIterator[BaseMessage]:
        bound, model_input = self._prepare(await anext(inputs))
        async for chunk in bound.astream(model_input, config, **kwargs):
            yield chunk


def bind_relevant_tools(
    model: BaseChatModel,
    tools: ToolRetriever | Iterable[ToolLike],
    *,
    k: int | None = None,
    token_budget: int | None = None,
    recent_turns: int = 2,
    recent_weight: float = 0.5,
    **bind_kwargs: Any,
) -> RelevantToolsRunnable:
    """A runnable that binds only the tools relevant to each input (see
    `RelevantToolsRunnable`).

    Args:
        model: a chat model that supports `bind_tools`.
        tools: a `ToolRetriever`, or tools to build one from (k=5 by default).
        k, token_budget: override the retriever's for this runnable.
        recent_turns: how many turns before the latest user message join the query.
        recent_weight: weight of those turns' score against the latest message's (1).
        **bind_kwargs: passed to `model.bind_tools` (e.g. `tool_choice`,
            `parallel_tool_calls`).

    Example::

        runnable = bind_relevant_tools(ChatOpenAI(model="gpt-4o"), tools, k=3,
                                       token_budget=600)
        runnable.invoke([("user", "What's the weather in Oslo?")])
    """
    if not isinstance(model, BaseChatModel):
        raise ArgumentTypeError(
            f"model must be a chat model (BaseChatModel) that supports bind_tools, got "
            f"{type(model).__name__}."
        )
    retriever = tools if isinstance(tools, ToolRetriever) else ToolRetriever(tools)
    return RelevantToolsRunnable(
        model=model,
        retriever=retriever,
        k=k,
        token_budget=token_budget,
        recent_turns=recent_turns,
        recent_weight=recent_weight,
        bind_kwargs=bind_kwargs,
    )
