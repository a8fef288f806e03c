"""Batched items are model calls to callbacks, priced at the batch rate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_openai import ChatOpenAI

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.errors import BatchItemError, BudgetExceededError
from tests.integration_tests.batch.conftest import MakeBatched
from tests.support.openai_server import FakeOpenAIServer


class _Recorder(BaseCallbackHandler):
    """Notes, at each callback, how many files the server holds."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.events: list[tuple[str, int]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.events.append(("start", self.server.batch.file_count))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append(("end", self.server.batch.file_count))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append(("error", self.server.batch.file_count))


def test_the_tracked_cost_is_exactly_half_the_standard_price(
    llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    tracker = UsageTracker()
    answers = make_batched(llm).batch(
        [f"summarize ticket {i}" for i in range(20)], config={"callbacks": [tracker]}
    )
    events = tracker.events
    assert len(events) == 20 and {e.model for e in events} == {"gpt-4o-mini"}
    standard = sum((price("gpt-4o-mini", dict(a.usage_metadata)) for a in answers), Decimal(0))
    assert standard > 0
    assert tracker.report().totals.cost_usd == standard / 2
    assert sum(e.input_tokens for e in events) == sum(
        a.usage_metadata["input_tokens"] for a in answers
    )


def test_every_item_starts_before_upload_and_ends_after_collection(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.fail_items({"item-1": (400, "bad")})
    recorder = _Recorder(openai_server)
    make_batched(llm).batch(
        ["a", "b", "c"], config={"callbacks": [recorder]}, return_exceptions=True
    )
    assert recorder.events[:3] == [("start", 0)] * 3
    assert sorted(kind for kind, _ in recorder.events[3:]) == ["end", "end", "error"]
    assert all(files > 0 for _, files in recorder.events[3:])


def test_the_budget_reserves_before_upload_and_refuses_an_oversized_batch(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    # gpt-4o-mini batch input: $0.075 per million tokens; 3 prompts x ~10 tokens + 100
    # reserved output tokens each ($0.30/M) cost about $0.0001: allow two of them.
    budget = TokenBudget(max_cost_usd="0.00007", default_output_tokens=100)
    with pytest.raises(BudgetExceededError):
        make_batched(llm).batch(["a", "b", "c"], config={"callbacks": [budget]})
    assert openai_server.batch.file_count == 0  # nothing uploaded, no batch to pay for
    assert openai_server.batch.batches == []
    assert budget.remaining().used_cost_usd == 0  # the two reservations were released


def test_the_budget_settles_each_item_at_the_batch_rate(
    llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    budget = TokenBudget(max_cost_usd=1)
    tracker = UsageTracker(budget=budget)
    make_batched(llm).batch(["a", "b", "c"], config={"callbacks": [tracker]})
    spent = tracker.report().totals.cost_usd
    assert Decimal(0) < spent
    assert abs(budget.remaining().used_cost_usd - spent) < Decimal("0.000000001") * 3


def test_a_failed_item_reaches_the_tracker_as_an_error(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.fail_items({"item-0": (400, "bad")})
    tracker = UsageTracker()
    answers = make_batched(llm).batch(
        ["a", "b"], config={"callbacks": [tracker]}, return_exceptions=True
    )
    assert isinstance(answers[0], BatchItemError)
    statuses = sorted(e.status for e in tracker.events)
    assert statuses == ["error", "ok"]
