"""Leases: a reservation nobody settles comes back to the budget, exactly once.

A call reserves its worst case before it is sent. If its process dies mid-call, or
its settlement cannot be written, the reservation would stay debited until the
window resets; with a lease, the next operation on the budget after `lease_seconds`
returns it. The clock is injected, so no test waits. Processes killed with SIGKILL:
tests/unit_tests/callbacks/test_budget_kill.py (SQLite) and the Redis twin.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_tokenopt.callbacks.budget import DEFAULT_LEASE_SECONDS, TokenBudget, _parse_lease
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import CallStart, Usage
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError, StoreUnavailableError
from langchain_tokenopt.stores import MemoryStore, SQLiteStore, Store
from langchain_tokenopt.stores.base import JSON, Number
from tests.support.chat_models import CountingFakeChatModel
from tests.support.stores import SwitchableStore

QUESTION = [HumanMessage("What is the capital of France?")]
INPUT_TOKENS = int(TokenCounter("gpt-4o").count_messages(QUESTION))
LEASE_SECONDS = 60.0
START = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
LEASE_ROOT = "tokenopt:budget-lease:"


class Clock:
    """A settable clock shared by the budgets of one test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(tmp_path / "budget.db")


def call(model: str = "gpt-4o", max_output_tokens: int = 50) -> CallStart:
    return CallStart(
        run_id=uuid4(),
        parent_run_id=None,
        agent="default",
        model=model,
        provider="openai",
        tags=(),
        metadata={},
        name=None,
        messages=QUESTION,
        prompts=None,
        tools=(),
        max_output_tokens=max_output_tokens,
    )


def budget_on(store: Store, clock: Clock, **kwargs: Any) -> TokenBudget:
    options: dict[str, Any] = {
        "max_tokens": 1_000,
        "window": None,
        "store": store,
        "name": "shared",
        "lease_seconds": LEASE_SECONDS,
        "clock": clock,
    }
    return TokenBudget(**{**options, **kwargs})


def lease_keys(store: Store) -> list[str]:
    return [key for key, _ in store.scan(LEASE_ROOT)]


RESERVED = INPUT_TOKENS + 50


# ------------------------------------------------------------------ the argument


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (0, InvalidArgumentError),
        (-1, InvalidArgumentError),
        (float("nan"), InvalidArgumentError),
        (float("inf"), InvalidArgumentError),
        (True, ArgumentTypeError),
        ("60", ArgumentTypeError),
    ],
)
def test_lease_seconds_must_be_a_positive_finite_number(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="lease_seconds"):
        TokenBudget(max_tokens=10, lease_seconds=bad)


def test_the_default_lease_is_generous() -> None:
    assert TokenBudget(max_tokens=10).lease_seconds == DEFAULT_LEASE_SECONDS == 900


# ------------------------------------------------------------------ taking back


def test_an_unsettled_reservation_stays_debited_until_its_lease_ends(store: Store) -> None:
    clock = Clock()
    crashed = budget_on(store, clock)
    crashed.reserve(call())  # its process "dies": no settle, no release
    survivor = budget_on(store, clock)
    clock.advance(LEASE_SECONDS - 1)
    assert survivor.remaining().used_tokens == RESERVED
    clock.advance(2)
    assert survivor.remaining().used_tokens == 0
    assert lease_keys(store) == []


@pytest.mark.parametrize("window", ["day", dt.timedelta(hours=1)])
def test_an_expired_lease_returns_to_calendar_and_rolling_windows(
    store: Store, window: Any
) -> None:
    clock = Clock()
    budget_on(store, clock, window=window, max_cost_usd=1).reserve(call())
    survivor = budget_on(store, clock, window=window, max_cost_usd=1)
    assert survivor.remaining().used_tokens == RESERVED
    clock.advance(LEASE_SECONDS + 1)
    left = survivor.remaining()
    assert (left.used_tokens, left.used_cost_usd) == (0, Decimal(0))


def test_the_next_reserve_takes_back_an_expired_lease_before_checking_the_limit(
    store: Store,
) -> None:
    clock = Clock()
    budget_on(store, clock, max_tokens=RESERVED).reserve(call())
    clock.advance(LEASE_SECONDS + 1)
    budget_on(store, clock, max_tokens=RESERVED).reserve(call())  # fits only if returned


def test_two_budgets_sweeping_together_return_a_lease_exactly_once(store: Store) -> None:
    clock = Clock()
    budget_on(store, clock).reserve(call())
    clock.advance(LEASE_SECONDS + 1)
    first, second = budget_on(store, clock), budget_on(store, clock)
    # Both scan before either claims: the store's atomic add lets one of them win.
    expired = list(store.scan(LEASE_ROOT))
    for sweeper in (first, second):
        for key, value in expired:
            parsed = _parse_lease(value)
            assert parsed is not None
            sweeper._take_back(key, parsed[1], clock())
    assert first.remaining().used_tokens == 0  # not -RESERVED


