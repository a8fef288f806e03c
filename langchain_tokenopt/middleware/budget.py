"""`TokenBudgetMiddleware`: keep an agent inside a `TokenBudget`, shrinking its context
as the budget runs low and ending the run with a clear message when it is spent."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import ensure_config, run_in_executor
from typing_extensions import NotRequired

from langchain_tokenopt.callbacks.budget import BudgetRemaining, TokenBudget
from langchain_tokenopt.chat_history.planner import MIN_BUDGET_TOKENS
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import CallStart, Usage, resolve_agent
from langchain_tokenopt.core.validation import finite_number, int_in_range
from langchain_tokenopt.errors import ArgumentTypeError, BudgetExceededError, InvalidArgumentError
from langchain_tokenopt.middleware._base import (
    AgentMiddleware,
    AgentState,
    AsyncHandler,
    Command,
    ExtendedModelResponse,
    Handler,
    ModelRequest,
    ModelResponse,
    OmitFromInput,
    as_any,
    hook_config,
    model_name,
    sent_messages,
    system_tokens,
)
from langchain_tokenopt.middleware._context import ContextWindow, PlannedContext

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

__all__ = ["BUDGET_SUMMARY_KEY", "TokenBudgetMiddleware", "TokenBudgetState"]

#: Agent state key of the summary state of the shrunk context, saved by the checkpointer.
BUDGET_SUMMARY_KEY = "tokenopt_budget_summary"

_T = TypeVar("_T")

FinalMessage = str | Callable[[BudgetRemaining | BudgetExceededError], str]


def _default_final_message(reason: BudgetRemaining | BudgetExceededError) -> str:
    detail = str(reason) if isinstance(reason, BudgetExceededError) else "Budget spent."
    when = f" It resets at {reason.resets_at.isoformat()}." if reason.resets_at is not None else ""
    return (
        "I have to stop here: this assistant's token budget is used up, so I cannot make "
        f"another model call.{when} ({detail})"
    )


def _max_output_tokens(request: ModelRequest[Any]) -> int | None:
    """The call's output cap: its model settings, else the chat model's attribute."""
    settings = request.model_settings
    max_output = settings.get("max_tokens") or settings.get("max_completion_tokens")
    if max_output is None:
        for attribute in ("max_tokens", "max_completion_tokens"):
            value = getattr(request.model, attribute, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return max_output if isinstance(max_output, int) else None


def _current_agent() -> str:
    config = ensure_config()
    return resolve_agent(config.get("metadata") or {}, config.get("tags") or [], None)


def _spent(remaining: BudgetRemaining) -> bool:
    return remaining.tokens == 0 or (remaining.cost_usd is not None and remaining.cost_usd <= 0)


class TokenBudgetState(AgentState[Any]):
    """The agent state key `TokenBudgetMiddleware` adds (not part of the input)."""

    tokenopt_budget_summary: NotRequired[Annotated[dict[str, Any], OmitFromInput]]


class TokenBudgetMiddleware(AgentMiddleware[TokenBudgetState, Any, Any]):
    """Keep an agent inside a `TokenBudget`: shrink its context, then stop it cleanly.

    Before each model call:

    - if the budget is spent, the run ends at once with a final `AIMessage` saying so
      (`jump_to="end"`), instead of an exception in the middle of a run;
    - the conversation sent is shrunk to `budget.context_tokens_for(...)` tokens (a
      summary, relevant older turns and the newest turns, as in
      `SummaryRecallMiddleware`, with the summary state in agent state under
      `"tokenopt_budget_summary"`), so a budget running low buys more, smaller calls;
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
        recall: quote older messages relevant to the user's turn when shrinking.

    Example:
        >>> from langchain.agents import create_agent
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> budget = TokenBudget(max_tokens=50_000, window="day")
        >>> llm = GenericFakeChatModel(messages=iter(["Hi!"]))
        >>> agent = create_agent(llm, middleware=[TokenBudgetMiddleware(budget, model="gpt-4o")])
        >>> agent.invoke({"messages": [("user", "hello")]})["messages"][-1].content
        'Hi!'
        >>> budget.remaining().tokens < 50_000
        True
    """

    state_schema = TokenBudgetState

    def __init__(
        self,
        budget: TokenBudget,
        *,
        model: str | None = None,
        shrink_context: bool = True,
        share: float = 0.05,
        min_context_tokens: int = 256,
        max_context_tokens: int = 8000,
        final_message: FinalMessage | None = None,
        summary_model: Runnable[Any, Any] | BaseLanguageModel[Any] | None = None,
        recall: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(budget, TokenBudget):
            raise ArgumentTypeError(f"budget must be a TokenBudget, not {type(budget).__name__}.")
        finite_number(share, "share", above=0, maximum=1, hint="e.g. 0.05")
        int_in_range(min_context_tokens, "min_context_tokens", minimum=MIN_BUDGET_TOKENS)
        int_in_range(max_context_tokens, "max_context_tokens", minimum=MIN_BUDGET_TOKENS)
        if min_context_tokens < MIN_BUDGET_TOKENS or max_context_tokens < min_context_tokens:
            raise InvalidArgumentError(
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
        self._windows: dict[str, ContextWindow] = {}
        self._window_settings: dict[str, Any] = {
            "summarizer": summary_model,
            "target_ratio": 0.6,
            "max_summary_tokens": None,
            "summary_role": "system",
            "recall": recall,
            "recall_share": 0.25,
        }
        self._lock = threading.RLock()
        self.stopped_runs = 0
        """How many times the middleware ended a run because the budget was spent."""

    # -- steps ----------------------------------------------------------------------------

    def _per_model(self, table: dict[str, _T], model: str | None, make: Callable[[], _T]) -> _T:
        """The entry of `table` for `model`, made on first use."""
        key = model or ""
        with self._lock:
            entry = table.get(key)
            if entry is None:
                entry = table[key] = make()
            return entry

    def _counter(self, model: str | None) -> TokenCounter:
        return self._per_model(
            self._counters, model, lambda: TokenCounter(model) if model else TokenCounter()
        )

    def _window(self, model: str | None) -> ContextWindow:
        return self._per_model(
            self._windows,
            model,
            lambda: ContextWindow(token_counter=self._counter(model), **self._window_settings),
        )

    def _agent_scope(self) -> str | None:
        return _current_agent() if self.budget.per_agent else None

    def _final(self, reason: BudgetRemaining | BudgetExceededError) -> AIMessage:
        """The message that ends a run the budget cannot pay for."""
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
        return model_name(request.model) or self.model

    def _view_budget(self, request: ModelRequest[Any], remaining: BudgetRemaining) -> int:
        """Tokens the conversation may take: what the budget affords, minus the system prompt."""
        model = self._request_model(request)
        context = self.budget.context_tokens_for(
            remaining,
            model=model,
            share=self._share,
            min_context_tokens=self._min_context_tokens,
            max_context_tokens=self._max_context_tokens,
        )
        return context - system_tokens(self._counter(model), request.system_message)

    def _with_view(self, request: ModelRequest[Any], view: list[BaseMessage]) -> ModelRequest[Any]:
        """The request sending `view` instead of the whole conversation."""
        if not view:
            return request
        return request.override(messages=as_any(view))

    @staticmethod
    def _answer(
        response: ModelResponse[Any] | AIMessage, planned: PlannedContext | None
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        """The response, with the shrunk context's summary state when there is one."""
        if planned is None or isinstance(response, AIMessage):
            return response
        update = planned.state_update(BUDGET_SUMMARY_KEY)
        return ExtendedModelResponse(model_response=response, command=Command(update=update))

    def _call_start(self, request: ModelRequest[Any]) -> CallStart:
        """What the budget reserves for: the exact request and its output cap."""
        return CallStart(
            run_id=uuid.uuid4(),
            parent_run_id=None,
            agent=_current_agent(),
            model=self._request_model(request),
            provider=None,
            tags=(),
            metadata={},
            name=None,
            messages=sent_messages(request),
            prompts=None,
            tools=list(request.tools),
            max_output_tokens=_max_output_tokens(request),
        )

    def _settle(self, call: CallStart, response: ModelResponse[Any]) -> None:
        """Charge the reported usage (counted when the reply has none); a cache hit is free."""
        message = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
        if message is None or message.response_metadata.get(CACHE_HIT_KEY):
            self.budget.release(call.run_id)
            return
        model = message.response_metadata.get("model_name") or call.model
        if message.usage_metadata:
            usage = Usage.parse(message.usage_metadata, strict=False)
        else:
            counter = self._counter(call.model)
            assert call.messages is not None
            usage = Usage(
                input_tokens=int(counter.count_messages(call.messages, tools=call.tools or None)),
                output_tokens=int(counter.count_messages([message]))
                - int(counter.count_messages([])),
            )
        self.budget.settle(call.run_id, usage, model=model if isinstance(model, str) else None)

    # -- hooks: stop when spent; shrink, reserve, call, settle --------------------------

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: TokenBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """End the run with a final message if the budget is already spent."""
        remaining = self.budget.remaining(self._agent_scope())
        if _spent(remaining):
            return {"jump_to": "end", "messages": [self._final(remaining)]}
        return None

    @hook_config(can_jump_to=["end"])
    async def abefore_model(
        self, state: TokenBudgetState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async `before_model` (a SQLite or Redis budget is read in a thread)."""
        if self.budget.run_inline:
            return self.before_model(state, runtime)
        result: dict[str, Any] | None = await run_in_executor(
            None, self.before_model, state, runtime
        )
        return result

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Handler
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        """Shrink the context to what the budget affords, reserve, call, settle."""
        return self._answer(*self._call(request, handler))

    def _call(
        self, request: ModelRequest[Any], handler: Handler
    ) -> tuple[ModelResponse[Any] | AIMessage, PlannedContext | None]:
        remaining = self.budget.remaining(self._agent_scope())
        planned = None
        if self.shrink_context:
            planned = self._window(self._request_model(request)).plan(
                request.messages,
                request.state.get(BUDGET_SUMMARY_KEY),
                self._view_budget(request, remaining),
            )
            request = self._with_view(request, planned.view.messages)
        call = self._call_start(request)
        try:
            self.budget.reserve(call)
        except BudgetExceededError as exc:
            return self._final(exc), None
        try:
            response = handler(request)
        except BaseException:
            self.budget.release(call.run_id)
            raise
        self._settle(call, response)
        return response, planned

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: AsyncHandler
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        """Async `wrap_model_call`; budget I/O runs in a thread unless in memory."""
        return self._answer(*await self._acall(request, handler))

    async def _acall(
        self, request: ModelRequest[Any], handler: AsyncHandler
    ) -> tuple[ModelResponse[Any] | AIMessage, PlannedContext | None]:
        inline = self.budget.run_inline

        async def io(function: Callable[..., Any], *args: Any) -> Any:
            return function(*args) if inline else await run_in_executor(None, function, *args)

        remaining: BudgetRemaining = await io(self.budget.remaining, self._agent_scope())
        planned = None
        if self.shrink_context:
            planned = await self._window(self._request_model(request)).aplan(
                request.messages,
                request.state.get(BUDGET_SUMMARY_KEY),
                self._view_budget(request, remaining),
            )
            request = self._with_view(request, planned.view.messages)
        call = self._call_start(request)
        try:
            await io(self.budget.reserve, call)
        except BudgetExceededError as exc:
            return self._final(exc), None
        try:
            response = await handler(request)
        except BaseException:
            await io(self.budget.release, call.run_id)
            raise
        await io(self._settle, call, response)
        return response, planned
