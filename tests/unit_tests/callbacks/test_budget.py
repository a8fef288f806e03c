"""TokenBudget stops a call before it is sent, settles real usage and resets on time."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatResult

from langchain_tokenopt.callbacks.budget import BudgetRemaining, TokenBudget
from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import BudgetExceededError, UnknownModelError
from langchain_tokenopt.stores import MemoryStore, SQLiteStore
from tests.support.chat_models import CountingFakeChatModel

QUESTION = [HumanMessage("What is the capital of France?")]
INPUT_TOKENS = int(TokenCounter("gpt-4o").count_messages(QUESTION))


def reply(input_tokens: int = INPUT_TOKENS, output_tokens: int = 10) -> AIMessage:
    return AIMessage(
        "Paris.",
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    )


def fake(message: AIMessage | None = None, **kwargs: Any) -> CountingFakeChatModel:
    return CountingFakeChatModel(messages=itertools.repeat(message or reply()), **kwargs)


class Clock:
    """A settable clock, so windows are tested without sleeping."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


# ---------------------------------------------------------------- before the call


def test_a_call_over_budget_raises_before_the_model_is_called() -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 49)
    model = fake(max_tokens=50)
    with pytest.raises(BudgetExceededError) as caught:
        model.invoke(QUESTION, config={"callbacks": [budget]})
    assert model.generated == []
    error = caught.value
    assert (error.used, error.limit, error.unit) == (0, INPUT_TOKENS + 49, "tokens")
    assert error.requested == INPUT_TOKENS + 50
    assert error.resets_at is not None


@pytest.mark.parametrize("handler", ["budget", "tracker"])
def test_a_budget_stop_is_raised_once_not_also_logged_as_a_callback_error(
    handler: str, caplog: pytest.LogCaptureFixture
) -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 49)
    callback = budget if handler == "budget" else UsageTracker(budget=budget)
    with caplog.at_level(logging.WARNING), pytest.raises(BudgetExceededError):
        fake(max_tokens=50).invoke(QUESTION, config={"callbacks": [callback]})
    assert caplog.records == []


def test_other_callback_errors_are_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(BaseCallbackHandler):
        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            raise BudgetExceededError(used=2, limit=1, unit="tokens")

    TokenBudget(max_tokens=100)  # installs the filter
    with caplog.at_level(logging.WARNING):
        fake().invoke(QUESTION, config={"callbacks": [Broken()]})
    assert [r.getMessage().split(" callback")[0] for r in caplog.records] == [
        "Error in Broken.on_chat_model_start"
    ]


def test_the_reservation_is_the_exact_input_count_plus_max_tokens() -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 50)
    model = fake(reply(output_tokens=50), max_tokens=50)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    assert model.generated == [1]
    assert budget.remaining().tokens == 0


def test_max_tokens_passed_at_call_time_is_reserved() -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 20)
    model = fake()
    with pytest.raises(BudgetExceededError):
        model.invoke(QUESTION, config={"callbacks": [budget]}, max_tokens=21)
    model.invoke(QUESTION, config={"callbacks": [budget]}, max_tokens=20)


def test_calls_without_max_tokens_reserve_default_output_tokens() -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 99, default_output_tokens=100)
    with pytest.raises(BudgetExceededError):
        fake().invoke(QUESTION, config={"callbacks": [budget]})


# ---------------------------------------------------------------- settling


def test_the_reservation_is_settled_with_the_real_usage() -> None:
    budget = TokenBudget(max_tokens=10_000)
    fake(reply(output_tokens=7), max_tokens=500).invoke(QUESTION, config={"callbacks": [budget]})
    remaining = budget.remaining()
    assert remaining.used_tokens == INPUT_TOKENS + 7
    assert remaining.tokens == 10_000 - INPUT_TOKENS - 7


def test_a_cache_hit_releases_its_reservation_and_debits_nothing() -> None:
    budget = TokenBudget(max_tokens=10_000)
    model = fake(max_tokens=100, cache=InMemoryCache())
    model.invoke(QUESTION, config={"callbacks": [budget]})
    used_after_first = budget.remaining().used_tokens
    model.invoke(QUESTION, config={"callbacks": [budget]})
    assert model.generated == [1]
    assert budget.remaining().used_tokens == used_after_first


