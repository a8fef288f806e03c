"""What the middleware modules share: LangChain's agent types (behind the `langchain`
extra), thread-safe running totals and the small request helpers every hook uses."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AnyMessage, BaseMessage, SystemMessage, ToolMessage

from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.tokens import TokenCounter

if TYPE_CHECKING:
    from langchain.agents.middleware import (
        AgentMiddleware,
        AgentState,
        ModelRequest,
        ModelResponse,
        hook_config,
    )
    from langchain.agents.middleware.types import ExtendedModelResponse, OmitFromInput
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.types import Command
else:
    _agents = require("langchain.agents.middleware", "langchain")
    AgentMiddleware = _agents.AgentMiddleware
    AgentState = _agents.AgentState
    ModelRequest = _agents.ModelRequest
    ModelResponse = _agents.ModelResponse
    hook_config = _agents.hook_config
    _types = require("langchain.agents.middleware.types", "langchain")
    ExtendedModelResponse = _types.ExtendedModelResponse
    OmitFromInput = _types.OmitFromInput
    Command = require("langgraph.types", "langchain").Command

__all__ = [
    "AgentMiddleware",
    "AgentState",
    "AsyncHandler",
    "AsyncToolHandler",
    "Command",
    "ExtendedModelResponse",
    "Handler",
    "Middleware",
    "ModelRequest",
    "ModelResponse",
    "OmitFromInput",
    "ToolHandler",
    "Totals",
    "adispatch_event",
    "as_any",
    "dispatch_event",
    "hook_config",
    "model_name",
    "sent_messages",
    "system_tokens",
]

logger = logging.getLogger(__name__)

Middleware = AgentMiddleware[AgentState[Any], Any, Any]
Handler = Callable[["ModelRequest[Any]"], "ModelResponse[Any]"]
AsyncHandler = Callable[["ModelRequest[Any]"], Awaitable["ModelResponse[Any]"]]
ToolHandler = Callable[["ToolCallRequest"], "ToolMessage | Command[Any]"]
AsyncToolHandler = Callable[["ToolCallRequest"], Awaitable["ToolMessage | Command[Any]"]]

StatsT = TypeVar("StatsT")


class Totals(Generic[StatsT]):
    """A middleware's running totals (a dataclass of int counters), safe across threads.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Calls:
        ...     model_calls: int = 0
        >>> totals = Totals(Calls())
        >>> totals.add(model_calls=2)
        >>> totals.snapshot()
        Calls(model_calls=2)
    """

    def __init__(self, empty: StatsT) -> None:
        self._totals = empty
        self._lock = threading.Lock()

    def add(self, **amounts: int) -> None:
        """Add each amount to the counter of that name."""
        with self._lock:
            for name, amount in amounts.items():
                setattr(self._totals, name, getattr(self._totals, name) + amount)

    def snapshot(self) -> StatsT:
        """A copy of the totals so far."""
        with self._lock:
            return copy.copy(self._totals)


def sent_messages(request: ModelRequest[Any]) -> list[BaseMessage]:
    """Every message a model call sends: the system prompt, then the conversation."""
    head = [request.system_message] if request.system_message is not None else []
    return [*head, *request.messages]


def system_tokens(counter: TokenCounter, system: SystemMessage | None) -> int:
    """Tokens the system prompt adds to a call (0 without one)."""
    if system is None:
        return 0
    return int(counter.count_messages([system])) - int(counter.count_messages([]))


def model_name(model: Any) -> str | None:
    """The provider's model name of a chat model, when it says."""
    for attribute in ("model_name", "model", "model_id", "deployment_name"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def as_any(messages: list[BaseMessage]) -> list[AnyMessage]:
    """`messages` typed as agent state messages (what `ModelRequest.override` takes)."""
    return messages  # type: ignore[return-value]  # every BaseMessage the history returns is one of AnyMessage's


def dispatch_event(name: str, data: dict[str, Any], config: Any) -> None:
    """Dispatch a custom event to the run's callbacks; outside a run, log and go on."""
    try:
        dispatch_custom_event(name, data, config=config)
    except RuntimeError:  # called outside a run (no parent run to attach the event to)
        logger.debug("No parent run: %s event not dispatched.", name)


async def adispatch_event(name: str, data: dict[str, Any], config: Any) -> None:
    """Async `dispatch_event`."""
    try:
        await adispatch_custom_event(name, data, config=config)
    except RuntimeError:
        logger.debug("No parent run: %s event not dispatched.", name)
