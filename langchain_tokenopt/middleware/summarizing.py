"""`SummaryRecallMiddleware`: send each model call of an agent a running summary plus
the recent turns, counted exactly, never splitting a tool call from its result."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable

from langchain_tokenopt.chat_history.history import SummaryRole
from langchain_tokenopt.chat_history.planner import MIN_BUDGET_TOKENS
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import finite_number
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError
from langchain_tokenopt.middleware._base import (
    AsyncHandler,
    Handler,
    Middleware,
    ModelRequest,
    ModelResponse,
    Totals,
    as_any,
    sent_messages,
    system_tokens,
)
from langchain_tokenopt.middleware._windows import ConversationWindows
from langchain_tokenopt.stores import Store

__all__ = ["SummaryRecallMiddleware", "SummaryRecallStats"]

logger = logging.getLogger(__name__)


@dataclass
class SummaryRecallStats:
    """Tokens `SummaryRecallMiddleware` sent, against what the full conversation costs.

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


class SummaryRecallMiddleware(Middleware):
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

    This is `SummarizingChatMessageHistory` applied to agent state; LangChain's
    `SummarizationMiddleware` instead rewrites the state, re-summarizes from the full
    message list and counts tokens approximately.

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

    Example:
        >>> from langchain.agents import create_agent
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> middleware = SummaryRecallMiddleware(max_tokens=3000)
        >>> llm = GenericFakeChatModel(messages=iter(["Hi!"]))
        >>> agent = create_agent(llm, middleware=[middleware])
        >>> agent.invoke({"messages": [("user", "hello")]})["messages"][-1].content
        'Hi!'
        >>> middleware.stats.model_calls, middleware.stats.tokens_saved
        (1, 0)
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
            raise ArgumentTypeError(f"max_tokens must be an int, not {type(max_tokens).__name__}.")
        if max_tokens < MIN_BUDGET_TOKENS:
            raise InvalidArgumentError(
                f"max_tokens must be at least {MIN_BUDGET_TOKENS}, not {max_tokens}."
            )
        finite_number(target_ratio, "target_ratio", above=0, maximum=1, hint="e.g. 0.6")
        self.max_tokens = max_tokens
        self.token_counter = TokenCounter(model)
        self._windows = ConversationWindows(
            token_counter=self.token_counter,
            summarizer=summary_model,
            target_ratio=target_ratio,
            max_summary_tokens=max_summary_tokens,
            summary_role=summary_role,
            state_store=state_store,
            namespace=namespace,
            max_sessions=max_sessions,
        )
        self._totals = Totals(SummaryRecallStats())

    @property
    def stats(self) -> SummaryRecallStats:
        """A copy of the totals so far."""
        return self._totals.snapshot()

    # -- steps ----------------------------------------------------------------------------

    def _budget(self, request: ModelRequest[Any]) -> int:
        """Tokens the conversation may take once the system prompt is counted."""
        return self.max_tokens - system_tokens(self.token_counter, request.system_message)

    def _record(self, request: ModelRequest[Any], view: list[BaseMessage]) -> None:
        head = [request.system_message] if request.system_message is not None else []
        full = int(self.token_counter.count_messages(sent_messages(request)))
        sent = int(self.token_counter.count_messages([*head, *view])) if view else full
        self._totals.add(model_calls=1, full_tokens=full, sent_tokens=sent)

    def _with_view(self, request: ModelRequest[Any], view: list[BaseMessage]) -> ModelRequest[Any]:
        """The request sending `view` instead of the whole conversation."""
        self._record(request, view)
        if not view:  # a budget below the system prompt: send what we have, logged
            logger.warning("max_tokens=%d leaves no room after the system prompt.", self.max_tokens)
            return request
        return request.override(messages=as_any(view))

    # -- the recipe: view within the budget, record, call -------------------------------

    def wrap_model_call(self, request: ModelRequest[Any], handler: Handler) -> ModelResponse[Any]:
        """Call the model with the summary and the recent turns."""
        view = self._windows.view(request.messages, self._budget(request))
        return handler(self._with_view(request, view))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: AsyncHandler
    ) -> ModelResponse[Any]:
        """Async `wrap_model_call` (an LLM summarizer is awaited natively)."""
        view = await self._windows.aview(request.messages, self._budget(request))
        return await handler(self._with_view(request, view))