def test_a_failed_call_releases_its_reservation() -> None:
    budget = TokenBudget(max_tokens=10_000)
    with pytest.raises(RuntimeError):
        fake(fail_with="down", max_tokens=100).invoke(QUESTION, config={"callbacks": [budget]})
    assert budget.remaining().used_tokens == 0


def test_a_call_without_usage_is_settled_with_counted_tokens() -> None:
    budget = TokenBudget(max_tokens=10_000)
    fake(AIMessage("Paris is the capital."), max_tokens=100).invoke(
        QUESTION, config={"callbacks": [budget]}
    )
    expected = INPUT_TOKENS + TokenCounter("gpt-4o").count_text("Paris is the capital.")
    assert budget.remaining().used_tokens == expected


# ---------------------------------------------------------------- dollars


def test_a_dollar_budget_debits_the_priced_usage() -> None:
    budget = TokenBudget(max_cost_usd="0.01")
    fake(reply(output_tokens=30), max_tokens=100).invoke(QUESTION, config={"callbacks": [budget]})
    cost = price("gpt-4o", {"input_tokens": INPUT_TOKENS, "output_tokens": 30})
    remaining = budget.remaining()
    assert remaining.used_cost_usd == cost
    assert remaining.cost_usd == Decimal("0.01") - cost
    assert remaining.tokens is None


def test_a_dollar_budget_stops_a_call_whose_worst_case_does_not_fit() -> None:
    worst = price("gpt-4o", {"input_tokens": INPUT_TOKENS, "output_tokens": 1000})
    budget = TokenBudget(max_cost_usd=worst - Decimal("0.000001"))
    model = fake(max_tokens=1000)
    with pytest.raises(BudgetExceededError) as caught:
        model.invoke(QUESTION, config={"callbacks": [budget]})
    assert caught.value.unit == "USD"
    assert model.generated == []


def test_a_token_reservation_is_rolled_back_when_the_dollar_limit_refuses() -> None:
    budget = TokenBudget(max_tokens=100_000, max_cost_usd="0.000001")
    with pytest.raises(BudgetExceededError):
        fake(max_tokens=100).invoke(QUESTION, config={"callbacks": [budget]})
    assert budget.remaining().used_tokens == 0


def test_a_dollar_budget_refuses_a_model_without_a_price() -> None:
    budget = TokenBudget(max_cost_usd=1)
    model = fake(model="my-private-llama")
    with pytest.raises(UnknownModelError):
        model.invoke(QUESTION, config={"callbacks": [budget]})
    assert model.generated == []


# ---------------------------------------------------------------- agents


def test_per_agent_budgets_are_separate() -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 10, per_agent=True)
    model = fake(reply(output_tokens=10), max_tokens=10)
    model.invoke(QUESTION, config={"callbacks": [budget], "metadata": {"agent": "a"}})
    with pytest.raises(BudgetExceededError) as caught:
        model.invoke(QUESTION, config={"callbacks": [budget], "metadata": {"agent": "a"}})
    assert caught.value.scope == "a"
    model.invoke(QUESTION, config={"callbacks": [budget], "metadata": {"agent": "b"}})
    assert budget.remaining("a").tokens == 0 and budget.remaining("b").tokens == 0
    assert budget.remaining("c").tokens == INPUT_TOKENS + 10


# ---------------------------------------------------------------- windows


def test_a_calendar_day_resets_at_midnight_in_the_budget_timezone() -> None:
    new_york = ZoneInfo("America/New_York")
    clock = Clock(dt.datetime(2025, 6, 1, 23, 50, tzinfo=new_york))
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 10, timezone=new_york, clock=clock)
    model = fake(reply(output_tokens=10), max_tokens=10)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    with pytest.raises(BudgetExceededError) as caught:
        model.invoke(QUESTION, config={"callbacks": [budget]})
    assert caught.value.resets_at == dt.datetime(2025, 6, 2, 0, 0, tzinfo=new_york)
    # 00:05 UTC on June 2 is still June 1 in New York: same window.
    clock.now = dt.datetime(2025, 6, 2, 0, 5, tzinfo=dt.timezone.utc)
    with pytest.raises(BudgetExceededError):
        model.invoke(QUESTION, config={"callbacks": [budget]})
    clock.now = dt.datetime(2025, 6, 2, 0, 1, tzinfo=new_york)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    assert model.generated == [1, 1]


