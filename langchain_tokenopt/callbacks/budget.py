"""Spending limits in tokens and dollars, enforced before a request is sent.

`TokenBudget` reserves each call's worst case (its exact input count plus its
`max_tokens`) with one atomic check-and-add in a `Store`, so several threads, processes
or machines (SQLite, Redis) sharing one budget never spend more than the limit plus
what was already in flight. When the call ends the reservation is settled with the
real usage; a cache hit or a failure releases it. Windows reset by the calendar (hour,
day, week, month in a timezone) or roll (a `timedelta`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.outputs import LLMResult

from langchain_tokenopt.callbacks._calls import ModelCallHandler, call_processing
from langchain_tokenopt.core.pricing import PriceTable, Processing, price
from langchain_tokenopt.core.usage import (
    DEFAULT_AGENT,
    CallStart,
    Usage,
    output_text,
    read_result,
)
from langchain_tokenopt.core.validation import shown
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    BudgetExceededError,
    InvalidArgumentError,
    StoreUnavailableError,
    UnknownModelError,
)
from langchain_tokenopt.stores import MemoryStore, Store

__all__ = ["BudgetExceededError", "BudgetRemaining", "TokenBudget"]

logger = logging.getLogger(__name__)

_UTC = _dt.timezone.utc
_NANO = Decimal(1_000_000_000)
_CALENDAR_WINDOWS = ("hour", "day", "week", "month")
#: A rolling window is kept as this many buckets; spending leaves it bucket by bucket.
ROLLING_BUCKETS = 12
# Calendar keys outlive their window a little, so late settlements land in them.
_GRACE_SECONDS = 3600.0
_TOKENS = "tokens"
_COST = "nano_usd"


def _to_usd(value: Decimal | float | int | str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise ArgumentTypeError(
            f"max_cost_usd must be a number of dollars (Decimal, int, float or str), got "
            f"{type(value).__name__}"
        )
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidArgumentError(
            f"max_cost_usd must be a number of dollars, got {shown(value)}"
        ) from exc
    if not result.is_finite() or result <= 0:
        raise InvalidArgumentError(
            f"max_cost_usd must be a positive number of dollars, got {shown(value)}"
        )
    return result


def _timezone(timezone: str | _dt.tzinfo) -> _dt.tzinfo:
    if isinstance(timezone, _dt.tzinfo):
        return timezone
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidArgumentError(
            f"unknown timezone {shown(timezone)}: give an IANA name or a tzinfo"
        ) from exc


def _nano(usd: Decimal) -> int:
    """Dollars as whole nano-dollars, rounded up: stores add integers exactly."""
    return int((usd * _NANO).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class BudgetRemaining:
    """What is left of a budget in the current window.

    `tokens` / `cost_usd` are None for a limit the budget does not set; `resets_at`
    is when spending next leaves the window (None without a window).

    Example:
        >>> left = TokenBudget(max_tokens=1_000, window=None).remaining()
        >>> left.tokens, left.cost_usd, left.used_tokens, left.resets_at
        (1000, None, 0, None)
    """

    tokens: int | None
    cost_usd: Decimal | None
    used_tokens: int
    used_cost_usd: Decimal
    resets_at: _dt.datetime | None


@dataclass(frozen=True, slots=True)
class _Slot:
    key: str
    amount: int
    ttl_seconds: float | None


@dataclass(frozen=True, slots=True)
class _Reservation:
    slots: tuple[tuple[str, _Slot], ...]  # (unit, slot)
    input_tokens: int
    model: str | None
    processing: Processing = "standard"


class TokenBudget(ModelCallHandler):
    """A limit on tokens and / or dollars per window, checked before each model call.

    Before a call starts, its exact input token count plus its `max_tokens`
    (`default_output_tokens` when the call sets none) is reserved with an atomic
    check-and-add; if that would pass the limit, `BudgetExceededError` (used, limit,
    reset time) is raised and no request is sent. When the call ends the reservation
    is settled with the real usage; a cache hit or a failed call releases it. A store
    that cannot be reached before a call stops the call (`StoreUnavailableError`: fail
    closed); after a call, a failed settlement is logged, not raised.

    Use it alone as a callback, or give it to a tracker:
    `UsageTracker(budget=TokenBudget(...))`. Share it between processes or machines
    with `SQLiteStore` / `RedisStore` and the same `name`.

    Args:
        max_tokens: limit on input + output tokens per window.
        max_cost_usd: limit on dollars per window (priced with `price()`).
        window: "hour", "day", "week", "month" (calendar, in `timezone`), a
            `timedelta` (rolling: spending leaves it in steps of window / 12), or None.
        per_agent: one limit per agent (see `UsageTracker` for how agents are named)
            instead of one for all calls.
        store: where spending is counted; default a new `MemoryStore` (this process).
        timezone: IANA name or tzinfo deciding calendar boundaries.
        name: budgets with the same name in the same store share their spending.
        default_output_tokens: reserved for calls that set no `max_tokens`; 0 (the
            default) reserves their input only, so their output can overshoot.
        prices: a `PriceTable` with your own prices for `max_cost_usd`.
        clock: returns the current time (an aware datetime); for tests.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage
        >>> budget = TokenBudget(max_tokens=1_000, window="day")
        >>> reply = AIMessage("hi", usage_metadata={
        ...     "input_tokens": 8, "output_tokens": 2, "total_tokens": 10})
        >>> model = GenericFakeChatModel(messages=iter([reply]))
        >>> _ = model.invoke("hello", config={"callbacks": [budget]})
        >>> budget.remaining().tokens
        990
    """

    raise_error = True

    def __init__(
        self,
        max_tokens: int | None = None,
        max_cost_usd: Decimal | float | int | str | None = None,
        *,
        window: str | _dt.timedelta | None = "day",
        per_agent: bool = False,
        store: Store | None = None,
        timezone: str | _dt.tzinfo = "UTC",
        name: str = "default",
        default_output_tokens: int = 0,
        prices: PriceTable | None = None,
        agent_key: Callable[[CallStart], str | None] | None = None,
        clock: Callable[[], _dt.datetime] | None = None,
    ) -> None:
        if max_tokens is None and max_cost_usd is None:
            raise InvalidArgumentError("give max_tokens, max_cost_usd or both")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0
        ):
            raise InvalidArgumentError(
                f"max_tokens must be a positive int, got {shown(max_tokens)}"
            )
        if isinstance(window, str) and window not in _CALENDAR_WINDOWS:
            raise InvalidArgumentError(
                f"window must be one of {_CALENDAR_WINDOWS}, a timedelta or None"
            )
        if isinstance(window, _dt.timedelta) and window.total_seconds() <= 0:
            raise InvalidArgumentError("a rolling window must be a positive timedelta")
        if window is not None and not isinstance(window, (str, _dt.timedelta)):
            raise ArgumentTypeError(
                f"window must be a str, a timedelta or None, got {shown(window)}"
            )
        if (
            isinstance(default_output_tokens, bool)
            or not isinstance(default_output_tokens, int)
            or default_output_tokens < 0
        ):
            raise InvalidArgumentError("default_output_tokens must be a non-negative int")
        if store is not None and not isinstance(store, Store):
            raise ArgumentTypeError(f"store must implement Store, got {type(store).__name__}")
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("name must be a non-empty string")
        super().__init__()
        self.max_tokens = max_tokens
        self.max_cost_usd = None if max_cost_usd is None else _to_usd(max_cost_usd)
        self.window = window
        self.per_agent = per_agent
        self.store: Store = store if store is not None else MemoryStore()
        self.timezone = _timezone(timezone)
        self.name = name
        self.default_output_tokens = default_output_tokens
        self.prices = prices
        self.agent_key = agent_key
        self._clock = clock or (lambda: _dt.datetime.now(_UTC))
        self._prefix = f"tokenopt:budget:{name}"
        self._pending: dict[UUID, _Reservation] = {}
        # SQLite and Redis block: async runs call this handler in an executor then.
        self.run_inline = isinstance(self.store, MemoryStore)

    def __repr__(self) -> str:
        return (
            f"TokenBudget(max_tokens={self.max_tokens!r}, max_cost_usd={self.max_cost_usd!r}, "
            f"window={self.window!r}, per_agent={self.per_agent!r}, name={self.name!r})"
        )

    # -- windows ---------------------------------------------------------------------------

    def _now(self) -> _dt.datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=_UTC)

    def _calendar(self, now: _dt.datetime) -> tuple[str, _dt.datetime]:
        """Id of the calendar window holding `now`, and when it ends."""
        local = now.astimezone(self.timezone)
        tz = self.timezone
        if self.window == "hour":
            start = local.replace(minute=0, second=0, microsecond=0)
            return f"h{start.strftime('%Y-%m-%dT%H')}", start.astimezone(_UTC) + _dt.timedelta(
                hours=1
            )
        day = local.date()
        if self.window == "day":
            nxt = day + _dt.timedelta(days=1)
            return f"d{day.isoformat()}", _dt.datetime.combine(nxt, _dt.time(), tzinfo=tz)
        if self.window == "week":
            monday = day - _dt.timedelta(days=day.weekday())
            nxt = monday + _dt.timedelta(days=7)
            return f"w{monday.isoformat()}", _dt.datetime.combine(nxt, _dt.time(), tzinfo=tz)
        first = day.replace(day=1)
        nxt = (first + _dt.timedelta(days=32)).replace(day=1)
        return f"m{first.strftime('%Y-%m')}", _dt.datetime.combine(nxt, _dt.time(), tzinfo=tz)

    @staticmethod
    def _bucket_seconds(window: _dt.timedelta) -> float:
        return window.total_seconds() / ROLLING_BUCKETS

    def _scope(self, agent: str | None) -> str:
        return (agent or DEFAULT_AGENT) if self.per_agent else "all"

    def _key(self, scope: str, unit: str, window_id: str) -> str:
        return f"{self._prefix}:{scope}:{unit}:{window_id}"

    def _read(self, key: str) -> int:
        value = self.store.get(key)
        return int(value) if isinstance(value, (int, float)) else 0

    def _used(self, scope: str, unit: str, now: _dt.datetime) -> tuple[int, _dt.datetime | None]:
        """Spending in the window holding `now`, and when some of it leaves the window."""
        if self.window is None:
            return self._read(self._key(scope, unit, "all")), None
        if isinstance(self.window, str):
            window_id, ends = self._calendar(now)
            return self._read(self._key(scope, unit, window_id)), ends
        bucket = self._bucket_seconds(self.window)
        current = math.floor(now.timestamp() / bucket)
        used = 0
        first_nonzero: int | None = None
        for index in range(current - ROLLING_BUCKETS + 1, current + 1):
            value = self._read(self._key(scope, unit, f"r{index}"))
            used += value
            if value and first_nonzero is None:
                first_nonzero = index
        leaves = first_nonzero if first_nonzero is not None else current
        return used, _dt.datetime.fromtimestamp((leaves + ROLLING_BUCKETS) * bucket, _UTC)

    def _take(
        self, scope: str, unit: str, amount: int, limit: int, now: _dt.datetime
    ) -> _Slot | None:
        """Atomically add `amount` if the window stays within `limit`; None if it would not."""
        if self.window is None:
            key, ttl, cap = self._key(scope, unit, "all"), None, limit
        elif isinstance(self.window, str):
            window_id, ends = self._calendar(now)
            key = self._key(scope, unit, window_id)
            ttl = (ends - now).total_seconds() + _GRACE_SECONDS
            cap = limit
        else:
            bucket = self._bucket_seconds(self.window)
            current = math.floor(now.timestamp() / bucket)
            # Closed buckets only change by settlements of calls already in flight, so
            # one atomic add on the current bucket keeps the check-and-reserve exact up
            # to what was in flight.
            closed = sum(
                self._read(self._key(scope, unit, f"r{index}"))
                for index in range(current - ROLLING_BUCKETS + 1, current)
            )
            key = self._key(scope, unit, f"r{current}")
            ttl = self.window.total_seconds() + bucket
            cap = limit - closed
        if self.store.add(key, amount, ttl_seconds=ttl, max_value=cap) is None:
            return None
        return _Slot(key=key, amount=amount, ttl_seconds=ttl)

    def _exceeded(
        self, scope: str, unit: str, amount: int, limit: int, now: _dt.datetime
    ) -> BudgetExceededError:
        used, resets_at = self._used(scope, unit, now)
        scale = 1 if unit == _TOKENS else 1e9
        return BudgetExceededError(
            used=used / scale,
            limit=limit / scale,
            unit="tokens" if unit == _TOKENS else "USD",
            requested=amount / scale,
            resets_at=resets_at,
            scope=scope if self.per_agent else None,
        )

    # -- reserve, settle, release ---------------------------------------------------------

    def _price(
        self, model: str | None, usage: Usage, processing: Processing = "standard"
    ) -> Decimal:
        if model is None:
            raise UnknownModelError(
                "<unnamed>",
                "A call names no model, so max_cost_usd cannot price it. Set the model "
                "name on the chat model, or use max_tokens.",
            )
        return price(model, usage, table=self.prices, processing=processing)

    def reserve(self, call: CallStart) -> None:
        """Reserve the call's worst case; raise `BudgetExceededError` if it does not fit.

        Exactly one of `settle` or `release` must follow for `call.run_id`.
        """
        input_tokens = self._input_tokens(call)
        output_tokens = call.max_output_tokens or self.default_output_tokens
        scope = self._scope(call.agent)
        now = self._now()
        processing = call_processing(call)
        wanted: list[tuple[str, int, int]] = []
        if self.max_tokens is not None:
            wanted.append((_TOKENS, input_tokens + output_tokens, self.max_tokens))
        if self.max_cost_usd is not None:
            worst = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
            cost = _nano(self._price(call.model, worst, processing))
            wanted.append((_COST, cost, _nano(self.max_cost_usd)))
        taken: list[tuple[str, _Slot]] = []
        for unit, amount, limit in wanted:
            slot = self._take(scope, unit, amount, limit, now)
            if slot is None:
                for _, done in taken:
                    self.store.add(done.key, -done.amount)
                raise self._exceeded(scope, unit, amount, limit, now)
            taken.append((unit, slot))
        self._pending[call.run_id] = _Reservation(
            slots=tuple(taken), input_tokens=input_tokens, model=call.model, processing=processing
        )

    def settle(self, run_id: UUID, usage: Usage, *, model: str | None = None) -> None:
        """Replace the call's reservation with what it really used."""
        reservation = self._pending.pop(run_id, None)
        if reservation is None:
            return
        for unit, slot in reservation.slots:
            if unit == _TOKENS:
                actual = usage.total_tokens
            else:
                actual = self._settled_cost(reservation, usage, model, slot)
            self._adjust(slot, actual - slot.amount)

    def _settled_cost(
        self, reservation: _Reservation, usage: Usage, model: str | None, slot: _Slot
    ) -> int:
        for candidate in dict.fromkeys((model, reservation.model)):
            if candidate is None:
                continue
            try:
                return _nano(self._price(candidate, usage, reservation.processing))
            except UnknownModelError:
                continue
        logger.warning("No price for %r: its reserved cost stays debited", model)
        return slot.amount

    def release(self, run_id: UUID) -> None:
        """Give the call's reservation back: it cost nothing (cache hit, failure)."""
        reservation = self._pending.pop(run_id, None)
        if reservation is None:
            return
        for _, slot in reservation.slots:
            self._adjust(slot, -slot.amount)

    def _adjust(self, slot: _Slot, delta: int) -> None:
        if not delta:
            return
        try:
            self.store.add(slot.key, delta, ttl_seconds=slot.ttl_seconds)
        except StoreUnavailableError:
            # The call already happened: failing it now would lose its answer.
            logger.exception("Could not settle %+d on budget key %r", delta, slot.key)

    # -- callbacks (when used on its own) --------------------------------------------------

    def _call_started(self, call: CallStart) -> None:
        self.reserve(call)  # raises BudgetExceededError before the request is sent

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Settle with the reported usage (or an estimate); release on a cache hit."""
        reservation = self._pending.get(run_id)
        if reservation is None:
            return
        result = read_result(response)
        if result.cache_hit:
            self.release(run_id)
            return
        usage = result.usage
        if usage is None:
            output_tokens = int(self._counter(reservation.model).count_text(output_text(response)))
            usage = Usage(input_tokens=reservation.input_tokens, output_tokens=output_tokens)
        self.settle(run_id, usage, model=result.model)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Settle with a partial response's usage, else release."""
        partial = kwargs.get("response")
        usage = read_result(partial).usage if isinstance(partial, LLMResult) else None
        if usage is None:
            self.release(run_id)
        else:
            self.settle(run_id, usage)

    # -- inspection ------------------------------------------------------------------------

    def remaining(self, agent: str | None = None) -> BudgetRemaining:
        """What is left in the current window (of `agent`'s budget when `per_agent`)."""
        scope = self._scope(agent)
        now = self._now()
        used_tokens, resets_tokens = self._used(scope, _TOKENS, now)
        used_nano, resets_cost = self._used(scope, _COST, now)
        resets = [
            r
            for r, unit_limit in (
                (resets_tokens, self.max_tokens),
                (resets_cost, self.max_cost_usd),
            )
            if unit_limit
        ]
        resets_at = min((r for r in resets if r is not None), default=None)
        tokens = None if self.max_tokens is None else max(self.max_tokens - used_tokens, 0)
        cost = None
        if self.max_cost_usd is not None:
            cost = max(self.max_cost_usd - Decimal(used_nano) / _NANO, Decimal(0))
        return BudgetRemaining(
            tokens=tokens,
            cost_usd=cost,
            used_tokens=used_tokens,
            used_cost_usd=Decimal(used_nano) / _NANO,
            resets_at=resets_at,
        )

    def context_tokens_for(
        self,
        remaining: BudgetRemaining | int | None = None,
        *,
        model: str | None = None,
        share: float = 0.05,
        min_context_tokens: int = 256,
        max_context_tokens: int = 8000,
    ) -> int:
        """A context size that lets the rest of the budget last: graceful degradation.

        Spends at most `share` of what is left on one call's context (1/20 by default,
        so about 20 more calls fit), clamped to [`min_context_tokens`,
        `max_context_tokens`] and never more than what is left. Dollars left are turned
        into tokens at `model`'s input price. Pass the result as `max_tokens` of a
        summarizing history: `max_tokens=lambda: budget.context_tokens_for()`.

        Example:
            >>> budget = TokenBudget(max_tokens=100_000)
            >>> budget.context_tokens_for(100_000), budget.context_tokens_for(20_000)
            (5000, 1000)
        """
        if not 0 < share <= 1:
            raise InvalidArgumentError("share must be in (0, 1]")
        if min_context_tokens < 0 or max_context_tokens < min_context_tokens:
            raise InvalidArgumentError("need 0 <= min_context_tokens <= max_context_tokens")
        if remaining is None:
            remaining = self.remaining()
        if isinstance(remaining, int):
            left: int | None = max(remaining, 0)
        else:
            left = remaining.tokens
            if remaining.cost_usd is not None:
                if model is None:
                    raise InvalidArgumentError(
                        "this budget limits dollars: pass model= to turn them into tokens"
                    )
                per_mtok = price(model, Usage(input_tokens=1_000_000), table=self.prices)
                if per_mtok > 0:
                    affordable = int(remaining.cost_usd * 1_000_000 / per_mtok)
                    left = affordable if left is None else min(left, affordable)
        if left is None:
            return max_context_tokens
        size = min(max(int(left * share), min_context_tokens), max_context_tokens)
        return min(size, left)
