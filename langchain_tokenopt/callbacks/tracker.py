"""`UsageTracker`: a callback handler that records every model call as a `UsageEvent`.

It records tokens by kind, cost, latency, outcome, and cache hits as money saved,
exactly also under threads and asyncio; `report()` hands the events to
`analytics.UsageReport`. With a `TokenBudget` it also enforces a spending limit before
each request. `track_usage()` attaches a tracker to every run inside a `with` block.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_tokenopt.analytics.events import UsageEvent
from langchain_tokenopt.analytics.report import UsageReport
from langchain_tokenopt.callbacks._calls import ModelCallHandler, call_processing
from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.markers import ROUTE_EVENT
from langchain_tokenopt.core.pricing import PriceTable, Processing, price
from langchain_tokenopt.core.usage import (
    CallStart,
    Usage,
    output_text,
    prompt_hash,
    read_result,
)
from langchain_tokenopt.errors import ArgumentTypeError, UnknownModelError

__all__ = ["UsageTracker", "track_usage"]

logger = logging.getLogger(__name__)

_UTC = _dt.timezone.utc


# --------------------------------------------------------------------------- tracker


class _Started(NamedTuple):
    """What a finished call's event needs from its start (no messages: they may be big)."""

    run_id: UUID
    parent_run_id: UUID | None
    agent: str
    started_at: float
    prompt_hash: str
    task_id: str | UUID
    task_type: str | None
    tools_count: int


class _Pending(NamedTuple):
    call: CallStart  # kept only while the call runs, to estimate tokens if none come
    started: _Started
    started_perf: float


class _Record(NamedTuple):
    started: _Started
    usage: Usage
    model: str | None
    estimated: bool
    cache_hit: bool
    streamed: bool
    error_type: str | None
    latency_seconds: float
    processing: Processing = "standard"