def test_a_monthly_window_resets_on_the_first() -> None:
    clock = Clock(dt.datetime(2025, 1, 31, 12, tzinfo=dt.timezone.utc))
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 10, window="month", clock=clock)
    model = fake(reply(output_tokens=10), max_tokens=10)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    assert budget.remaining().resets_at == dt.datetime(2025, 2, 1, tzinfo=ZoneInfo("UTC"))
    clock.now = dt.datetime(2025, 2, 1, 0, 0, 1, tzinfo=dt.timezone.utc)
    assert budget.remaining().tokens == INPUT_TOKENS + 10


def test_a_rolling_window_forgets_spending_once_it_is_older_than_the_window() -> None:
    start = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    clock = Clock(start)
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 10, window=dt.timedelta(hours=1), clock=clock)
    model = fake(reply(output_tokens=10), max_tokens=10)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    clock.now = start + dt.timedelta(minutes=59)
    with pytest.raises(BudgetExceededError) as caught:
        model.invoke(QUESTION, config={"callbacks": [budget]})
    # 12:00 is the start of a 5-minute bucket: its spending leaves the window at 13:00.
    assert caught.value.resets_at == start + dt.timedelta(hours=1)
    clock.now = start + dt.timedelta(hours=1)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    assert budget.remaining().used_tokens == INPUT_TOKENS + 10


def test_a_rolling_window_counts_spending_from_earlier_buckets() -> None:
    start = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    clock = Clock(start)
    budget = TokenBudget(
        max_tokens=2 * (INPUT_TOKENS + 10), window=dt.timedelta(hours=1), clock=clock
    )
    model = fake(reply(output_tokens=10), max_tokens=10)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    clock.now = start + dt.timedelta(minutes=20)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    clock.now = start + dt.timedelta(minutes=40)
    with pytest.raises(BudgetExceededError):
        model.invoke(QUESTION, config={"callbacks": [budget]})
    assert budget.remaining().used_tokens == 2 * (INPUT_TOKENS + 10)


def test_a_budget_without_window_never_resets() -> None:
    clock = Clock(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 10, window=None, clock=clock)
    model = fake(reply(output_tokens=10), max_tokens=10)
    model.invoke(QUESTION, config={"callbacks": [budget]})
    clock.now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(BudgetExceededError) as caught:
        model.invoke(QUESTION, config={"callbacks": [budget]})
    assert caught.value.resets_at is None


