"""`SummaryRecallMiddleware`: send each model call of an agent a running summary, the
older turns relevant to the question and the recent turns, counted exactly, never
splitting a tool call from its result; the summary state lives in agent state."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.runnables import Runnable
from typing_extensions import NotRequired

from langchain_tokenopt.chat_history.planner import MIN_BUDGET_TOKENS, SummaryRole
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import finite_number, instance_of, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError
from langchain_tokenopt.middleware._base import (
    AgentMiddleware,
    AgentState,
    AsyncHandler,
    Command,
    ExtendedModelResponse,
    Handler,
    ModelRequest,
    OmitFromInput,
    Totals,
    as_any,
    system_tokens,
)
from langchain_tokenopt.middleware._context import ContextWindow, PlannedContext

if TYPE_CHECKING:
    from langchain_tokenopt.middleware._base import ModelResponse

__all__ = [
    "RECALLED_KEY",
    "SUMMARY_KEY",
    "SummarizingState",
    "SummaryRecallMiddleware",
    "SummaryRecallStats",
]

logger = logging.getLogger(__name__)

#: Agent state key of the summary state (`SummaryState.to_json()`), saved by the checkpointer.
SUMMARY_KEY = "tokenopt_summary"
#: Agent state key of the ids of the messages the latest model call recalled.
RECALLED_KEY = "tokenopt_recalled"


class SummarizingState(AgentState[Any]):
    """The agent state keys `SummaryRecallMiddleware` adds (not part of the input)."""

    tokenopt_summary: NotRequired[Annotated[dict[str, Any], OmitFromInput]]
    tokenopt_recalled: NotRequired[Annotated[list[str], OmitFromInput]]


@dataclass
class SummaryRecallStats:
    """Tokens `SummaryRecallMiddleware` sent, against what the full conversation costs.

    Counts are exact (`TokenCounter`) for the messages, system prompt included, without
    tool schemas. `recalled_messages` counts older messages quoted into calls because
    they looked relevant to the user's turn; `calls_with_recall` the calls that had any.
    """

    model_calls: int = 0
    full_tokens: int = 0
    sent_tokens: int = 0
    recalled_messages: int = 0
    calls_with_recall: int = 0

    @property
    def tokens_saved(self) -> int:
        """Message tokens not sent."""
        return self.full_tokens - self.sent_tokens


class SummaryRecallMiddleware(AgentMiddleware[SummarizingState, Any, Any]):
    """Send the model a running summary, relevant older turns and the recent turns,
    within `max_tokens`.

    Each model call is sent the agent's system prompt, a summary of the older turns,
    the older messages that look relevant to the user's pending turn (recall) and the
    newest turns, and `TokenCounter(model).count_messages(...)` of that is at most
    `max_tokens` (system prompt included, tool schemas not). The agent state keeps
    every message: only what each call sends is shortened.

    - **Summary**: when turns leave the window they are folded into it; a fold sees
      only the previous summary and those turns, so its cost does not grow with the
      conversation. Between folds the system prompt + summary are a byte-identical
      prefix (provider prompt caches keep hitting).
    - **Recall** (`recall=True`, the default): while a user turn waits for its answer,
      up to `recall_share` of the room is offered to older messages (folded or just
      out of the window) that a TF-IDF index of the conversation finds like it; they
      are quoted in one message after the summary, before the recent turns, which
      says what it is. The ids of the recalled messages are written to agent state
      under `"tokenopt_recalled"` after each call; `stats.recalled_messages` counts them.
    - **Tool calls**: an assistant message with tool calls and its tool results are
      always kept or folded together, and the window never starts with a tool result.
    - **State in the checkpoint**: the summary state is written to agent state under
      `"tokenopt_summary"` with the model's answer (`ExtendedModelResponse` with a
      `Command`), so the graph's checkpointer (`InMemorySaver`, the SQLite or Postgres
      savers) persists it per thread: another worker, a restarted process or another
      agent object on the same checkpointer continues the same summary, and threads
      never share one. Without a checkpointer the state lasts one `invoke`.

    Without `summary_model` the summary is extractive (offline, no tokens spent); with
    one, an `LLMSummarizer` writes it. If it fails, the call is trimmed to the budget
    and the fold is retried at the next call.

    Which to choose: this middleware for agents built with `create_agent` (state in
    the checkpoint, as LangChain's short-term memory recommends);
    `SummarizingChatMessageHistory` for LCEL chains that keep a
    `BaseChatMessageHistory` (a class langchain-core deprecates for removal in 2.0).
    LangChain's own `SummarizationMiddleware` instead rewrites the state, re-summarizes
    from the full message list and counts tokens approximately.

    Args:
        max_tokens: budget of the messages sent per call (>= 16 plus the system prompt).
        model: tokenizer and chat framing that count tokens.
        summary_model: a chat model (or Runnable) that writes the summary; default:
            `ExtractiveSummarizer`.
        target_ratio: after a fold, the window is at most this share of the budget.
        max_summary_tokens: cap on the summary (default: half of the budget).
        summary_role: message type of the summary and the recalled text ("system",
            "human" or "ai").
        recall: quote older messages relevant to the user's pending turn.
        recall_share: most of the room (after the system prompt and the summary) that
            recalled messages may take.

    Example:
        >>> from langchain.agents import create_agent
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> middleware = SummaryRecallMiddleware(max_tokens=3000)
        >>> llm = GenericFakeChatModel(messages=iter(["Hi!"]))
        >>> agent = create_agent(llm, middleware=[middleware])
        >>> result = agent.invoke({"messages": [("user", "hello")]})
        >>> result["messages"][-1].content, result["tokenopt_summary"]["covered"]
        ('Hi!', 0)
        >>> middleware.stats.model_calls, middleware.stats.tokens_saved
        (1, 0)
    """

    state_schema = SummarizingState

    def __init__(
        self,
        max_tokens: int = 4000,
        *,
        model: str = "gpt-4o",
        summary_model: Runnable[Any, Any] | BaseLanguageModel[Any] | None = None,
        target_ratio: float = 0.6,
        max_summary_tokens: int | None = None,
        summary_role: SummaryRole = "system",
        recall: bool = True,
        recall_share: float = 0.25,
    ) -> None:
        super().__init__()
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise ArgumentTypeError(f"max_tokens must be an int, not {type(max_tokens).__name__}.")
        if max_tokens < MIN_BUDGET_TOKENS:
            raise InvalidArgumentError(
                f"max_tokens must be at least {MIN_BUDGET_TOKENS}, not {max_tokens}."
            )
        finite_number(target_ratio, "target_ratio", above=0, maximum=1, hint="e.g. 0.6")
        finite_number(recall_share, "recall_share", above=0, maximum=1, hint="e.g. 0.25")
        instance_of(recall, "recall", bool, "True or False")
        if summary_role not in ("system", "human", "ai"):
            raise InvalidArgumentError(
                f"summary_role must be system, human or ai, not {shown(summary_role)}."
            )
        self.max_tokens = max_tokens
        self.token_counter = TokenCounter(model)
        self._window = ContextWindow(
            token_counter=self.token_counter,
            summarizer=summary_model,
            target_ratio=target_ratio,
            max_summary_tokens=max_summary_tokens,
            summary_role=summary_role,
            recall=recall,
            recall_share=recall_share,
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

    def _with_view(self, request: ModelRequest[Any], planned: PlannedContext) -> ModelRequest[Any]:
        """The request sending the planned view instead of the whole conversation."""
        view = planned.view
        system = system_tokens(self.token_counter, request.system_message)
        full = planned.full_tokens + system
        self._totals.add(
            model_calls=1,
            full_tokens=full,
            sent_tokens=view.tokens + system if view.messages else full,
            recalled_messages=len(view.recalled),
            calls_with_recall=1 if view.recalled else 0,
        )
        if not view.messages:  # a budget below the system prompt: send what we have, logged
            logger.warning("max_tokens=%d leaves no room after the system prompt.", self.max_tokens)
            return request
        return request.override(messages=as_any(view.messages))

    @staticmethod
    def _answer(
        response: ModelResponse[Any], planned: PlannedContext
    ) -> ExtendedModelResponse[Any]:
        """The model's answer with the state update: summary state and recalled ids."""
        update = planned.state_update(SUMMARY_KEY)
        update[RECALLED_KEY] = [i for i in planned.view.recalled_ids if i is not None]
        return ExtendedModelResponse(model_response=response, command=Command(update=update))

    # -- the recipe: plan from state, call with the view, save the state ----------------

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Handler
    ) -> ExtendedModelResponse[Any]:
        """Call the model with the summary, recalled and recent turns; save the state."""
        saved = request.state.get(SUMMARY_KEY)
        planned = self._window.plan(request.messages, saved, self._budget(request))
        return self._answer(handler(self._with_view(request, planned)), planned)

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: AsyncHandler
    ) -> ExtendedModelResponse[Any]:
        """Async `wrap_model_call` (an LLM summarizer is awaited natively)."""
        saved = request.state.get(SUMMARY_KEY)
        planned = await self._window.aplan(request.messages, saved, self._budget(request))
        return self._answer(await handler(self._with_view(request, planned)), planned)