def test_a_settlement_after_its_lease_was_returned_adds_the_real_usage(store: Store) -> None:
    clock = Clock()
    slow = budget_on(store, clock)
    started = call()
    slow.reserve(started)
    clock.advance(LEASE_SECONDS + 1)
    assert budget_on(store, clock).remaining().used_tokens == 0  # taken back
    slow.settle(started.run_id, Usage(input_tokens=INPUT_TOKENS, output_tokens=7))
    assert budget_on(store, clock).remaining().used_tokens == INPUT_TOKENS + 7


def test_a_settled_call_leaves_no_lease_behind_and_is_never_returned(store: Store) -> None:
    clock = Clock()
    budget = budget_on(store, clock)
    started = call()
    budget.reserve(started)
    assert len(lease_keys(store)) == 1
    budget.settle(started.run_id, Usage(input_tokens=INPUT_TOKENS, output_tokens=7))
    assert lease_keys(store) == []
    assert [k for k, _ in store.scan("tokenopt:budget-claim:")] == []
    clock.advance(LEASE_SECONDS * 10)
    assert budget.remaining().used_tokens == INPUT_TOKENS + 7


def test_a_live_lease_of_another_budget_name_is_not_touched(store: Store) -> None:
    clock = Clock()
    budget_on(store, clock, name="other").reserve(call())
    clock.advance(LEASE_SECONDS + 1)
    budget_on(store, clock).remaining()
    assert budget_on(store, clock, name="other").remaining().used_tokens == 0


def test_calls_through_a_model_reserve_and_settle_with_a_lease(store: Store) -> None:
    clock = Clock()
    budget = budget_on(store, clock)
    reply = AIMessage(
        "Paris.",
        usage_metadata={
            "input_tokens": INPUT_TOKENS,
            "output_tokens": 3,
            "total_tokens": INPUT_TOKENS + 3,
        },
    )
    model = CountingFakeChatModel(messages=itertools.repeat(reply), max_tokens=50)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    clock.advance(LEASE_SECONDS + 1)
    assert budget.remaining().used_tokens == INPUT_TOKENS + 3
    assert lease_keys(store) == []


# ------------------------------------------------------------------ partial writes


def test_tokens_written_then_the_cost_write_failing_is_rolled_back_when_the_store_returns() -> None:
    store = SwitchableStore()
    clock = Clock()
    budget = budget_on(store, clock, max_cost_usd=1)
    store.adds_until_down = 1  # the token add succeeds, the cost add finds the store down
    with pytest.raises(StoreUnavailableError):
        budget.reserve(call())
    store.down = False
    store.adds_until_down = None
    assert store.get("tokenopt:budget:{shared}:all:tokens:all") == RESERVED  # not yet undone
    left = budget.remaining()  # the next operation finishes the roll-back
    assert (left.used_tokens, left.used_cost_usd) == (0, Decimal(0))
    assert lease_keys(store) == []


class FailsOneAdd(MemoryStore):
    """A MemoryStore whose `fail_add`-th add (1-based) raises StoreUnavailableError."""

    def __init__(self, fail_add: int) -> None:
        super().__init__()
        self.fail_add = fail_add
        self.adds = 0

    def add(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        self.adds += 1
        if self.adds == self.fail_add:
            raise StoreUnavailableError("FailsOneAdd", "this add fails")
        return super().add(key, amount, ttl_seconds=ttl_seconds, max_value=max_value)


def test_a_partial_reservation_is_rolled_back_at_once_when_the_store_answers() -> None:
    store = FailsOneAdd(fail_add=2)
    budget = budget_on(store, Clock(), max_cost_usd=1)
    with pytest.raises(StoreUnavailableError):
        budget.reserve(call())
    assert store.get("tokenopt:budget:{shared}:all:tokens:all") == 0
    assert store.get("tokenopt:budget:{shared}:all:nano_usd:all") is None
    assert lease_keys(store) == []


class FailsSets(MemoryStore):
    """A MemoryStore whose `set` is unavailable (the lease record cannot be written)."""

    def set(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        raise StoreUnavailableError("FailsSets", "set fails")


def test_a_reservation_whose_lease_cannot_be_written_is_given_back() -> None:
    store = FailsSets()
    budget = budget_on(store, Clock(), max_cost_usd=1)
    with pytest.raises(StoreUnavailableError):
        budget.reserve(call())
    assert store.get("tokenopt:budget:{shared}:all:tokens:all") == 0
    assert store.get("tokenopt:budget:{shared}:all:nano_usd:all") == 0


def test_a_settlement_the_store_refused_is_retried_by_the_next_operation() -> None:
    store = SwitchableStore()
    clock = Clock()
    budget = budget_on(store, clock)
    started = call()
    budget.reserve(started)
    store.down = True
    budget.settle(started.run_id, Usage(input_tokens=INPUT_TOKENS, output_tokens=7))  # logs
    store.down = False
    assert budget.remaining().used_tokens == INPUT_TOKENS + 7
    assert lease_keys(store) == []
    clock.advance(LEASE_SECONDS * 10)
    assert budget.remaining().used_tokens == INPUT_TOKENS + 7