def test_a_call_settles_in_the_window_it_was_reserved_in() -> None:
    clock = Clock(dt.datetime(2025, 6, 1, 23, 59, tzinfo=dt.timezone.utc))
    budget = TokenBudget(max_tokens=10_000, clock=clock)

    class SlowChat(CountingFakeChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            clock.now = dt.datetime(2025, 6, 2, 0, 1, tzinfo=dt.timezone.utc)  # midnight passes
            return super()._generate(*args, **kwargs)

    SlowChat(messages=itertools.repeat(reply(output_tokens=3)), max_tokens=500).invoke(
        QUESTION, config={"callbacks": [budget]}
    )
    assert budget.remaining().used_tokens == 0  # the new day is untouched
    clock.now = dt.datetime(2025, 6, 1, 23, 59, 30, tzinfo=dt.timezone.utc)
    assert budget.remaining().used_tokens == INPUT_TOKENS + 3


# ---------------------------------------------------------------- degradation


def test_remaining_and_context_tokens_for_shrink_the_context_as_the_budget_drains() -> None:
    budget = TokenBudget(max_tokens=200_000)
    assert budget.context_tokens_for() == 8000  # 5% of 200k, capped at 8000
    big = fake(reply(input_tokens=INPUT_TOKENS, output_tokens=180_000), max_tokens=190_000)
    big.invoke(QUESTION, config={"callbacks": [budget]})
    left = budget.remaining().tokens
    assert left == 200_000 - INPUT_TOKENS - 180_000
    assert budget.context_tokens_for(budget.remaining()) == int(left * 0.05)
    assert budget.context_tokens_for(100) == 100  # never more than what is left
    assert budget.context_tokens_for(1000) == 256  # the floor


def test_context_tokens_for_turns_dollars_into_tokens_at_the_model_price() -> None:
    budget = TokenBudget(max_cost_usd="0.025")  # 10,000 gpt-4o input tokens
    assert budget.context_tokens_for(model="gpt-4o") == 500
    with pytest.raises(ValueError, match="model="):
        budget.context_tokens_for()


def test_remaining_without_calls_is_the_whole_budget() -> None:
    budget = TokenBudget(max_tokens=5, max_cost_usd=2)
    remaining = budget.remaining()
    assert isinstance(remaining, BudgetRemaining)
    assert (remaining.tokens, remaining.cost_usd, remaining.used_tokens) == (5, Decimal(2), 0)


# ---------------------------------------------------------------- with a tracker


def test_a_tracker_with_a_budget_records_and_enforces() -> None:
    budget = TokenBudget(max_tokens=2 * (INPUT_TOKENS + 10))
    tracker = UsageTracker(budget=budget)
    model = fake(reply(output_tokens=10), max_tokens=10)
    model.invoke(QUESTION, config={"callbacks": [tracker]})
    model.invoke(QUESTION, config={"callbacks": [tracker]})
    with pytest.raises(BudgetExceededError):
        model.invoke(QUESTION, config={"callbacks": [tracker]})
    assert model.generated == [1, 1]
    assert tracker.report().totals.total_tokens == budget.remaining().used_tokens
    assert tracker.report().totals.calls == 2


async def test_an_async_call_over_budget_raises_before_the_model_is_called() -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 10)
    model = fake(reply(output_tokens=10), max_tokens=10)
    await model.ainvoke(QUESTION, config={"callbacks": [budget]})
    with pytest.raises(BudgetExceededError):
        await model.ainvoke(QUESTION, config={"callbacks": [budget]})
    assert model.generated == [1]


async def test_an_sqlite_budget_runs_off_the_event_loop_and_still_raises(tmp_path: Path) -> None:
    budget = TokenBudget(max_tokens=INPUT_TOKENS + 10, store=SQLiteStore(tmp_path / "b.db"))
    tracker = UsageTracker(budget=budget)
    assert not budget.run_inline and not tracker.run_inline
    model = fake(reply(output_tokens=10), max_tokens=10)
    await model.ainvoke(QUESTION, config={"callbacks": [tracker]})
    with pytest.raises(BudgetExceededError):
        await model.ainvoke(QUESTION, config={"callbacks": [tracker]})
    assert model.generated == [1]


async def test_concurrent_async_calls_never_overspend() -> None:
    per_call = INPUT_TOKENS + 10
    budget = TokenBudget(max_tokens=per_call * 37 + 5)
    model = fake(reply(output_tokens=10), max_tokens=10)

    async def one() -> bool:
        try:
            await model.ainvoke(QUESTION, config={"callbacks": [budget]})
        except BudgetExceededError:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(100)))
    assert sum(outcomes) == 37
    assert budget.remaining().used_tokens == per_call * 37


def test_threads_sharing_one_budget_spend_exactly_what_fits() -> None:
    per_call = INPUT_TOKENS + 10
    budget = TokenBudget(max_tokens=per_call * 250 + 3, store=MemoryStore())
    model = fake(reply(output_tokens=10), max_tokens=10)
    succeeded = []

    def work() -> None:
        ok = 0
        for _ in range(100):
            try:
                model.invoke(QUESTION, config={"callbacks": [budget]})
                ok += 1
            except BudgetExceededError:
                pass
        succeeded.append(ok)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(succeeded) == 250
    assert budget.remaining().used_tokens == per_call * 250


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"max_tokens": 0}, ValueError),
        ({"max_tokens": 10, "window": "fortnight"}, ValueError),
        ({"max_tokens": 10, "window": dt.timedelta(0)}, ValueError),
        ({"max_cost_usd": "-1"}, ValueError),
        ({"max_cost_usd": "lots"}, ValueError),
        ({"max_tokens": 10, "store": {}}, TypeError),
        ({"max_tokens": 10, "default_output_tokens": -1}, ValueError),
        ({"max_tokens": 10, "timezone": "Mars/Olympus_Mons"}, ValueError),
    ],
)
def test_bad_settings_are_refused_at_construction(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        TokenBudget(**kwargs)
