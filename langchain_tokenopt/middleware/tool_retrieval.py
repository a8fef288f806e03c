"""`ToolRetrievalMiddleware`: bind only the tools relevant to each model call.

An agent re-sends every tool schema on each model call; this middleware ranks the
tools with a `ToolRetriever` (no model call, unlike LangChain's
`LLMToolSelectorMiddleware`) and binds only the best few.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import finite_number, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError
from langchain_tokenopt.middleware._base import (
    AsyncHandler,
    Handler,
    Middleware,
    ModelRequest,
    ModelResponse,
    Totals,
)
from langchain_tokenopt.tool_retrieval.retriever import ToolRetriever
from langchain_tokenopt.tool_retrieval.runnable import RelevantToolsRunnable, bind_relevant_tools

__all__ = ["ToolRetrievalMiddleware", "ToolRetrievalStats"]

logger = logging.getLogger(__name__)


@dataclass
class ToolRetrievalStats:
    """What `ToolRetrievalMiddleware` bound, summed over its model calls.

    `schema_tokens_offered` is what the agent's tool schemas would have cost on those
    calls, `schema_tokens_bound` what the selected ones cost (exact counts).
    """

    model_calls: int = 0
    tools_offered: int = 0
    tools_bound: int = 0
    schema_tokens_offered: int = 0
    schema_tokens_bound: int = 0

    @property
    def tokens_saved(self) -> int:
        """Schema tokens not sent."""
        return self.schema_tokens_offered - self.schema_tokens_bound


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidArgumentError(f"{name} must be a non-negative int, not {shown(value)}.")


class ToolRetrievalMiddleware(Middleware):
    """Bind only the tools relevant to each model call, chosen without a model call.

    Before each call the agent's tools are ranked by a `ToolRetriever` (TF-IDF over
    names, descriptions and arguments) against the latest user message and, down-
    weighted, the turns before it. Only the best `k` are bound, plus every tool the
    assistant already called in this conversation (so a multi-step task keeps its
    tools), plus `always_include`. Provider built-in tools (dicts) are always kept.
    A request that matches no tool is sent without tools. The agent can still run any
    of its tools: only what the model is shown changes.

    Args:
        retriever: a `ToolRetriever` to rank with; by default one is built from the
            agent's tools on the first call (and rebuilt if they change).
        k: tools to retrieve per call (default: the retriever's, 5).
        token_budget: most tokens the bound schemas may cost per call.
        always_include: names of tools bound on every call.
        recent_turns: turns before the latest user message that join the query.
        recent_weight: weight of those turns against the latest message (1).
        model: tokenizer that counts schema tokens (for the budget and `stats`).

    Use it as `create_agent(llm, tools=fifty_tools, middleware=[ToolRetrievalMiddleware(k=3)])`.

    Example:
        >>> middleware = ToolRetrievalMiddleware(k=3, always_include=["get_weather"])
        >>> middleware.stats.model_calls, middleware.stats.tokens_saved
        (0, 0)
    """

    def __init__(
        self,
        retriever: ToolRetriever | None = None,
        *,
        k: int | None = None,
        token_budget: int | None = None,
        always_include: Sequence[str] = (),
        recent_turns: int = 2,
        recent_weight: float = 0.5,
        model: str = "gpt-4o",
    ) -> None:
        super().__init__()
        _check_count("k", k)
        _check_count("token_budget", token_budget)
        _check_count("recent_turns", recent_turns)
        finite_number(recent_weight, "recent_weight", minimum=0, maximum=1)
        if retriever is not None and not isinstance(retriever, ToolRetriever):
            raise ArgumentTypeError(
                f"retriever must be a ToolRetriever, not {type(retriever).__name__}."
            )
        if isinstance(always_include, str):
            raise ArgumentTypeError("always_include must be a list of tool names, not a str.")
        if not isinstance(always_include, (list, tuple, set, frozenset)) or not all(
            isinstance(name, str) for name in always_include
        ):
            raise ArgumentTypeError(
                f"always_include must be a list of tool names, got {shown(always_include)}."
            )
        self._retriever = retriever
        self._owns_retriever = retriever is None
        self._k = k
        self._token_budget = token_budget
        self._always_include = tuple(always_include)
        self._recent_turns = recent_turns
        self._recent_weight = recent_weight
        self._model = model
        self._counter = TokenCounter(model)
        self._selector: RelevantToolsRunnable | None = None
        self._tools_key: tuple[int, ...] = ()
        self._lock = threading.Lock()
        self._totals = Totals(ToolRetrievalStats())

    @property
    def stats(self) -> ToolRetrievalStats:
        """A copy of the totals so far."""
        return self._totals.snapshot()

    # -- steps ----------------------------------------------------------------------------

    def _selector_for(self, request: ModelRequest[Any]) -> RelevantToolsRunnable | None:
        """The ranking of this agent's tools (built once, rebuilt when its tools change)."""
        tools = [tool for tool in request.tools if isinstance(tool, BaseTool)]
        with self._lock:
            if self._owns_retriever:
                key = tuple(id(tool) for tool in tools)
                if self._selector is not None and key == self._tools_key:
                    return self._selector
                if not tools:
                    return None
                self._retriever = ToolRetriever(tools, model=self._model)
                self._tools_key = key
                self._selector = None
            if self._selector is None:
                assert self._retriever is not None
                self._selector = bind_relevant_tools(
                    request.model,
                    self._retriever,
                    k=self._k,
                    token_budget=self._token_budget,
                    recent_turns=self._recent_turns,
                    recent_weight=self._recent_weight,
                )
            return self._selector

    def _check_always_include(self, function_tools: list[BaseTool]) -> None:
        known = {tool.name for tool in function_tools}
        missing = [name for name in self._always_include if name not in known]
        if missing:
            raise InvalidArgumentError(
                f"always_include names tools the agent does not have: {missing}; its tools "
                f"are {sorted(known)}."
            )

    def _wanted(self, selector: RelevantToolsRunnable, request: ModelRequest[Any]) -> set[str]:
        wanted = {match.name for match in selector.select_tools(list(request.messages))}
        wanted.update(self._always_include)
        return wanted

    def _record(self, function_tools: list[BaseTool], kept: list[BaseTool]) -> None:
        offered = int(self._counter.count_tools(function_tools)) if function_tools else 0
        bound = int(self._counter.count_tools(kept)) if kept else 0
        self._totals.add(
            model_calls=1,
            tools_offered=len(function_tools),
            tools_bound=len(kept),
            schema_tokens_offered=offered,
            schema_tokens_bound=bound,
        )

    # -- the recipe -----------------------------------------------------------------------

    def select(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The request with only the selected tools (what `wrap_model_call` sends)."""
        selector = self._selector_for(request)
        if selector is None:
            return request
        function_tools = [tool for tool in request.tools if isinstance(tool, BaseTool)]
        self._check_always_include(function_tools)
        wanted = self._wanted(selector, request)
        kept = [tool for tool in function_tools if tool.name in wanted]
        provider_tools = [tool for tool in request.tools if isinstance(tool, dict)]
        self._record(function_tools, kept)
        logger.debug("Binding %d of %d tools: %s", len(kept), len(function_tools), sorted(wanted))
        return request.override(tools=[*kept, *provider_tools])

    def wrap_model_call(self, request: ModelRequest[Any], handler: Handler) -> ModelResponse[Any]:
        """Call the model with the selected tools bound."""
        return handler(self.select(request))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: AsyncHandler
    ) -> ModelResponse[Any]:
        """Async `wrap_model_call` (selection is about a millisecond of CPU: inline)."""
        return await handler(self.select(request))
