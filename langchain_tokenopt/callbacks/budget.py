"""Spending limits in tokens and dollars, enforced before a request is sent.

`TokenBudget` reserves each call's worst case (its exact input count plus its
`max_tokens`) with one atomic check-and-add in a `Store`, so several threads, processes
or machines (SQLite, Redis) sharing one budget never spend more than the limit plus
what was already in flight. When the call ends the reservation is settled with the
real usage; a cache hit or a failure releases it. Each reservation also has a lease:
one not settled within `lease_seconds` (its process was killed, its settlement could
not be written) is returned by the next operation on the budget, in any process.
Windows reset by the calendar (hour, day, week, month in a timezone) or roll (a
`timedelta`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.outputs import LLMResult

from langchain_tokenopt.callbacks._calls import ModelCallHandler, call_processing
from langchain_tokenopt.core.logs import log_once
from langchain_tokenopt.core.pricing import PriceTable, Processing, price
from langchain_tokenopt.core.usage import (
    DEFAULT_AGENT,
    CallStart,
    Usage,
    output_text,
    read_result,
)
from langchain_tokenopt.core.validation import MAX_TTL_SECONDS, dollars, positive_number, shown
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    BudgetExceededError,
    CorruptStateError,
    InvalidArgumentError,
    StoreUnavailableError,
    UnknownModelError,
)
from langchain_tokenopt.stores import MemoryStore, Store

__all__ = ["BudgetExceededError", "BudgetRemaining", "TokenBudget"]

logger = logging.getLogger(__name__)

_UTC = _dt.timezone.utc

# langchain-core logs every exception a callback raises at WARNING ("Error in
# %s.%s callback: %r") before it re-raises those of handlers with `raise_error`. A budget
# stop reaches the caller as `BudgetExceededError` anyway, so that record only repeats
# it on stderr: dropped for our handlers (docs/internals.md).
_CALLBACK_LOGGER = "langchain_core.callbacks.manager"
_CALLBACK_ERROR_MESSAGE = "Error in %s.%s callback: %s"
_RERAISING_HANDLERS = frozenset({"TokenBudget", "UsageTracker"})


class _BudgetStopLogFilter(logging.Filter):
    """Drops langchain-core's WARNING for a budget stop that our handler re-raises."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            record.msg == _CALLBACK_ERROR_MESSAGE
            and isinstance(args, tuple)
            and len(args) == 3
            and args[0] in _RERAISING_HANDLERS
            and str(args[2]).startswith(f"{BudgetExceededError.__name__}(")
        )


_BUDGET_STOP_FILTER = _BudgetStopLogFilter()


def _quiet_budget_stops() -> None:
    """Install the filter on langchain-core's callback logger (once)."""
    callback_logger = logging.getLogger(_CALLBACK_LOGGER)
    if _BUDGET_STOP_FILTER not in callback_logger.filters:
        callback_logger.addFilter(_BUDGET_STOP_FILTER)


_NANO = Decimal(1_000_000_000)
_CALENDAR_WINDOWS = ("hour", "day", "week", "month")
#: A rolling window is kept as this many buckets; spending leaves it bucket by bucket.
ROLLING_BUCKETS = 12
# Calendar keys outlive their window a little, so late settlements land in them.
_GRACE_SECONDS = 3600.0
_TOKENS = "tokens"
_COST = "nano_usd"
#: Default lease of a reservation: a call not settled within it is returned to the budget.
DEFAULT_LEASE_SECONDS = 900.0
# Lease records (and their claims) stay in the store this long after the lease ends,
# at least, so a sweep finds them; a budget idle for longer keeps them debited.
_LEASE_RECORD_GRACE_SECONDS = 3600.0
# Lease and claim keys live outside every budget's counter keys (agent names are free).
_LEASE_ROOT = "tokenopt:budget-lease:"
_CLAIM_ROOT = "tokenopt:budget-claim:"
# Settlements that could not be written, kept for the next operation to retry.
_MAX_UNFINISHED = 10_000


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
    lease_key: str
    reserved_at: float  # epoch seconds, by the budget's clock
    processing: Processing = "standard"


@dataclass(slots=True)
class _Ending:
    """Settling one lease: claim it, adjust its slots, drop its record. Resumable.

    `won` is None until the claim is decided: True when this ending holds it (the
    reserved amounts are still debited), False when a sweep returned them first (the
    actual amounts are added in full). `done` counts the slots already adjusted.
    """

    lease_key: str
    slots: tuple[_Slot, ...]
    actuals: tuple[int, ...]
    reserved_at: float
    won: bool | None = None
    done: int = 0
    keep_claim: bool = False  # a sweep keeps its claim, so a late settlement is refused
    skipped: list[str] = field(default_factory=list)


