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

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import (
    Runnable,
    RunnableBinding,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSequence,
)

from langchain_tokenopt.core.validation import check_depth
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError


@dataclass(frozen=True)
class Target:
    """The chat model, the arguments bound to it, and what runs on its answer."""

    model: BaseChatModel
    kwargs: dict[str, Any] = field(default_factory=dict)
    tail: Runnable[Any, Any] | None = None


def _unsupported(runnable: object) -> ArgumentTypeError:
    return ArgumentTypeError(
        "BatchAPIRunnable needs a chat model, a chat model with bound arguments "
        "(llm.bind_tools(...)) or llm.with_structured_output(...); got "
        f"{type(runnable).__name__}"
    )


def unwrap(runnable: Runnable[Any, Any]) -> Target:
    """The `Target` of `runnable`; `ArgumentTypeError` for anything else."""
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def to_messages(value: Any, index: int) -> list[BaseMessage]:
    """The messages a chat model makes of input `index` (string, messages, prompt value).

    `ArgumentTypeError` for a value of another type, `InvalidArgumentError` for a list
    that cannot be read as messages (or holds none) or nests deeper than `MAX_DEPTH`;
    both name the index.
    """
    name = f"inputs[{index}]"
    if isinstance(value, str):
        return [HumanMessage(value)]
    if isinstance(value, PromptValue):
        check_depth(value, name)
        messages = value.to_messages()
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        check_depth(value, name)
        try:
            messages = convert_to_messages(value)
        except (ValueError, TypeError, NotImplementedError, KeyError) as exc:
            raise InvalidArgumentError(
                f"{name} cannot be read as messages ({_first_line(exc)}); "
                "give a list of messages, (role, text) pairs or role/content dicts"
            ) from None
    else:
        raise ArgumentTypeError(
            f"{name} must be a string, a list of messages or a PromptValue, got "
            f"{type(value).__name__}"
        )
    if not messages:
        raise InvalidArgumentError(
            f"{name} holds no messages; a request needs at least one (a string is one "
            "human message)"
        )
    return messages


def call_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The bound arguments that go into a request (LangSmith hints such as
    `ls_structured_output_format` are popped, as the chat model itself does)."""
    return {k: v for k, v in kwargs.items() if not k.startswith("ls_")}