class UsageTracker(ModelCallHandler):
    """Records tokens, cost, latency and outcome of every model call it sees.

    Attach it like any callback (`config={"callbacks": [tracker]}`, a model's
    `callbacks=`, or `with track_usage() as tracker:`); it works for sync, async,
    batched and streamed calls, and its totals are exact under threads and asyncio.
    One handler serves sync and async runs: its per-call work is a few dict operations,
    so LangChain runs it inline on the event loop (`run_inline`); pricing waits until
    events are read (`events`, `report()`). With a budget backed by SQLite or Redis it
    runs in LangChain's executor instead, so the event loop never blocks on I/O.

    Args:
        budget: a `TokenBudget` checked before each call starts and settled with the
            call's real usage; its `BudgetExceededError` stops the call before the
            request is sent.
        agent_key: names the agent of a call from its `CallStart`; returning None
            falls back to `metadata["agent"]`, an `"agent:<name>"` tag, then
            `create_agent(name=...)`, the top-level run's name (`run_name` in its
            config, else the graph's or chain's name), the call's run name, `"default"`.
        prices: a `PriceTable` with your own prices; default genai-prices.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage
        >>> reply = AIMessage("hi", usage_metadata={
        ...     "input_tokens": 10, "output_tokens": 2, "total_tokens": 12})
        >>> model = GenericFakeChatModel(messages=iter([reply]))
        >>> tracker = UsageTracker()
        >>> _ = model.invoke("hello", config={"callbacks": [tracker],
        ...                                   "metadata": {"agent": "greeter"}})
        >>> tracker.report().by_agent["greeter"].input_tokens
        10
    """

    def __init__(
        self,
        *,
        budget: TokenBudget | None = None,
        agent_key: Callable[[CallStart], str | None] | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        if budget is not None and not isinstance(budget, TokenBudget):
            raise ArgumentTypeError(f"budget must be a TokenBudget, got {type(budget).__name__}")
        if agent_key is not None and not callable(agent_key):
            raise ArgumentTypeError("agent_key must be a function of a CallStart")
        super().__init__()
        self.budget = budget
        self.agent_key = agent_key
        self.prices = prices
        # A budget's BudgetExceededError must reach the caller; without a budget a bug
        # in bookkeeping must never break the user's call.
        self.raise_error = budget is not None
        # Bookkeeping is a few dict operations: run it on the event loop, unless the
        # budget does blocking I/O (SQLite, Redis).
        self.run_inline = budget is None or budget.run_inline
        self._runs: dict[UUID, _Pending] = {}
        self._records: list[_Record] = []
        self._events: list[UsageEvent] = []  # built from _records[: len(_events)]
        self._routes: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"UsageTracker(calls={len(self._records)})"

    # -- public API --------------------------------------------------------------------

    @property
    def events(self) -> list[UsageEvent]:
        """A copy of the events recorded so far, in the order the calls ended."""
        with self._lock:
            records = self._records
            for record in records[len(self._events) : len(records)]:
                self._events.append(self._event(record))
            return list(self._events)

    @property
    def routes(self) -> list[dict[str, Any]]:
        """A copy of the model-routing decisions seen, in order.

        Each is the `ModelRouter` decision (`tier`, `model`, `score`, `reason`,
        `fallbacks`, estimated costs) plus `run_id`, the router's run: the model call
        it routed is the event whose `parent_run_id` equals it.
        """
        with self._lock:
            return [dict(route) for route in self._routes]

    def report(self, *, timezone: str | _dt.tzinfo = _UTC) -> UsageReport:
        """Aggregate the recorded events; `timezone` decides what a day is in `by_day`."""
        return UsageReport(self.events, timezone=timezone, prices=self.prices)

    def reset(self) -> None:
        """Forget every recorded event (calls in flight are still recorded when they end)."""
        with self._lock:
            self._records = []
            self._events = []
            self._routes = []

    # -- callbacks: start --------------------------------------------------------------

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record `ModelRouter` decisions (custom event `ROUTE_EVENT`); ignore others."""
        if name != ROUTE_EVENT or not isinstance(data, Mapping):
            return
        with self._lock:
            self._routes.append({**data, "run_id": str(run_id)})

    def _call_started(self, call: CallStart) -> None:
        if self.budget is not None:
            self.budget.reserve(call)  # raises BudgetExceededError before the request
        metadata = call.metadata
        task_id: str | UUID | None = metadata.get("task_id")
        if not isinstance(task_id, str):
            parent = call.parent_run_id
            task_id = self._root_of(parent) or call.run_id
        task_type = metadata.get("task_type")
        started = _Started(
            run_id=call.run_id,
            parent_run_id=call.parent_run_id,
            agent=call.agent,
            started_at=time.time(),
            prompt_hash=prompt_hash(call),
            task_id=task_id,
            task_type=task_type if isinstance(task_type, str) else None,
            tools_count=len(call.tools),
        )
        self._runs[call.run_id] = _Pending(call, started, time.perf_counter())

    # -- callbacks: end ----------------------------------------------------------------

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the call: provider usage (or an estimate), cost, latency."""
        pending = self._runs.pop(run_id, None)
        if pending is None:
            return  # started before this tracker was attached
        result = read_result(response)
        usage = result.usage
        estimated = usage is None
        if usage is None:
            usage = self._estimate(pending.call, output_text(response))
            self._warn_no_usage(pending.call, streamed=result.streamed)
        model = result.model or pending.call.model
        if self.budget is not None:
            if result.cache_hit:
                self.budget.release(run_id)
            else:
                self.budget.settle(run_id, usage, model=model)
        self._record(
            pending,
            usage=usage,
            model=model,
            estimated=estimated,
            cache_hit=result.cache_hit,
            streamed=result.streamed,
            error_type=None,
            processing=call_processing(pending.call, response),
        )

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a failed call, with the usage of a partial response if there was one."""
        pending = self._runs.pop(run_id, None)
        if pending is None:
            return
        partial = kwargs.get("response")
        result = read_result(partial) if isinstance(partial, LLMResult) else None
        usage = result.usage if result is not None else None
        model = (result.model if result is not None else None) or pending.call.model
        if self.budget is not None:
            if usage is None:
                self.budget.release(run_id)
            else:
                self.budget.settle(run_id, usage, model=model)
        self._record(
            pending,
            usage=usage or Usage(),
            model=model,
            estimated=False,
            cache_hit=False,
            streamed=result.streamed if result is not None else False,
            error_type=type(error).__name__,
        )

    def _record(
        self,
        pending: _Pending,
        *,
        usage: Usage,
        model: str | None,
        estimated: bool,
        cache_hit: bool,
        streamed: bool,
        error_type: str | None,
        processing: Processing = "standard",
    ) -> None:
        # Only what is needed is kept here; the event is built and priced when it is
        # read, off the path of the model call (pricing takes tens of microseconds).
        record = _Record(
            started=pending.started,
            usage=usage,
            model=model,
            estimated=estimated,
            cache_hit=cache_hit,
            streamed=streamed,
            error_type=error_type,
            latency_seconds=time.perf_counter() - pending.started_perf,
            processing=processing,
        )
        self._records.append(record)  # list.append is atomic: no lock on the hot path

    def _event(self, record: _Record) -> UsageEvent:
        started, usage = record.started, record.usage
        cost = (
            self._cost(record.model, usage, record.processing) if usage.total_tokens else Decimal(0)
        )
        return UsageEvent(
            run_id=str(started.run_id),
            agent=started.agent,
            model=record.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=Decimal(0) if record.cache_hit else cost,
            saved_cost_usd=cost if record.cache_hit else None,
            estimated=record.estimated,
            cache_hit=record.cache_hit,
            status="ok" if record.error_type is None else "error",
            error_type=record.error_type,
            latency_seconds=record.latency_seconds,
            started_at=_dt.datetime.fromtimestamp(started.started_at, _UTC),
            parent_run_id=None if started.parent_run_id is None else str(started.parent_run_id),
            task_id=str(started.task_id),
            task_type=started.task_type,
            prompt_hash=started.prompt_hash,
            tools_count=started.tools_count,
            streamed=record.streamed,
        )

    # -- helpers -----------------------------------------------------------------------

    def _cost(
        self, model: str | None, usage: Usage, processing: Processing = "standard"
    ) -> Decimal | None:
        if model is None:
            self._warn_once("model:", "A model call names no model: its cost is unknown.")
            return None
        try:
            return price(model, usage, table=self.prices, processing=processing)
        except UnknownModelError:
            self._warn_once(
                f"price:{model}",
                "No price is known for model %r: its calls are recorded with cost None. "
                "Give its price with UsageTracker(prices=PriceTable({...})).",
                model,
            )
            return None

    def _estimate(self, call: CallStart, text: str) -> Usage:
        output_tokens = int(self._counter(call.model).count_text(text))
        return Usage(input_tokens=self._input_tokens(call), output_tokens=output_tokens)

    def _warn_no_usage(self, call: CallStart, *, streamed: bool) -> None:
        if streamed and call.provider in ("openai", "azure"):
            self._warn_once(
                "stream_usage",
                "A streamed OpenAI call reported no token usage, so its tokens are "
                "estimated with TokenCounter. Create the model with "
                "ChatOpenAI(..., stream_usage=True) to get exact usage when streaming.",
            )
        else:
            self._warn_once(
                f"no_usage:{call.model}",
                "Model %r reported no token usage; its calls are counted with "
                "TokenCounter and marked estimated.",
                call.model,
            )

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning(message, *args)


# A tracker attached with `track_usage()` lives in this context variable. It is
# registered with LangChain once, here, so using the context manager does not grow
# langchain-core's global hook list (`get_usage_metadata_callback` registers per use).
_tracker_var: ContextVar[UsageTracker | None] = ContextVar(
    "langchain_tokenopt_usage_tracker", default=None
)
register_configure_hook(_tracker_var, inheritable=True)


@contextmanager
def track_usage(
    tracker: UsageTracker | None = None,
    *,
    budget: TokenBudget | None = None,
    agent_key: Callable[[CallStart], str | None] | None = None,
    prices: PriceTable | None = None,
) -> Iterator[UsageTracker]:
    """Attach a `UsageTracker` to every LangChain run inside the `with` block.

    Pass your own `tracker`, or the arguments of a new one.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage
        >>> reply = AIMessage("hi", usage_metadata={
        ...     "input_tokens": 7, "output_tokens": 1, "total_tokens": 8})
        >>> model = GenericFakeChatModel(messages=iter([reply]))
        >>> with track_usage() as tracker:
        ...     _ = model.invoke("hello")
        >>> tracker.report().totals.input_tokens
        7
    """
    if tracker is None:
        tracker = UsageTracker(budget=budget, agent_key=agent_key, prices=prices)
    elif budget is not None or agent_key is not None or prices is not None:
        raise ArgumentTypeError("give either a tracker or the arguments of a new one, not both")
    token = _tracker_var.set(tracker)
    try:
        yield tracker
    finally:
        _tracker_var.reset(token)