def _claim_key(lease_key: str) -> str:
    return _CLAIM_ROOT + lease_key[len(_LEASE_ROOT) :]


def _lease_record(slots: tuple[_Slot, ...], expires_at: float) -> dict[str, Any]:
    return {"x": expires_at, "s": [[slot.key, slot.amount, slot.ttl_seconds] for slot in slots]}


def _parse_lease(value: Any) -> tuple[float, tuple[_Slot, ...]] | None:
    """(expires_at, slots) of a stored lease record; None if it is not one."""
    if not isinstance(value, dict):
        return None
    expires_at, raw_slots = value.get("x"), value.get("s")
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        return None
    if not isinstance(raw_slots, list):
        return None
    slots = []
    for item in raw_slots:
        if not (isinstance(item, list) and len(item) == 3):
            return None
        key, amount, ttl = item
        if not isinstance(key, str) or isinstance(amount, bool) or not isinstance(amount, int):
            return None
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
            return None
        slots.append(_Slot(key=key, amount=amount, ttl_seconds=None if ttl is None else ttl))
    return float(expires_at), tuple(slots)


class TokenBudget(ModelCallHandler):
    """A limit on tokens and / or dollars per window, checked before each model call.

    Before a call starts, its exact input token count plus its `max_tokens`
    (`default_output_tokens` when the call sets none) is reserved with an atomic
    check-and-add; if that would pass the limit, `BudgetExceededError` (used, limit,
    reset time) is raised and no request is sent. When the call ends the reservation
    is settled with the real usage; a cache hit or a failed call releases it. A store
    that cannot be reached before a call stops the call (`StoreUnavailableError`: fail
    closed); after a call, a failed settlement is logged, not raised, and retried by
    the next operation on the budget.

    Every reservation is leased: one not settled within `lease_seconds` (its process
    was killed mid-call, or its settlement could not be written) is returned to the
    budget by the next operation on it (`reserve`, `settle`, `release`,
    `remaining`), in whichever process, on every store. Each reservation is recorded
    under its own key, and whoever returns or settles it first claims it with the
    store's atomic add, so it is returned exactly once; a settlement that arrives
    after its lease was returned adds the call's real usage instead. A reservation
    whose second write fails (tokens written, cost not) is rolled back at once, or by
    the next operation if the store is still down. A counter the store cannot read
    (`CorruptStateError`: written by something else) stops calls (fail closed) until
    its key is deleted; the error names the key and is logged once.

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
        lease_seconds: how long a reservation may stay unsettled before the budget
            takes it back; longer than your slowest call (default 15 minutes).
        clock: returns the current time (an aware datetime); windows and leases are
            measured with it (for tests).

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
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
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
        lease_seconds = positive_number(
            lease_seconds,
            "lease_seconds",
            maximum=MAX_TTL_SECONDS,
            hint="give seconds longer than your slowest model call",
        )
        super().__init__()
        _quiet_budget_stops()
        self.max_tokens = max_tokens
        self.max_cost_usd = (
            None if max_cost_usd is None else dollars(max_cost_usd, "max_cost_usd", positive=True)
        )
        self.window = window
        self.per_agent = per_agent
        self.store: Store = store if store is not None else MemoryStore()
        self.timezone = _timezone(timezone)
        self.name = name
        self.default_output_tokens = default_output_tokens
        self.prices = prices
        self.agent_key = agent_key
        self._clock = clock or (lambda: _dt.datetime.now(_UTC))
        # Every key of one budget carries the hash tag {name}: on a Redis Cluster they
        # share one slot, so a budget lives (or is unavailable) on one master, and the
        # sweep scans only that master.
        self._prefix = f"tokenopt:budget:{{{name}}}"
        self.lease_seconds = float(lease_seconds)
        self._lease_prefix = f"{_LEASE_ROOT}{{{name}}}:"
        self._lease_ttl = self.lease_seconds + max(self.lease_seconds, _LEASE_RECORD_GRACE_SECONDS)
        self._pending: dict[UUID, _Reservation] = {}
        # Store writes that failed after a call (settlements, roll-backs), and when
        # the next sweep for expired leases is due (epoch seconds).
        self._unfinished: deque[_Ending] = deque()
        self._upkeep_lock = threading.Lock()
        self._next_sweep = -math.inf
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

    def _corrupt(self, key: str, detail: str, store: str | None = None) -> CorruptStateError:
        """The error for a budget counter that cannot be read (logged once per key)."""
        error = CorruptStateError(
            key,
            detail,
            store=store,
            remedy=(
                f"Budget {self.name!r} refuses calls until it can count again: delete "
                "this key from the store (that window's spending restarts from what is "
                "reserved after it)."
            ),
        )
        log_once(logger, f"corrupt-budget:{id(self.store)}:{key}", logging.ERROR, "%s", error)
        return error

    def _read(self, key: str) -> int:
        try:
            value = self.store.get(key)
        except CorruptStateError as exc:
            raise self._corrupt(key, exc.detail, exc.store) from None
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._corrupt(key, f"it holds a {type(value).__name__}, not a number")
        return int(value)

    def _add(
        self, key: str, amount: int, ttl: float | None, cap: int | None = None
    ) -> int | float | None:
        """`store.add`; a counter that cannot be read raises `CorruptStateError`."""
        try:
            return self.store.add(key, amount, ttl_seconds=ttl, max_value=cap)
        except CorruptStateError as exc:
            raise self._corrupt(key, exc.detail, exc.store) from None
        except (TypeError, OverflowError) as exc:  # a JSON non-number, a runaway float
            raise self._corrupt(key, str(exc)) from None

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
        if self._add(key, amount, ttl, cap) is None:
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

        Exactly one of `settle` or `release` must follow for `call.run_id`, within
        `lease_seconds`; after that the budget takes the reservation back itself.
        """
        input_tokens = self._input_tokens(call)
        output_tokens = call.max_output_tokens or self.default_output_tokens
        scope = self._scope(call.agent)
        now = self._now()
        processing = call_processing(call)
        self._upkeep(now, quiet=False)
        wanted: list[tuple[str, int, int]] = []
        if self.max_tokens is not None:
            wanted.append((_TOKENS, input_tokens + output_tokens, self.max_tokens))
        if self.max_cost_usd is not None:
            worst = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
            cost = _nano(self._price(call.model, worst, processing))
            wanted.append((_COST, cost, _nano(self.max_cost_usd)))
        taken: list[tuple[str, _Slot]] = []
        try:
            for unit, amount, limit in wanted:
                slot = self._take(scope, unit, amount, limit, now)
                if slot is None:
                    self._roll_back([done for _, done in taken], now)
                    taken = []
                    raise self._exceeded(scope, unit, amount, limit, now)
                taken.append((unit, slot))
            lease_key = self._lease_prefix + uuid.uuid4().hex
            slots = tuple(slot for _, slot in taken)
            expires_at = now.timestamp() + self.lease_seconds
            self.store.set(lease_key, _lease_record(slots, expires_at), self._lease_ttl)
        except (StoreUnavailableError, CorruptStateError):
            # A partial reservation (tokens taken, cost not; or no lease record) is
            # given back now, or by the next operation if the store is still down.
            self._roll_back([slot for _, slot in taken], now)
            raise
        self._pending[call.run_id] = _Reservation(
            slots=tuple(taken),
            input_tokens=input_tokens,
            model=call.model,
            lease_key=lease_key,
            reserved_at=now.timestamp(),
            processing=processing,
        )

    def _roll_back(self, slots: list[_Slot], now: _dt.datetime) -> None:
        """Give back slots taken for a reservation that will not happen (no lease yet)."""
        if not slots:
            return
        ending = _Ending(
            lease_key="",
            slots=tuple(slots),
            actuals=(0,) * len(slots),
            reserved_at=now.timestamp(),
            won=True,
        )
        self._run_ending(ending, now, quiet=True)

    def settle(self, run_id: UUID, usage: Usage, *, model: str | None = None) -> None:
        """Replace the call's reservation with what it really used."""
        reservation = self._pending.pop(run_id, None)
        if reservation is None:
            return
        actuals = []
        for unit, slot in reservation.slots:
            if unit == _TOKENS:
                actuals.append(usage.total_tokens)
            else:
                actuals.append(self._settled_cost(reservation, usage, model, slot))
        self._end(reservation, tuple(actuals))

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
        self._end(reservation, (0,) * len(reservation.slots))

    def _end(self, reservation: _Reservation, actuals: tuple[int, ...]) -> None:
        """Settle a lease with `actuals`; never raises (the call already happened)."""
        now = self._now()
        ending = _Ending(
            lease_key=reservation.lease_key,
            slots=tuple(slot for _, slot in reservation.slots),
            actuals=actuals,
            reserved_at=reservation.reserved_at,
        )
        self._run_ending(ending, now, quiet=True)
        self._upkeep(now, quiet=True)

    # -- leases: settle exactly once, take back what nobody settled --------------------

    def _run_ending(self, ending: _Ending, now: _dt.datetime, *, quiet: bool) -> None:
        """Advance `ending`; if the store fails, keep it for the next operation."""
        try:
            self._advance(ending, now)
        except StoreUnavailableError:
            self._keep_unfinished(ending)
            if not quiet:
                raise
            logger.warning(
                "Could not settle a reservation of budget %r (the store is unavailable); "
                "the next operation on the budget retries it.",
                self.name,
                exc_info=True,
            )
        except CorruptStateError as exc:
            if not quiet:
                raise
            # Its lease key cannot be read: the lease returns the reservation, or
            # `reserve` keeps refusing calls (fail closed) until the key is deleted.
            log_once(logger, f"corrupt-budget:{id(self.store)}:{exc.key}", logging.ERROR, "%s", exc)

    def _keep_unfinished(self, ending: _Ending) -> None:
        with self._upkeep_lock:
            if len(self._unfinished) >= _MAX_UNFINISHED:
                dropped = self._unfinished.popleft()
                logger.warning(
                    "Budget %r keeps at most %d unwritten settlements; dropped one for "
                    "%r (its lease returns it, if it has one).",
                    self.name,
                    _MAX_UNFINISHED,
                    dropped.lease_key,
                )
            self._unfinished.append(ending)

    def _advance(self, ending: _Ending, now: _dt.datetime) -> None:
        """Claim the lease (once), adjust the slots not yet adjusted, drop the record."""
        if ending.won is None:
            claim = _claim_key(ending.lease_key)
            ending.won = self.store.add(claim, 1, ttl_seconds=self._lease_ttl, max_value=1) == 1
            if ending.won and now.timestamp() - ending.reserved_at >= self._lease_ttl:
                # Old enough that a sweep's claim may have expired: the record says.
                ending.won = self.store.get(ending.lease_key) is not None
        while ending.done < len(ending.slots):
            slot = ending.slots[ending.done]
            actual = ending.actuals[ending.done]
            delta = actual - slot.amount if ending.won else actual
            if delta:
                try:
                    self._add(slot.key, delta, slot.ttl_seconds)
                except CorruptStateError as exc:
                    ending.skipped.append(exc.key)  # reserve refuses calls until it is fixed
            ending.done += 1
        if ending.won and ending.lease_key:
            self.store.delete(ending.lease_key)
            if not ending.keep_claim:
                self.store.delete(_claim_key(ending.lease_key))

    def _upkeep(self, now: _dt.datetime, *, quiet: bool) -> None:
        """Retry unwritten settlements, then return expired leases if a sweep is due."""
        try:
            self._retry_unfinished(now)
            if now.timestamp() >= self._next_sweep:
                self._sweep(now)
        except (StoreUnavailableError, CorruptStateError):
            if not quiet:
                raise
            logger.warning("Budget %r upkeep failed; retried later", self.name, exc_info=True)

    def _retry_unfinished(self, now: _dt.datetime) -> None:
        while True:
            with self._upkeep_lock:
                if not self._unfinished:
                    return
                ending = self._unfinished.popleft()
            try:
                self._advance(ending, now)
            except StoreUnavailableError:
                with self._upkeep_lock:
                    self._unfinished.appendleft(ending)
                raise

    def _sweep(self, now: _dt.datetime) -> None:
        """Return every expired, unclaimed lease of this budget to its counters.

        The next sweep is due when the earliest lease seen expires, or one lease
        from now (a lease made later cannot expire sooner).
        """
        started = now.timestamp()
        next_due = started + self.lease_seconds
        for key, value in list(self.store.scan(self._lease_prefix)):
            parsed = _parse_lease(value)
            if parsed is None:
                log_once(
                    logger,
                    f"bad-lease:{id(self.store)}:{key}",
                    logging.WARNING,
                    "Ignoring %s: not a budget lease record (its reservation stays debited).",
                    key,
                )
                continue
            expires_at, slots = parsed
            if expires_at > started:
                next_due = min(next_due, expires_at)
                continue
            self._take_back(key, slots, now)
        self._next_sweep = next_due

    def _take_back(self, lease_key: str, slots: tuple[_Slot, ...], now: _dt.datetime) -> None:
        """Return an expired lease, unless a settlement or another sweep claimed it."""
        claim = _claim_key(lease_key)
        if self.store.add(claim, 1, ttl_seconds=self._lease_ttl, max_value=1) != 1:
            return
        if self.store.get(lease_key) is None:
            return  # settled (record and claim dropped) between our scan and our claim
        ending = _Ending(
            lease_key=lease_key,
            slots=slots,
            actuals=(0,) * len(slots),
            reserved_at=now.timestamp(),
            won=True,
            keep_claim=True,
        )
        self._run_ending(ending, now, quiet=False)
        logger.warning(
            "Budget %r took back a reservation not settled within its lease of %gs "
            "(%s): its process ended or could not write the settlement.",
            self.name,
            self.lease_seconds,
            ", ".join(f"{slot.amount} on {slot.key}" for slot in slots),
        )

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
        self._upkeep(now, quiet=False)
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
