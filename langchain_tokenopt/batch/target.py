"""Split what the user batches into the chat model, its bound arguments and its parser.

`BatchAPIRunnable` accepts a chat model, a model with bound arguments
(`llm.bind_tools(...)`, `llm.bind(...)`) or a structured-output chain
(`llm.with_structured_output(...)`, with or without `include_raw`). Each request body
is built by the model itself from the bound arguments, and each answer goes through
the steps that followed the model (the structured-output parser), so a batch returns
what the runnable would have returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import (
    Runnable,
    RunnableBinding,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSequence,
)


@dataclass(frozen=True)
class Target:
    """The chat model, the arguments bound to it, and what runs on its answer."""

    model: BaseChatModel
    kwargs: dict[str, Any] = field(default_factory=dict)
    tail: Runnable[Any, Any] | None = None


def _unsupported(runnable: object) -> TypeError:
    return TypeError(
        "BatchAPIRunnable needs a chat model, a chat model with bound arguments "
        "(llm.bind_tools(...)) or llm.with_structured_output(...); got "
        f"{type(runnable).__name__}"
    )


def unwrap(runnable: Runnable[Any, Any]) -> Target:
    """The `Target` of `runnable`; `TypeError` for anything else."""
    if isinstance(runnable, BaseChatModel):
        return Target(runnable)
    if isinstance(runnable, RunnableBinding):
        inner = unwrap(runnable.bound)
        if inner.tail is not None:
            raise _unsupported(runnable)
        return Target(inner.model, {**inner.kwargs, **runnable.kwargs})
    if isinstance(runnable, RunnableSequence):
        first, rest = runnable.first, runnable.steps[1:]
        if isinstance(first, RunnableParallel) and len(first.steps__) == 1:
            # with_structured_output(include_raw=True): {"raw": model} | parser
            ((name, step),) = first.steps__.items()
            inner = unwrap(step)
            head: Runnable[Any, Any] = RunnableParallel({name: RunnablePassthrough()})
        else:
            inner = unwrap(first)
            head = RunnablePassthrough()
        if inner.tail is not None:
            raise _unsupported(runnable)
        return Target(inner.model, inner.kwargs, RunnableSequence(head, *rest))
    raise _unsupported(runnable)


def to_messages(value: LanguageModelInput) -> list[BaseMessage]:
    """The messages a chat model makes of one input (string, messages, prompt value)."""
    if isinstance(value, str):
        return [HumanMessage(value)]
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, Sequence):
        return convert_to_messages(value)
    raise TypeError(
        f"a batch input must be a string, a list of messages or a PromptValue, got "
        f"{type(value).__name__}"
    )


def call_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The bound arguments that go into a request (LangSmith hints such as
    `ls_structured_output_format` are popped, as the chat model itself does)."""
    return {k: v for k, v in kwargs.items() if not k.startswith("ls_")}
