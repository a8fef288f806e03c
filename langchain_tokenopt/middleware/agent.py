"""Token-saving middleware for LangChain v1 agents (`langchain.agents.create_agent`).

An agent re-sends its whole conversation and every tool schema on each model call,
so its cost grows with every step. These middleware plug the package's components
into the agent loop, each at the hook where it saves the most:

- `ToolRetrievalMiddleware` binds only the tools a `ToolRetriever` ranks relevant
  (no model call, unlike LangChain's `LLMToolSelectorMiddleware`).
- `ModelRouterMiddleware` sends each call to the model `ModelRouter` picks, falling
  through to the next tier when one fails.
- `TokenBudgetMiddleware` enforces a `TokenBudget`, shrinks the context as the budget
  runs low and ends the run with a clear message when it is spent.
- `CompressionMiddleware` compresses tool outputs losslessly before they enter state.
- `SummarizingMiddleware` sends a running summary plus the recent turns, counted
  exactly, never splitting a tool call from its result.

The agent state always keeps the full conversation: middleware change what one model
call is sent, not what the run remembers (compression aside, which is lossless).
Needs the `langchain` extra (`pip install 'langchain-tokenopt[langchain]'`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import ensure_config, run_in_executor
from langchain_core.tools import BaseTool

from langchain_tokenopt.callbacks.budget import BudgetRemaining, TokenBudget
from langchain_tokenopt.chat_history.history import (
    SummarizingChatMessageHistory,
    SummaryRole,
)
from langchain_tokenopt.chat_history.planner import MIN_BUDGET_TOKENS
from langchain_tokenopt.compression import CompressionLevel, PromptCompressor
from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.markers import CACHE_HIT_KEY, ROUTE_EVENT, ROUTE_KEY
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import CallStart, Usage, resolve_agent, usage_from_metadata
from langchain_tokenopt.errors import BudgetExceededError
from langchain_tokenopt.routing.router import ModelRouter, RouteDecision, Tier
from langchain_tokenopt.routing.stats import RouterStats
from langchain_tokenopt.stores import Store
from langchain_tokenopt.tool_retrieval.retriever import ToolRetriever
from langchain_tokenopt.tool_retrieval.runnable import RelevantToolsRunnable, bind_relevant_tools

if TYPE_CHECKING:
    from langchain.agents.middleware import (
        AgentMiddleware,
        AgentState,
        ModelRequest,
        ModelResponse,
        hook_config,
    )
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.runtime import Runtime
    from langgraph.types import Command
else:
    _agents = require("langchain.agents.middleware", "langchain")
    AgentMiddleware = _agents.AgentMiddleware
    AgentState = _agents.AgentState
    ModelRequest = _agents.ModelRequest
    ModelResponse = _agents.ModelResponse
    hook_config = _agents.hook_config
    Command = require("langgraph.types", "langchain").Command

__all__ = [
    "CompressionMiddleware",
    "CompressionStats",
    "ModelRouterMiddleware",
    "SummarizingMiddleware",
    "SummarizingStats",
    "TokenBudgetMiddleware",
    "ToolRetrievalMiddleware",
    "ToolRetrievalStats",
]

logger = logging.getLogger(__name__)

_Middleware = AgentMiddleware[AgentState[Any], Any, Any]
_Handler = Callable[["ModelRequest[Any]"], "ModelResponse[Any]"]
_AsyncHandler = Callable[["ModelRequest[Any]"], Awaitable["ModelResponse[Any]"]]
_ToolHandler = Callable[["ToolCallRequest"], "ToolMessage | Command[Any]"]
_AsyncToolHandler = Callable[["ToolCallRequest"], Awaitable["ToolMessage | Command[Any]"]]


# --------------------------------------------------------------------------- helpers


def _session_key(messages: Sequence[BaseMessage]) -> str:
    """The conversation a model call belongs to: the LangGraph thread, else the id of
    its first message (the agent's message reducer gives every message an id)."""
    configurable = ensure_config().get("configurable") or {}
    thread = configurable.get("thread_id")
    if thread is not None:
        return f"thread:{thread}"
    first = messages[0].id if messages else None
    return f"first:{first}" if first else "default"


def _model_name(model: Any) -> str | None:
    """The provider's model name of a chat model, when it says."""
    for attribute in ("model_name", "model", "model_id", "deployment_name"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def _system_tokens(counter: TokenCounter, system: SystemMessage | None) -> int:
    if system is None:
        return 0
    return int(counter.count_messages([system])) - int(counter.count_messages([]))


class _StateMessages(BaseChatMessageHistory):
    """The agent state's messages seen as a chat history (read-only, swapped per call).

    `SummarizingChatMessageHistory` wraps it: on each read it notices the messages
    appended since the last call and counts only those.
    """

    def __init__(self) -> None:
        self.messages: list[BaseMessage] = []
        self.budget_tokens = 4000

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        # The history appends only when asked to, which the middleware never does.
        self.messages.extend(messages)

    def clear(self) -> None:
        self.messages = []


class _ConversationWindows:
    """One `SummarizingChatMessageHistory` per conversation (LRU-bounded).

    `view(messages, budget)` returns what a model call should be sent: pinned system
    messages, the running summary and the newest turns within `budget` tokens.
    Summaries are folded incrementally: a call folds only the turns that left the
    window since the previous call of the same conversation.
    """

    def __init__(
        self,
        *,
        token_counter: TokenCounter,
        summarizer: Runnable[Any, Any] | BaseLanguageModel[Any] | None,
        target_ratio: float,
        max_summary_tokens: int | None,
        summary_role: SummaryRole,
        state_store: Store | None,
        namespace: str,
        max_sessions: int,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, not {max_sessions!r}.")
        self.token_counter = token_counter
        self._summarizer = summarizer
        self._target_ratio = target_ratio
        self._max_summary_tokens = max_summary_tokens
        self._summary_role: SummaryRole = summary_role
        self._state_store = state_store
        self._namespace = namespace
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, tuple[_StateMessages, SummarizingChatMessageHistory]]
        self._sessions = OrderedDict()
        self._lock = threading.Lock()
        # Fail on bad settings now, not at the first model call.
        self._new_history("check", _StateMessages())

    def _new_history(self, session: str, source: _StateMessages) -> SummarizingChatMessageHistory:
        return SummarizingChatMessageHistory(
            source,
            max_tokens=lambda: source.budget_tokens,
            token_counter=self.token_counter,
            summarizer=self._summarizer,
            target_ratio=self._target_ratio,
            max_summary_tokens=self._max_summary_tokens,
            summary_role=self._summary_role,
            state_store=self._state_store,
            session_id=session,
            namespace=self._namespace,
        )

    def _history(
        self, messages: Sequence[BaseMessage], budget_tokens: int
    ) -> SummarizingChatMessageHistory:
        session = _session_key(messages)
        with self._lock:
            entry = self._sessions.get(session)
            if entry is None:
                source = _StateMessages()
                entry = (source, self._new_history(session, source))
                self._sessions[session] = entry
                while len(self._sessions) > self._max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(session)
        source, history = entry
        source.messages = list(messages)
        source.budget_tokens = max(budget_tokens, MIN_BUDGET_TOKENS)
        return history

    def view(self, messages: Sequence[BaseMessage], budget_tokens: int) -> list[BaseMessage]:
        return self._history(messages, budget_tokens).messages

    async def aview(self, messages: Sequence[BaseMessage], budget_tokens: int) -> list[BaseMessage]:
        return await self._history(messages, budget_tokens).aget_messages()


# ------------------------------------------------------------------- tool retrieval


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


class ToolRetrievalMiddleware(_Middleware):
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

    Example::

        from langchain.agents import create_agent
        agent = create_agent(llm, tools=fifty_tools,
            middleware=[ToolRetrievalMiddleware(k=3)])
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
        for name, value in (
            ("k", k),
            ("token_budget", token_budget),
            ("recent_turns", recent_turns),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative int, not {value!r}.")
        if not 0.0 <= recent_weight <= 1.0:
            raise ValueError(f"recent_weight must be in [0, 1], not {recent_weight!r}.")
        if retriever is not None and not isinstance(retriever, ToolRetriever):
            raise TypeError(f"retriever must be a ToolRetriever, not {type(retriever).__name__}.")
        if isinstance(always_include, str):
            raise TypeError("always_include must be a list of tool names, not a str.")
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
        self._stats = ToolRetrievalStats()

    @property
    def stats(self) -> ToolRetrievalStats:
        """A copy of the totals so far."""
        with self._lock:
            return ToolRetrievalStats(**vars(self._stats))

    def _selector_for(self, request: ModelRequest[Any]) -> RelevantToolsRunnable | None:
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

    def select(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The request with only the selected tools (what `wrap_model_call` sends)."""
        selector = self._selector_for(request)
        if selector is None:
            return request
        function_tools = [tool for tool in request.tools if isinstance(tool, BaseTool)]
        known = {tool.name for tool in function_tools}
        missing = [name for name in self._always_include if name not in known]
        if missing:
            raise ValueError(
                f"always_include names tools the agent does not have: {missing}; its tools "
                f"are {sorted(known)}."
            )
        wanted = {match.name for match in selector.select_tools(list(request.messages))}
        wanted.update(self._always_include)
        kept = [tool for tool in function_tools if tool.name in wanted]
        provider_tools = [tool for tool in request.tools if isinstance(tool, dict)]
        offered = int(self._counter.count_tools(function_tools)) if function_tools else 0
        bound = int(self._counter.count_tools(kept)) if kept else 0
        with self._lock:
            stats = self._stats
            stats.model_calls += 1
            stats.tools_offered += len(function_tools)
            stats.tools_bound += len(kept)
            stats.schema_tokens_offered += offered
            stats.schema_tokens_bound += bound
        logger.debug("Binding %d of %d tools: %s", len(kept), len(function_tools), sorted(wanted))
        return request.override(tools=[*kept, *provider_tools])

    def wrap_model_call(self, request: ModelRequest[Any], handler: _Handler) -> ModelResponse[Any]:
        """Call the model with the selected tools bound."""
        return handler(self.select(request))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: _AsyncHandler
    ) -> ModelResponse[Any]:
        """Async `wrap_model_call` (selection is about a millisecond of CPU: inline)."""
        return await handler(self.select(request))


# ------------------------------------------------------------------------ routing


class ModelRouterMiddleware(_Middleware):
    """Send each model call of an agent to the tier a `ModelRouter` chooses.

    For every call the router's scorer rates the request (system prompt, messages and
    the tools bound to this call), the router picks the cheapest tier whose quality
    meets the need (relaxed as its budget runs low) and the call goes to that tier's
    chat model instead of the agent's. A tier that raises one of the router's
    `fallback_on` errors falls through to the next tier of the decision, exactly as
    `ModelRouter.invoke` does. The answer carries the decision in
    `response_metadata[ROUTE_KEY]`, the custom event `ROUTE_EVENT` is dispatched, and
    `stats()` adds the decisions up (`RouterStats`).

    The agent's own model (`create_agent(model, ...)`) is never called while this
    middleware is installed: pass any tier's model there.

    Args:
        router: the `ModelRouter` with the tiers, scorer, budget and fall-through rules.

    Example::

        router = ModelRouter(tiers=[Tier(mini, quality=0.3),
                                    Tier(big, quality=1.0)])
        agent = create_agent(big, tools,
            middleware=[ModelRouterMiddleware(router)])
    """

    def __init__(self, router: ModelRouter) -> None:
        super().__init__()
        if not isinstance(router, ModelRouter):
            raise TypeError(f"router must be a ModelRouter, not {type(router).__name__}.")
        self.router = router
        self._tiers = {tier.name: tier for tier in router.tiers}
        self._with_tools: OrderedDict[tuple[int, ...], ModelRouter] = OrderedDict()
        self._lock = threading.Lock()

    def stats(self) -> RouterStats:
        """The router's `stats()`: answers per tier, fallbacks, estimated cost saved.

        The middleware records its decisions in the router it was given, so these
        include any requests that router answered directly too.
        """
        return self.router.stats()

    def _router_for(self, tools: Sequence[Any]) -> ModelRouter:
        """The router with this call's tools (they count in scores and cost estimates)."""
        if not tools:
            return self.router
        key = tuple(id(tool) for tool in tools)
        with self._lock:
            router = self._with_tools.get(key)
            if router is not None:
                self._with_tools.move_to_end(key)
                return router
        router = self.router.bind_tools(list(tools))
        with self._lock:
            self._with_tools[key] = router
            while len(self._with_tools) > 64:
                self._with_tools.popitem(last=False)
        return router

    @staticmethod
    def _messages(request: ModelRequest[Any]) -> list[BaseMessage]:
        head = [request.system_message] if request.system_message is not None else []
        return [*head, *request.messages]

    def _record(
        self, decision: RouteDecision, answered: Tier | None, failed: list[str]
    ) -> dict[str, Any]:
        return self.router.record(decision, None if answered is None else answered.name, failed)

    @staticmethod
    def _stamp(response: ModelResponse[Any], metadata: dict[str, Any]) -> ModelResponse[Any]:
        result = [
            m.model_copy(update={"response_metadata": {**m.response_metadata, ROUTE_KEY: metadata}})
            if isinstance(m, AIMessage)
            else m
            for m in response.result
        ]
        return ModelResponse(result=result, structured_response=response.structured_response)

    def _failed(self, tier: Tier, error: BaseException, left: int) -> None:
        logger.warning(
            "Tier %r failed (%s: %s): %s",
            tier.name,
            type(error).__name__,
            error,
            "falling through to the next tier" if left else "no tier left",
        )

    def wrap_model_call(self, request: ModelRequest[Any], handler: _Handler) -> ModelResponse[Any]:
        """Call the chosen tier's model; on a failure, the next tier of the decision."""
        config = ensure_config()
        decision = self._router_for(request.tools).route(self._messages(request), config)
        failed: list[str] = []
        last_error: BaseException | None = None
        for position, name in enumerate(decision.order):
            tier = self._tiers[name]
            try:
                response = handler(request.override(model=tier.model))
            except self.router.fallback_on as exc:
                failed.append(name)
                last_error = exc
                self._failed(tier, exc, len(decision.order) - position - 1)
                continue
            metadata = self._record(decision, tier, failed)
            _dispatch(metadata, config)
            return self._stamp(response, metadata)
        _dispatch(self._record(decision, None, failed), config)
        assert last_error is not None
        raise last_error

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: _AsyncHandler
    ) -> ModelResponse[Any]:
        """Async `wrap_model_call` (a SQLite or Redis budget is read in a thread)."""
        config = ensure_config()
        decision = await self._router_for(request.tools).aroute(self._messages(request), config)
        failed: list[str] = []
        last_error: BaseException | None = None
        for position, name in enumerate(decision.order):
            tier = self._tiers[name]
            try:
                response = await handler(request.override(model=tier.model))
            except self.router.fallback_on as exc:
                failed.append(name)
                last_error = exc
                self._failed(tier, exc, len(decision.order) - position - 1)
                continue
            metadata = self._record(decision, tier, failed)
            await _adispatch(metadata, config)
            return self._stamp(response, metadata)
        await _adispatch(self._record(decision, None, failed), config)
        assert last_error is not None
        raise last_error


def _dispatch(metadata: dict[str, Any], config: Any) -> None:
    try:
        dispatch_custom_event(ROUTE_EVENT, metadata, config=config)
    except RuntimeError:  # called outside a run (no parent run to attach the event to)
        logger.debug("No parent run: route event not dispatched.")


async def _adispatch(metadata: dict[str, Any], config: Any) -> None:
    try:
        await adispatch_custom_event(ROUTE_EVENT, metadata, config=config)
    except RuntimeError:
        logger.debug("No parent run: route event not dispatched.")


# --------------------------------------------------------------------- compression


@dataclass
class CompressionStats:
    """Tool outputs `CompressionMiddleware` compressed, and their exact token counts."""

    tool_messages: int = 0
    tokens_before: int = 0
    tokens_after: int = 0

    @property
    def tokens_saved(self) -> int:
        """Tokens the compressed outputs no longer cost, on every later model call."""
        return self.tokens_before - self.tokens_after


class CompressionMiddleware(_Middleware):
    """Compress tool outputs before they enter the agent state.

    A tool's output is re-sent on every later model call of the run, so a token
    saved there is saved many times. Each `ToolMessage` a tool returns (also inside a
    `Command` update) goes through `PromptCompressor`: at the default "lossless" level
    only whitespace runs, markdown emphasis and JSON indentation go, and code, URLs,
    quotes and numbers are kept byte for byte. Artifacts and non-text blocks are
    untouched.

    Args:
        compressor: the `PromptCompressor` to use (default: a new one at `level`).
        level: "lossless" (default), "light" or "aggressive" (these two drop words).
        model: tokenizer that counts the tokens saved (`stats`).

    Example::

        from langchain.agents import create_agent
        agent = create_agent(llm, tools=[search],
            middleware=[CompressionMiddleware()])
    """

    def __init__(
        self,
        compressor: PromptCompressor | None = None,
        *,
        level: CompressionLevel = "lossless",
        model: str = "gpt-4o",
    ) -> None:
        super().__init__()
        if compressor is not None and not isinstance(compressor, PromptCompressor):
            raise TypeError(
                f"compressor must be a PromptCompressor, not {type(compressor).__name__}."
            )
        self.compressor = compressor or PromptCompressor(level=level, model=model)
        self._lock = threading.Lock()
        self._stats = CompressionStats()

    @property
    def stats(self) -> CompressionStats:
        """A copy of the totals so far."""
        with self._lock:
            return CompressionStats(**vars(self._stats))

    def compress(self, result: ToolMessage | Command[Any]) -> ToolMessage | Command[Any]:
        """A tool's result with its `ToolMessage` text compressed."""
        if isinstance(result, ToolMessage):
            return self._compress_message(result)
        update = getattr(result, "update", None)
        if isinstance(update, Mapping) and isinstance(update.get("messages"), list):
            messages = [
                self._compress_message(m) if isinstance(m, ToolMessage) else m
                for m in update["messages"]
            ]
            return Command(
                graph=result.graph,
                update={**update, "messages": messages},
                resume=result.resume,
                goto=result.goto,
            )
        return result

    def _compress_message(self, message: ToolMessage) -> ToolMessage:
        compressed = self.compressor.compress_message(message)
        counter = self.compressor.token_counter
        before = int(counter.count_message(message))
        after = int(counter.count_message(compressed)) if compressed is not message else before
        with self._lock:
            self._stats.tool_messages += 1
            self._stats.tokens_before += before
            self._stats.tokens_after += after
        assert isinstance(compressed, ToolMessage)
        return compressed

    def wrap_tool_call(
        self, request: ToolCallRequest, handler: _ToolHandler
    ) -> ToolMessage | Command[Any]:
        """Run the tool, then compress what it returned."""
        return self.compress(handler(request))

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: _AsyncToolHandler
    ) -> ToolMessage | Command[Any]:
        """Async `wrap_tool_call` (compression is CPU work, done inline)."""
        return self.compress(await handler(request))


# ------------------------------------------------------------------- summarizing


@dataclass
class SummarizingStats:
    """Tokens `SummarizingMiddleware` sent, against what the full conversation costs.

    Counts are exact (`TokenCounter`) for the messages, system prompt included, without
    tool schemas.
    """

    model_calls: int = 0
    full_tokens: int = 0
    sent_tokens: int = 0

    @property
    def tokens_saved(self) -> int:
        """Message tokens not sent."""
        return self.full_tokens - self.sent_tokens


class SummarizingMiddleware(_Middleware):
    """Send the model a running summary and the recent turns, within `max_tokens`.

    Each model call is sent the agent's system prompt, a summary of the older turns
    and the newest turns, and `TokenCounter(model).count_messages(...)` of that is at
    most `max_tokens` (system prompt included, tool schemas not). The summary is
    incremental: when turns leave the window they are folded into it, and a fold sees
    only the previous summary and those turns, so its cost does not grow with the
    conversation. Between folds the summary is byte-identical (provider prompt
    caches keep hitting). An assistant message with tool calls and its tool results
    are always kept or folded together, and the window never starts with a tool result.

    Without `summary_model` the summary is extractive (offline, no tokens spent); with
    one, an `LLMSummarizer` writes it. The agent's state keeps every message: only
    what each call sends is shortened. Conversations are told apart by LangGraph
    `thread_id` (else the id of their first message); summary state lives in
    `state_store` (default in memory; pass a `SQLiteStore` / `RedisStore` to resume
    summaries after a restart without re-folding).

    This is `SummarizingChatMessageHistory` (see `history.py`) applied to agent state;
    LangChain's `SummarizationMiddleware` instead rewrites the state, re-summarizes
    from the full message list and counts tokens approximately.

    Args:
        max_tokens: budget of the messages sent per call (>= 16 plus the system prompt).
        model: tokenizer and chat framing that count tokens.
        summary_model: a chat model (or Runnable) that writes the summary; default:
            `ExtractiveSummarizer`.
        target_ratio: after a fold, the window is at most this share of the budget.
        max_summary_tokens: cap on the summary (default: 40% of the budget).
        summary_role: message type of the summary ("system", "human" or "ai").
        state_store: where summaries are kept.
        namespace: key prefix of the summaries in `state_store`.
        max_sessions: conversations kept in memory (least recently used go first).

    Example::

        from langchain.agents import create_agent
        agent = create_agent(llm, tools=tools,
            middleware=[SummarizingMiddleware(max_tokens=3000)])
    """

    def __init__(
        self,
        max_tokens: int = 4000,
        *,
        model: str = "gpt-4o",
        summary_model: Runnable[Any, Any] | BaseLanguageModel[Any] | None = None,
        target_ratio: float = 0.6,
        max_summary_tokens: int | None = None,
        summary_role: SummaryRole = "system",
        state_store: Store | None = None,
        namespace: str = "tokenopt:agent",
        max_sessions: int = 1024,
    ) -> None:
        super().__init__()
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise TypeError(f"max_tokens must be an int, not {type(max_tokens).__name__}.")
        if max_tokens < MIN_BUDGET_TOKENS:
            raise ValueError(f"max_tokens must be at least {MIN_BUDGET_TOKENS}, not {max_tokens}.")
        self.max_tokens = max_tokens
        self.token_counter = TokenCounter(model)
        self._windows = _ConversationWindows(
            token_counter=self.token_counter,
            summarizer=summary_model,
            target_ratio=target_ratio,
            max_summary_tokens=max_summary_tokens,
            summary_role=summary_role,
            state_store=state_store,
            namespace=namespace,
            max_sessions=max_sessions,
        )
        self._lock = threading.Lock()
        self._stats = SummarizingStats()

    @property
    def stats(self) -> SummarizingStats:
        """A copy of the totals so far."""
        with self._lock:
            return SummarizingStats(**vars(self._stats))

    def _budget(self, request: ModelRequest[Any]) -> int:
        return self.max_tokens - _system_tokens(self.token_counter, request.system_message)

    def _record(self, request: ModelRequest[Any], view: list[BaseMessage]) -> ModelRequest[Any]:
        head = [request.system_message] if request.system_message is not None else []
        full = int(self.token_counter.count_messages([*head, *request.messages]))
        sent = int(self.token_counter.count_messages([*head, *view])) if view else full
        with self._lock:
            self._stats.model_calls += 1
            self._stats.full_tokens += full
            self._stats.sent_tokens += sent
        if not view:  # a budget below the system prompt: send what we have, logged
            logger.warning("max_tokens=%d leaves no room after the system prompt.", self.max_tokens)
            return request
        return request.override(messages=_as_any(view))

    def wrap_model_call(self, request: ModelRequest[Any], handler: _Handler) -> ModelResponse[Any]:
        """Call the model with the summary and the recent turns."""
        view = self._windows.view(request.messages, self._budget(request))
        return handler(self._record(request, view))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: _AsyncHandler
    ) -> ModelResponse[Any]:
        """Async `wrap_model_call` (an LLM summarizer is awaited natively)."""
        view = await self._windows.aview(request.messages, self._budget(request))
        return await handler(self._record(request, view))


