"""Where the tokens and dollars of a LangChain app go: per agent, per model, per day.

`UsageTracker` is a callback handler that records one `UsageEvent` per model call
(tokens by kind, cost, latency, outcome, cache hits as money saved), exactly also under
threads and asyncio. `UsageReport` aggregates events, exports them as JSONL, renders a
table or a chart, and points at the optimizations the numbers call for.
`track_usage()` attaches a tracker to every run inside a `with` block.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.markers import BATCH_KEY, ROUTE_EVENT
from langchain_tokenopt.core.pricing import PriceTable, Processing, price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import (
    CallStart,
    SpendGate,
    Usage,
    call_start,
    output_text,
    prompt_hash,
    read_result,
)
from langchain_tokenopt.errors import UnknownModelError

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = [
    "Suggestion",
    "TaskEfficiency",
    "UsageEvent",
    "UsageReport",
    "UsageTotals",
    "UsageTracker",
    "analyze_token_efficiency",
    "track_usage",
]

logger = logging.getLogger(__name__)

#: `by_model` key of calls whose model is not known.
UNKNOWN_MODEL = "unknown"
_UTC = _dt.timezone.utc
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def _agents_averaging_at_least(
    events: Sequence[UsageEvent],
    value: Callable[[UsageEvent], int],
    min_calls: int,
    threshold: float,
) -> Iterator[tuple[str, float, int]]:
    """(agent, average value per call, calls) of agents with >= `min_calls` calls whose
    average `value` is >= `threshold`, by agent name."""
    per_agent: defaultdict[str, list[int]] = defaultdict(list)
    for event in events:
        per_agent[event.agent].append(value(event))
    for agent, values in sorted(per_agent.items()):
        average = sum(values) / len(values)
        if len(values) >= min_calls and average >= threshold:
            yield agent, average, len(values)


def _money(value: Decimal | None) -> str | None:
    """A Decimal as a plain (never scientific) string, for JSON."""
    return None if value is None else format(value, "f")


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One model call as `UsageTracker` saw it.

    Token fields follow LangChain's convention (`input_tokens` includes cache reads and
    writes, `output_tokens` includes reasoning). For a cache hit they hold what the
    cached answer cost originally: nothing was spent, `cost_usd` is 0 and
    `saved_cost_usd` what the call would have cost. `cost_usd` is None when the model
    has no known price; `estimated` is True when the provider reported no usage and
    the tokens were counted with `TokenCounter`.

    Example:
        >>> e = UsageEvent(run_id="r1", agent="writer", model="gpt-4o",
        ...                input_tokens=1000, output_tokens=50)
        >>> UsageEvent.from_dict(e.to_dict()) == e
        True
    """

    run_id: str
    agent: str
    model: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None
    saved_cost_usd: Decimal | None = None
    estimated: bool = False
    cache_hit: bool = False
    status: str = "ok"
    error_type: str | None = None
    latency_seconds: float = 0.0
    started_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_UTC))
    parent_run_id: str | None = None
    task_id: str | None = None
    task_type: str | None = None
    prompt_hash: str | None = None
    tools_count: int = 0
    streamed: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def spent_tokens(self) -> int:
        """Tokens this call was billed for (0 for a cache hit)."""
        return 0 if self.cache_hit else self.total_tokens

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: money as decimal strings, time as ISO 8601."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["cost_usd"] = _money(self.cost_usd)
        data["saved_cost_usd"] = _money(self.saved_cost_usd)
        data["started_at"] = self.started_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageEvent:
        """Rebuild an event from `to_dict()` output; raises ValueError naming a bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a usage event must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for name in ("run_id", "agent"):
            if not isinstance(values.get(name), str):
                raise ValueError(f"usage event field {name!r} must be a string")
        for name in (*_TOKEN_FIELDS, "tools_count"):
            value = values.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"usage event field {name!r} must be a non-negative integer")
        for name in ("cost_usd", "saved_cost_usd"):
            value = values.get(name)
            if value is not None:
                try:
                    values[name] = Decimal(str(value))
                except InvalidOperation as exc:
                    raise ValueError(f"usage event field {name!r} must be a number") from exc
        started = values.get("started_at")
        if started is not None:
            try:
                parsed = _dt.datetime.fromisoformat(str(started))
            except ValueError as exc:
                raise ValueError("usage event field 'started_at' must be ISO 8601") from exc
            values["started_at"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
        latency = values.get("latency_seconds", 0.0)
        if isinstance(latency, bool) or not isinstance(latency, (int, float)):
            raise ValueError("usage event field 'latency_seconds' must be a number")
        values["latency_seconds"] = float(latency)
        return cls(**values)


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


class UsageTracker(BaseCallbackHandler):
    """Records tokens, cost, latency and outcome of every model call it sees.

    Attach it like any callback (`config={"callbacks": [tracker]}`, a model's
    `callbacks=`, or `with track_usage() as tracker:`); it works for sync, async,
    batched and streamed calls, and its totals are exact under threads and asyncio.
    One handler serves sync and async runs: its per-call work is a few dict operations,
    so LangChain runs it inline on the event loop (`run_inline`); pricing waits until
    events are read (`events`, `report()`). With a budget backed by SQLite or Redis it
    runs in LangChain's executor instead, so the event loop never blocks on I/O.

    Args:
        budget: a `TokenBudget` (or any `SpendGate`) checked before each call starts
            and settled with the call's real usage; its `BudgetExceededError` stops the
            call before the request is sent.
        agent_key: names the agent of a call from its `CallStart`; returning None
            falls back to `metadata["agent"]`, an `"agent:<name>"` tag,
            `lc_agent_name`, the run name, `langgraph_node`, then `"default"`.
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
        budget: SpendGate | None = None,
        agent_key: Callable[[CallStart], str | None] | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        if budget is not None and not isinstance(budget, SpendGate):
            raise TypeError(
                "budget must be a TokenBudget (or implement reserve / settle / release), "
                f"got {type(budget).__name__}"
            )
        if agent_key is not None and not callable(agent_key):
            raise TypeError("agent_key must be a function of a CallStart")
        self.budget = budget
        self.agent_key = agent_key
        self.prices = prices
        # A budget's BudgetExceededError must reach the caller; without a budget a bug
        # in bookkeeping must never break the user's call.
        self.raise_error = budget is not None
        # Bookkeeping is a few dict operations: run it on the event loop, unless the
        # budget does blocking I/O (SQLite, Redis).
        self.run_inline = budget is None or bool(budget.run_inline)
        self._runs: dict[UUID, _Pending] = {}
        self._roots: dict[UUID, UUID] = {}
        self._records: list[_Record] = []
        self._events: list[UsageEvent] = []  # built from _records[: len(_events)]
        self._routes: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._counters: dict[str, TokenCounter] = {}
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

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember which top-level run (task) a chain belongs to."""
        if parent_run_id is not None:
            self._roots[run_id] = self._roots.get(parent_run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the chain: model calls inside it have recorded their task already."""
        self._roots.pop(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the chain (see `on_chain_end`)."""
        self._roots.pop(run_id, None)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Take agent, model and input at the start: `on_llm_end` carries no metadata."""
        call = call_start(
            run_id=run_id,
            parent_run_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            kwargs=kwargs,
            messages=messages[0] if messages else [],
            agent_key=self.agent_key,
        )
        self._start(call)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Same as `on_chat_model_start`, for completion (string) models."""
        call = call_start(
            run_id=run_id,
            parent_run_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            kwargs=kwargs,
            prompts=prompts,
            agent_key=self.agent_key,
        )
        self._start(call)

    def _start(self, call: CallStart) -> None:
        if self.budget is not None:
            self.budget.reserve(call)  # raises BudgetExceededError before the request
        metadata = call.metadata
        task_id: str | UUID | None = metadata.get("task_id")
        if not isinstance(task_id, str):
            parent = call.parent_run_id
            task_id = self._roots.get(parent, parent) if parent is not None else call.run_id
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
            processing=_processing(response),
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
            return price(model, usage.as_usage_metadata(), table=self.prices, processing=processing)
        except UnknownModelError:
            self._warn_once(
                f"price:{model}",
                "No price is known for model %r: its calls are recorded with cost None. "
                "Give its price with UsageTracker(prices=PriceTable({...})).",
                model,
            )
            return None

    def _counter(self, model: str | None) -> TokenCounter:
        key = model or ""
        counter = self._counters.get(key)
        if counter is None:
            counter = TokenCounter(model) if model else TokenCounter()
            self._counters[key] = counter
        return counter

    def _estimate(self, call: CallStart, text: str) -> Usage:
        counter = self._counter(call.model)
        if call.messages is not None:
            input_tokens = int(counter.count_messages(call.messages, tools=call.tools or None))
        else:
            input_tokens = sum(int(counter.count_text(p)) for p in call.prompts or ())
        return Usage(input_tokens=input_tokens, output_tokens=int(counter.count_text(text)))

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


def _processing(response: LLMResult) -> Processing:
    """ "batch" when the answer came through a provider batch API (it carries `BATCH_KEY`)."""
    for generations in response.generations:
        for generation in generations:
            metadata = getattr(getattr(generation, "message", None), "response_metadata", {})
            if metadata.get(BATCH_KEY):
                return "batch"
    return "standard"


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
    budget: SpendGate | None = None,
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
        raise TypeError("give either a tracker or the arguments of a new one, not both")
    token = _tracker_var.set(tracker)
    try:
        yield tracker
    finally:
        _tracker_var.reset(token)


# --------------------------------------------------------------------------- reports


@dataclass(slots=True)
class UsageTotals:
    """Sums over a set of calls. Tokens of cache hits count as saved, not spent.

    Example:
        >>> t = UsageTotals()
        >>> t.add(UsageEvent(run_id="r", agent="a", model="m", input_tokens=5))
        >>> t.calls, t.input_tokens
        (1, 5)
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    calls: int = 0
    errors: int = 0
    cache_hits: int = 0
    estimated_calls: int = 0
    unpriced_calls: int = 0
    saved_tokens: int = 0
    saved_cost_usd: Decimal = Decimal(0)
    latency_seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Spent input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, event: UsageEvent) -> None:
        """Count one event in."""
        self.calls += 1
        self.latency_seconds += event.latency_seconds
        if event.status != "ok":
            self.errors += 1
        if event.estimated:
            self.estimated_calls += 1
        if event.cache_hit:
            self.cache_hits += 1
            self.saved_tokens += event.total_tokens
            if event.saved_cost_usd is not None:
                self.saved_cost_usd += event.saved_cost_usd
            return
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cache_read_tokens += event.cache_read_tokens
        self.cache_write_tokens += event.cache_write_tokens
        self.reasoning_tokens += event.reasoning_tokens
        if event.cost_usd is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += event.cost_usd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dollars as decimal strings (exact), everything else numbers."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": _money(self.cost_usd),
            "calls": self.calls,
            "errors": self.errors,
            "cache_hits": self.cache_hits,
            "estimated_calls": self.estimated_calls,
            "unpriced_calls": self.unpriced_calls,
            "saved_tokens": self.saved_tokens,
            "saved_cost_usd": _money(self.saved_cost_usd),
            "latency_seconds": self.latency_seconds,
        }


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An optimization the recorded numbers call for, with the figures behind it.

    `kind` is one of "summarize_history", "cache", "route", "tool_retrieval";
    `scope` the agent or model it is about (None for all calls).
    """

    kind: str
    message: str
    figures: Mapping[str, Any]
    scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        figures = {k: _money(v) if isinstance(v, Decimal) else v for k, v in self.figures.items()}
        return {"kind": self.kind, "scope": self.scope, "message": self.message, "figures": figures}


def _tz(timezone: str | _dt.tzinfo) -> _dt.tzinfo:
    if isinstance(timezone, _dt.tzinfo):
        return timezone
    if isinstance(timezone, str):
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r}: give an IANA name") from exc
    raise TypeError(f"timezone must be a tzinfo or an IANA name, got {timezone!r}")


class UsageReport:
    """Totals of a list of `UsageEvent`s, per agent, model and day, and what to do next.

    Example:
        >>> report = UsageReport([
        ...     UsageEvent(run_id="1", agent="a", model="gpt-4o", input_tokens=100),
        ...     UsageEvent(run_id="2", agent="b", model="gpt-4o", input_tokens=50)])
        >>> report.totals.input_tokens, sorted(report.by_agent)
        (150, ['a', 'b'])
    """

    def __init__(
        self,
        events: Iterable[UsageEvent],
        *,
        timezone: str | _dt.tzinfo = _UTC,
        prices: PriceTable | None = None,
    ) -> None:
        self.events: tuple[UsageEvent, ...] = tuple(events)
        self.timezone = _tz(timezone)
        self.prices = prices
        self.totals = UsageTotals()
        by_agent: defaultdict[str, UsageTotals] = defaultdict(UsageTotals)
        by_model: defaultdict[str, UsageTotals] = defaultdict(UsageTotals)
        by_day: defaultdict[str, UsageTotals] = defaultdict(UsageTotals)
        for event in self.events:
            self.totals.add(event)
            by_agent[event.agent].add(event)
            by_model[event.model or UNKNOWN_MODEL].add(event)
            by_day[event.started_at.astimezone(self.timezone).date().isoformat()].add(event)
        self.by_agent: dict[str, UsageTotals] = dict(sorted(by_agent.items()))
        self.by_model: dict[str, UsageTotals] = dict(sorted(by_model.items()))
        self.by_day: dict[str, UsageTotals] = dict(sorted(by_day.items()))

    def __repr__(self) -> str:
        return (
            f"UsageReport(calls={self.totals.calls}, tokens={self.totals.total_tokens}, "
            f"cost_usd={_money(self.totals.cost_usd)})"
        )

    # -- exports -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """`{"totals", "by_agent", "by_model", "by_day", "suggestions"}`, JSON-ready."""
        return {
            "totals": self.totals.to_dict(),
            "by_agent": {k: v.to_dict() for k, v in self.by_agent.items()},
            "by_model": {k: v.to_dict() for k, v in self.by_model.items()},
            "by_day": {k: v.to_dict() for k, v in self.by_day.items()},
            "suggestions": [s.to_dict() for s in self.suggestions()],
        }

    def to_jsonl(self, path: str | Path) -> int:
        """Write one JSON event per line to `path`; returns how many were written."""
        with Path(path).open("w", encoding="utf-8") as out:
            for event in self.events:
                out.write(json.dumps(event.to_dict(), separators=(",", ":")))
                out.write("\n")
        return len(self.events)

    @classmethod
    def from_jsonl(cls, path: str | Path, *, timezone: str | _dt.tzinfo = _UTC) -> UsageReport:
        """Read events written by `to_jsonl`; a bad line raises ValueError naming it."""
        events: list[UsageEvent] = []
        with Path(path).open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    events.append(UsageEvent.from_dict(json.loads(line)))
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{path}, line {number}: {exc}") from exc
        return cls(events, timezone=timezone)

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per event (needs the `viz` extra); dollars as floats for charting."""
        pd = require("pandas", "viz")
        rows = []
        for event in self.events:
            row = event.to_dict()
            row["started_at"] = event.started_at
            row["cost_usd"] = None if event.cost_usd is None else float(event.cost_usd)
            row["saved_cost_usd"] = (
                None if event.saved_cost_usd is None else float(event.saved_cost_usd)
            )
            rows.append(row)
        columns = [f.name for f in fields(UsageEvent)]
        frame: pandas.DataFrame = pd.DataFrame.from_records(rows, columns=columns)
        return frame

    def plot(self, path: str | Path | None = None) -> Figure:
        """Cost per day, tokens per model and cost per agent, as one matplotlib Figure.

        Uses no pyplot state, so it is safe in servers and under the Agg backend; with
        `path` the figure is also saved there (format from the suffix).
        """
        figure_module = require("matplotlib.figure", "viz")
        figure: Figure = figure_module.Figure(figsize=(12, 4), layout="constrained")
        ax_day, ax_model, ax_agent = figure.subplots(1, 3)

        days = list(self.by_day)
        ax_day.bar(days, [float(t.cost_usd) for t in self.by_day.values()], color="#4C72B0")
        ax_day.set_title("Cost per day (USD)")
        ax_day.tick_params(axis="x", labelrotation=45)

        models = list(self.by_model)
        uncached = [t.input_tokens - t.cache_read_tokens for t in self.by_model.values()]
        cached = [t.cache_read_tokens for t in self.by_model.values()]
        output = [t.output_tokens for t in self.by_model.values()]
        ax_model.barh(models, uncached, label="input", color="#4C72B0")
        ax_model.barh(models, cached, left=uncached, label="cache read", color="#55A868")
        lefts = [a + b for a, b in zip(uncached, cached, strict=True)]
        ax_model.barh(models, output, left=lefts, label="output", color="#C44E52")
        ax_model.set_title("Tokens per model")
        ax_model.legend(loc="lower right", fontsize="small")

        agents = list(self.by_agent)
        ax_agent.barh(agents, [float(t.cost_usd) for t in self.by_agent.values()], color="#8172B2")
        ax_agent.set_title("Cost per agent (USD)")

        if path is not None:
            figure.savefig(path)
        return figure

    def render_table(self) -> str:
        """A plain-text table (totals, per model, per agent, per day) and suggestions."""
        header = (
            "calls",
            "errors",
            "cache hits",
            "input",
            "cache read",
            "output",
            "reasoning",
            "cost USD",
            "saved USD",
        )
        rows: list[tuple[str, ...]] = []

        def section(title: str, groups: Mapping[str, UsageTotals]) -> None:
            rows.append((f"{title}",) + ("",) * len(header))
            for name, totals in groups.items():
                rows.append((f"  {name}", *_table_cells(totals)))

        rows.append(("total", *_table_cells(self.totals)))
        section("by model", self.by_model)
        section("by agent", self.by_agent)
        section("by day", self.by_day)
        first = max(len(r[0]) for r in rows)
        widths = [max(len(h), *(len(r[i + 1]) for r in rows)) for i, h in enumerate(header)]
        lines = [
            " ".ljust(first)
            + "  "
            + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
        ]
        lines.append("-" * len(lines[0]))
        for row in rows:
            cells = "  ".join(c.rjust(w) for c, w in zip(row[1:], widths, strict=True))
            lines.append(row[0].ljust(first) + "  " + cells)
        notes = []
        if self.totals.estimated_calls:
            notes.append(f"{self.totals.estimated_calls} call(s) estimated (no provider usage)")
        if self.totals.unpriced_calls:
            notes.append(f"{self.totals.unpriced_calls} call(s) of unknown price not in cost")
        if notes:
            lines.append("note: " + "; ".join(notes))
        suggestions = self.suggestions()
        if suggestions:
            lines.append("")
            lines.append("suggestions:")
            lines.extend(f"- {s.message}" for s in suggestions)
        return "\n".join(lines)

    # -- suggestions -----------------------------------------------------------------------

    def suggestions(
        self,
        *,
        min_calls: int = 5,
        long_input_tokens: int = 4000,
        short_output_tokens: int = 60,
        expensive_input_usd_per_mtok: Decimal = Decimal(2),
        many_tools: int = 10,
        min_repeated_calls: int = 2,
    ) -> list[Suggestion]:
        """Optimizations the numbers call for; each carries the figures behind it.

        - an agent averaging >= `long_input_tokens` input tokens per call over
          `min_calls` calls -> summarize its history;
        - >= `min_repeated_calls` calls that repeat an identical earlier prompt (same
          model and messages) -> cache answers;
        - a model priced >= `expensive_input_usd_per_mtok` per million input tokens
          whose median answer is <= `short_output_tokens` tokens, without tools ->
          route such calls to a cheaper model;
        - an agent binding >= `many_tools` tools per call on average -> retrieve the
          relevant tools per call.
        """
        spent = [e for e in self.events if e.status == "ok" and not e.cache_hit]
        found: list[Suggestion] = []
        found.extend(self._suggest_summaries(spent, min_calls, long_input_tokens))
        found.extend(self._suggest_cache(spent, min_repeated_calls))
        found.extend(
            self._suggest_router(
                spent, min_calls, short_output_tokens, expensive_input_usd_per_mtok
            )
        )
        found.extend(self._suggest_tool_retrieval(spent, min_calls, many_tools))
        return found

    @staticmethod
    def _suggest_summaries(
        spent: Sequence[UsageEvent], min_calls: int, long_input_tokens: int
    ) -> Iterator[Suggestion]:
        for agent, average, calls in _agents_averaging_at_least(
            spent, lambda e: e.input_tokens, min_calls, long_input_tokens
        ):
            yield Suggestion(
                kind="summarize_history",
                scope=agent,
                message=(
                    f"Agent {agent!r} sends {average:,.0f} input tokens per call on "
                    f"average over {calls} calls: summarize its history "
                    "(SummarizingChatMessageHistory) to bound the context."
                ),
                figures={"avg_input_tokens": round(average, 1), "calls": calls},
            )

    @staticmethod
    def _suggest_cache(
        spent: Sequence[UsageEvent], min_repeated_calls: int
    ) -> Iterator[Suggestion]:
        seen: set[str] = set()
        repeats = 0
        repeat_tokens = 0
        repeat_cost = Decimal(0)
        for event in sorted(spent, key=lambda e: e.started_at):
            if event.prompt_hash is None:
                continue
            if event.prompt_hash in seen:
                repeats += 1
                repeat_tokens += event.total_tokens
                repeat_cost += event.cost_usd or Decimal(0)
            else:
                seen.add(event.prompt_hash)
        if repeats >= min_repeated_calls:
            share = repeats / len(spent)
            yield Suggestion(
                kind="cache",
                message=(
                    f"{repeats} of {len(spent)} calls ({share:.0%}) repeated an identical "
                    f"earlier prompt, spending {repeat_tokens:,} tokens "
                    f"(${_money(repeat_cost)}): cache answers (TokenOptCache)."
                ),
                figures={
                    "repeated_calls": repeats,
                    "calls": len(spent),
                    "repeated_share": round(share, 4),
                    "repeated_tokens": repeat_tokens,
                    "repeated_cost_usd": repeat_cost,
                },
            )

    def _suggest_router(
        self,
        spent: Sequence[UsageEvent],
        min_calls: int,
        short_output_tokens: int,
        expensive_input_usd_per_mtok: Decimal,
    ) -> Iterator[Suggestion]:
        per_model: defaultdict[str, list[UsageEvent]] = defaultdict(list)
        for event in spent:
            if event.model is not None and event.tools_count == 0:
                per_model[event.model].append(event)
        for model, events in sorted(per_model.items()):
            if len(events) < min_calls:
                continue
            median_output = statistics.median(e.output_tokens for e in events)
            if median_output > short_output_tokens:
                continue
            try:
                input_price = price(
                    model, {"input_tokens": 1_000_000, "output_tokens": 0}, table=self.prices
                )
            except UnknownModelError:
                continue
            if input_price < expensive_input_usd_per_mtok:
                continue
            short = [e for e in events if e.output_tokens <= short_output_tokens]
            cost = sum((e.cost_usd or Decimal(0) for e in short), Decimal(0))
            yield Suggestion(
                kind="route",
                scope=model,
                message=(
                    f"{len(short)} of {len(events)} calls to {model} (${format(input_price, 'f')}"
                    f" per million input tokens) answered in <= {short_output_tokens} tokens "
                    f"(median {median_output:g}), costing ${_money(cost)}: a ModelRouter "
                    "could send such simple calls to a cheaper model."
                ),
                figures={
                    "calls": len(events),
                    "short_calls": len(short),
                    "median_output_tokens": median_output,
                    "input_usd_per_mtok": input_price,
                    "short_calls_cost_usd": cost,
                },
            )

    @staticmethod
    def _suggest_tool_retrieval(
        spent: Sequence[UsageEvent], min_calls: int, many_tools: int
    ) -> Iterator[Suggestion]:
        for agent, average, calls in _agents_averaging_at_least(
            spent, lambda e: e.tools_count, min_calls, many_tools
        ):
            yield Suggestion(
                kind="tool_retrieval",
                scope=agent,
                message=(
                    f"Agent {agent!r} binds {average:.1f} tools per call on average over "
                    f"{calls} calls: bind only the relevant ones per call "
                    "(bind_relevant_tools / ToolRetriever)."
                ),
                figures={"avg_tools_per_call": round(average, 2), "calls": calls},
            )


