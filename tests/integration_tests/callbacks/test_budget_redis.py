"""A Redis-backed TokenBudget is shared exactly by processes and by budgets with one name."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.errors import BudgetExceededError
from langchain_tokenopt.stores import RedisStore
from tests.unit_tests.callbacks.test_budget_processes import per_call_tokens, run_processes, spent

pytestmark = pytest.mark.redis


def test_four_processes_sharing_a_redis_budget_spend_exactly_what_fits(
    redis_url: str, redis_client: Any
) -> None:
    per_call = per_call_tokens()
    fits = 300
    limit = per_call * fits + per_call - 1
    outcomes = run_processes(RedisStore, redis_url, limit)
    assert sum(ok for ok, _ in outcomes) == fits
    assert spent(RedisStore(redis_url)) == per_call * fits <= limit


def test_two_budget_objects_with_one_name_share_their_spending(
    redis_url: str, redis_client: Any
) -> None:
    question = [HumanMessage("hello")]

    class FakeChat(GenericFakeChatModel):
        model: str = "gpt-4o"
        max_tokens: int | None = 5

    reply = AIMessage(
        "hi", usage_metadata={"input_tokens": 8, "output_tokens": 5, "total_tokens": 13}
    )
    model = FakeChat(messages=itertools.repeat(reply))
    clock_now = dt.datetime(2025, 6, 1, 12, tzinfo=dt.timezone.utc)
    first = TokenBudget(
        max_tokens=100,
        window=dt.timedelta(hours=1),
        store=RedisStore(redis_url),
        name="team",
        clock=lambda: clock_now,
    )
    second = TokenBudget(
        max_tokens=100,
        window=dt.timedelta(hours=1),
        store=RedisStore(redis_url),
        name="team",
        clock=lambda: clock_now,
    )
    model.invoke(question, config={"callbacks": [UsageTracker(budget=first)]})
    assert second.remaining().used_tokens == first.remaining().used_tokens > 0
    other = TokenBudget(max_tokens=100, store=RedisStore(redis_url), name="other-team")
    assert other.remaining().used_tokens == 0
    used = first.remaining().used_tokens
    assert used == 13
    # Fill the shared window from the second object; the first one is refused.
    for _ in range(6):
        model.invoke(question, config={"callbacks": [second]})
    with pytest.raises(BudgetExceededError):
        model.invoke(question, config={"callbacks": [first]})