def _as_any(messages: list[BaseMessage]) -> list[AnyMessage]:
    return messages  # type: ignore[return-value]  # every BaseMessage the history returns is one of AnyMessage's


# -------------------------------------------------------------------------- budget


def _default_final_message(reason: BudgetRemaining | BudgetExceededError) -> str:
    if isinstance(reason, BudgetExceededError):
        detail = str(reason)
        resets_at = reason.resets_at
    else:
        detail = "Budget spent."
        resets_at = reason.resets_at
    when = f" It resets at {resets_at.isoformat()}." if resets_at is not None else ""
    return (
        "I have to stop here: this assistant's token budget is used up, so I cannot make "
        f"another model call.{when} ({detail})"
    )


class TokenBudgetMiddleware(_Middleware):
    """Keep an agent inside a `TokenBudget`: shrink its context, then stop it cleanly.

    Before each model call:

    - if the budget is spent, the run ends at once with a final `AIMessage` saying so
      (`jump_to="end"`), instead of an exception in the middle of a run;
    - the conversation sent is shrunk to `budget.context_tokens_for(...)` tokens (a
      summary plus the newest turns, as in `SummarizingMiddleware`), so a budget
      running low buys more, smaller calls;
    - the call's worst case (exact input tokens plus its `max_tokens`) is reserved; if
      it does not fit, the call is not made and the final message ends the run.

    After the call the reservation is settled with the reported usage (a cache hit
    releases it). Give the budget to this middleware only, not also as a callback, or
    calls are counted twice.

    Args:
        budget: the `TokenBudget` to enforce (shared through its `Store` if you like).
        model: model name for pricing and counting when the chat model has none.
        shrink_context: shrink the conversation as the budget runs low.
        share, min_context_tokens, max_context_tokens: see
            `TokenBudget.context_tokens_for`.
        final_message: text of the final message, or a function of what stopped the
            run (`BudgetRemaining` or `BudgetExceededError`) returning it.
        summary_model: writes the summary when shrinking (default: extractive).
        state_store, namespace, max_sessions: as in `SummarizingMiddleware`.

    Example::

        from langchain.agents import create_agent
        budget = TokenBudget(max_tokens=50_000, window="day")
        agent = create_agent(llm, tools=tools,
            middleware=[TokenBudgetMiddleware(budget)])
    """

    def __init__(
        self,
        budget: TokenBudget,
        *,
        model: str | None = None,
        shrink_context: bool = True,
        share: float = 0.05,
        min_context_tokens: int = 256,
        max_context_tokens: int = 8000,
        final_message: str | Callable[[BudgetRemaining | BudgetExceededError], str] | None = None,
        summary_model: Runnable[Any, Any] | BaseLanguageModel[Any] | None = None,
        state_store: Store | None = None,
        namespace: str = "tokenopt:agent-budget",
        max_sessions: int = 1024,
    ) -> None:
        super().__init__()
        if not isinstance(budget, TokenBudget):
            raise TypeError(f"budget must be a TokenBudget, not {type(budget).__name__}.")
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        if min_context_tokens < MIN_BUDGET_TOKENS or max_context_tokens < min_context_tokens:
            raise ValueError(
                f"need {MIN_BUDGET_TOKENS} <= min_context_tokens <= max_context_tokens, got "
                f"{min_context_tokens} and {max_context_tokens}."
            )
        self.budget = budget
        self.model = model
        self.shrink_context = shrink_context
        self._share = share
        self._min_context_tokens = min_context_tokens
        self._max_context_tokens = max_context_tokens
        self._final_message = final_message
        self._counters: dict[str, TokenCounter] = {}
        self._windows: dict[str, _ConversationWindows] = {}
        self._window_settings: dict[str, Any] = {
            "summarizer": summary_model,
            "target_ratio": 0.6,
            "max_summary_tokens": None,
            "summary_role": "system",
            "state_store": state_store,
            "namespace": namespace,
            "max_sessions": max_sessions,
        }
        self._lock = threading.RLock()
        self.stopped_runs = 0
        """How many times the middleware ended a run because the budget was spent."""

    # -- pieces ---------------------------------------------------------------------------

    def _counter(self, model: str | None) -> TokenCounter:
        key = model or ""
        with self._lock:
            counter = self._counters.get(key)
            if counter is None:
                counter = TokenCounter(model) if model else TokenCounter()
                self._counters[key] = counter
            return counter

    def _window(self, model: str | None) -> _ConversationWindows:
        key = model or ""
        with self._lock:
            windows = self._windows.get(key)
            if windows is None:
                windows = _ConversationWindows(
                    token_counter=self._counter(model), **self._window_settings
                )
                self._windows[key] = windows
            return windows

    @staticmethod
    def _agent() -> str:
        config = ensure_config()
        return resolve_agent(config.get("metadata") or {}, config.get("tags") or [], None)

    def _agent_scope(self) -> str | None:
        return self._agent() if self.budget.per_agent else None

    @staticmethod
    def _spent(remaining: BudgetRemaining) -> bool:
        return remaining.tokens == 0 or (remaining.cost_usd is not None and remaining.cost_usd <= 0)

    def _final(self, reason: BudgetRemaining | BudgetExceededError) -> AIMessage:
        with self._lock:
            self.stopped_runs += 1
        if isinstance(self._final_message, str):
            text = self._final_message
        elif callable(self._final_message):
            text = self._final_message(reason)
        else:
            text = _default_final_message(reason)
        return AIMessage(text, response_metadata={"tokenopt_budget_stop": True})

    def _request_model(self, request: ModelRequest[Any]) -> str | None:
        return _model_name(request.model) or self.model

    def _context_budget(self, remaining: BudgetRemaining, model: str | None) -> int:
        return self.budget.context_tokens_for(
            remaining,
            model=model,
            share=self._share,
            min_context_tokens=self._min_context_tokens,
            max_context_tokens=self._max_context_tokens,
        )

    def _call_start(self, request: ModelRequest[Any], model: str | None) -> CallStart:
        head = [request.system_message] if request.system_message is not None else []
        settings = request.model_settings
        max_output = settings.get("max_tokens") or settings.get("max_completion_tokens")
        if max_output is None:
            for attribute in ("max_tokens", "max_completion_tokens"):
                value = getattr(request.model, attribute, None)
                if isinstance(value, int) and not isinstance(value, bool):
                    max_output = value
                    break
        return CallStart(
            run_id=uuid.uuid4(),
            parent_run_id=None,
            agent=self._agent(),
            model=model,
            provider=None,
            tags=(),
            metadata={},
            name=None,
            messages=[*head, *request.messages],
            prompts=None,
            tools=list(request.tools),
            max_output_tokens=max_output if isinstance(max_output, int) else None,
        )

    def _settle(self, call: CallStart, response: ModelResponse[Any]) -> None:
        message = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
        if message is None:
            self.budget.release(call.run_id)
            return
        if message.response_metadata.get(CACHE_HIT_KEY):
            self.budget.release(call.run_id)
            return
        model = message.response_metadata.get("model_name") or call.model
        if message.usage_metadata:
            usage = usage_from_metadata(message.usage_metadata)
        else:
            counter = self._counter(call.model)
            assert call.messages is not None
            usage = Usage(
                input_tokens=int(counter.count_messages(call.messages, tools=call.tools or None)),
                output_tokens=int(counter.count_messages([message]))
                - int(counter.count_messages([])),
            )
        self.budget.settle(call.run_id, usage, model=model if isinstance(model, str) else None)

    def _prepare(self, request: ModelRequest[Any], view: list[BaseMessage]) -> ModelRequest[Any]:
        if not self.shrink_context or not view:
            return request
        return request.override(messages=_as_any(view))

    def _view_budget(self, request: ModelRequest[Any], remaining: BudgetRemaining) -> int:
        model = self._request_model(request)
        context = self._context_budget(remaining, model)
        return context - _system_tokens(self._counter(model), request.system_message)

    # -- hooks ----------------------------------------------------------------------------

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """End the run with a final message if the budget is already spent."""
        remaining = self.budget.remaining(self._agent_scope())
        if self._spent(remaining):
            return {"jump_to": "end", "messages": [self._final(remaining)]}
        return None

    @hook_config(can_jump_to=["end"])
    async def abefore_model(
        self, state: AgentState[Any], runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async `before_model` (a SQLite or Redis budget is read in a thread)."""
        if self.budget.run_inline:
            return self.before_model(state, runtime)
        result: dict[str, Any] | None = await run_in_executor(
            None, self.before_model, state, runtime
        )
        return result

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: _Handler
    ) -> ModelResponse[Any] | AIMessage:
        """Shrink the context to what the budget affords, reserve, call, settle."""
        remaining = self.budget.remaining(self._agent_scope())
        if self.shrink_context:
            view = self._window(self._request_model(request)).view(
                request.messages, self._view_budget(request, remaining)
            )
            request = self._prepare(request, view)
        call = self._call_start(request, self._request_model(request))
        try:
            self.budget.reserve(call)
        except BudgetExceededError as exc:
            return self._final(exc)
        try:
            response = handler(request)
        except BaseException:
            self.budget.release(call.run_id)
            raise
        self._settle(call, response)
        return response

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: _AsyncHandler
    ) -> ModelResponse[Any] | AIMessage:
        """Async `wrap_model_call`; budget I/O runs in a thread unless in memory."""
        inline = self.budget.run_inline

        async def io(function: Callable[..., Any], *args: Any) -> Any:
            return function(*args) if inline else await run_in_executor(None, function, *args)

        remaining: BudgetRemaining = await io(self.budget.remaining, self._agent_scope())
        if self.shrink_context:
            view = await self._window(self._request_model(request)).aview(
                request.messages, self._view_budget(request, remaining)
            )
            request = self._prepare(request, view)
        call = self._call_start(request, self._request_model(request))
        try:
            await io(self.budget.reserve, call)
        except BudgetExceededError as exc:
            return self._final(exc)
        try:
            response = await handler(request)
        except BaseException:
            await io(self.budget.release, call.run_id)
            raise
        await io(self._settle, call, response)
        return response