def _table_cells(totals: UsageTotals) -> tuple[str, ...]:
    return (
        f"{totals.calls:,}",
        f"{totals.errors:,}",
        f"{totals.cache_hits:,}",
        f"{totals.input_tokens:,}",
        f"{totals.cache_read_tokens:,}",
        f"{totals.output_tokens:,}",
        f"{totals.reasoning_tokens:,}",
        f"{totals.cost_usd:.6f}",
        f"{totals.saved_cost_usd:.6f}",
    )


# --------------------------------------------------------------------------- efficiency


@dataclass(frozen=True, slots=True)
class TaskEfficiency:
    """Tokens and dollars a task type spends per task that succeeded.

    A task is the set of model calls under one top-level run (or one
    `metadata["task_id"]`); it succeeded when none of its model calls failed. Tokens of
    failed tasks count too: they are part of what the successes cost.
    """

    task_type: str
    tasks: int
    successful_tasks: int
    total_tokens: int
    cost_usd: Decimal
    tokens_per_successful_task: float | None
    cost_per_successful_task_usd: Decimal | None

    @property
    def success_rate(self) -> float:
        """Share of tasks that succeeded."""
        return self.successful_tasks / self.tasks if self.tasks else 0.0


def analyze_token_efficiency(events: Iterable[UsageEvent]) -> dict[str, TaskEfficiency]:
    """Tokens per successful task, per task type (`metadata["task_type"]`, else agent).

    Example:
        >>> events = [
        ...     UsageEvent(run_id="1", agent="qa", model="m", input_tokens=90,
        ...                output_tokens=10, task_id="t1"),
        ...     UsageEvent(run_id="2", agent="qa", model="m", input_tokens=100,
        ...                task_id="t2", status="error")]
        >>> analyze_token_efficiency(events)["qa"].tokens_per_successful_task
        200.0
    """
    tasks: defaultdict[str, dict[str, list[UsageEvent]]] = defaultdict(dict)
    for event in events:
        task_type = event.task_type or event.agent
        task_id = event.task_id or event.run_id
        tasks[task_type].setdefault(task_id, []).append(event)
    result: dict[str, TaskEfficiency] = {}
    for task_type, by_task in sorted(tasks.items()):
        successful = sum(1 for calls in by_task.values() if all(e.status == "ok" for e in calls))
        all_calls = [e for calls in by_task.values() for e in calls]
        tokens = sum(e.spent_tokens for e in all_calls)
        cost = sum(
            (e.cost_usd for e in all_calls if e.cost_usd is not None and not e.cache_hit),
            Decimal(0),
        )
        result[task_type] = TaskEfficiency(
            task_type=task_type,
            tasks=len(by_task),
            successful_tasks=successful,
            total_tokens=tokens,
            cost_usd=cost,
            tokens_per_successful_task=tokens / successful if successful else None,
            cost_per_successful_task_usd=cost / successful if successful else None,
        )
    return result
