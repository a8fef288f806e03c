"""UsageTracker and TokenBudget on ChatOpenAI end to end, through its real HTTP client."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import openai
import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.callbacks.tracker import UsageTracker, track_usage
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import BudgetExceededError
from tests.support.openai_server import FakeOpenAIServer

QUESTION = [HumanMessage("Name the capital of France in one word.")]


def _llm(server: FakeOpenAIServer, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("model", "gpt-4o")
    return ChatOpenAI(base_url=server.base_url, api_key="test", **kwargs)


def _genai_cost(model: str, **usage: int) -> Decimal:
    return Decimal(calc_price(GenaiUsage(**usage), model).total_price)


def test_cost_equals_genai_prices_for_the_usage_the_server_returned(
    openai_server: FakeOpenAIServer,
) -> None:
    tracker = UsageTracker()
    answer = _llm(openai_server).invoke(QUESTION, config={"callbacks": [tracker]})
    usage = answer.usage_metadata
    assert usage is not None
    (event,) = tracker.events
    assert (event.input_tokens, event.output_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    assert event.cost_usd == _genai_cost(
        "gpt-4o", input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"]
    )
    assert event.model is not None and event.model.startswith("gpt-4o")


def test_cached_prompt_tokens_are_priced_as_cache_reads(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(
        "Paris.",
        usage={"prompt_tokens": 4096, "cached_tokens": 3072, "completion_tokens": 3},
    )
    tracker = UsageTracker()
    _llm(openai_server).invoke(QUESTION, config={"callbacks": [tracker]})
    (event,) = tracker.events
    assert event.cache_read_tokens == 3072
    assert event.cost_usd == _genai_cost(
        "gpt-4o", input_tokens=4096, cache_read_tokens=3072, output_tokens=3
    )
    assert event.cost_usd < _genai_cost("gpt-4o", input_tokens=4096, output_tokens=3)


def test_reasoning_tokens_are_recorded_inside_the_output(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue("42", usage={"reasoning_tokens": 256})
    tracker = UsageTracker()
    _llm(openai_server, model="o3-mini").invoke(QUESTION, config={"callbacks": [tracker]})
    (event,) = tracker.events
    assert event.reasoning_tokens == 256 and event.output_tokens > 256
    assert event.cost_usd == _genai_cost(
        "o3-mini",
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        output_reasoning_tokens=256,
    )


def test_a_stream_with_stream_usage_takes_usage_from_the_final_chunk(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.enqueue(
        "Paris is the capital.", usage={"prompt_tokens": 321, "completion_tokens": 12}
    )
    tracker = UsageTracker()
    chunks = list(
        _llm(openai_server, stream_usage=True).stream(QUESTION, config={"callbacks": [tracker]})
    )
    assert len(chunks) > 2
    (event,) = tracker.events
    assert (event.input_tokens, event.output_tokens) == (321, 12)
    assert event.streamed and not event.estimated


def test_a_stream_without_usage_is_estimated_exactly_and_warns_once(
    openai_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = UsageTracker()
    llm = _llm(openai_server)
    reported = llm.invoke(QUESTION).usage_metadata  # what the server counts for this prompt
    assert reported is not None
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.callbacks.tracker"):
        for _ in range(2):
            for _chunk in llm.stream(QUESTION, config={"callbacks": [tracker]}):
                pass
    assert len([r for r in caplog.records if "stream_usage=True" in r.message]) == 1
    assert all(e.estimated and e.streamed for e in tracker.events)
    assert tracker.events[0].input_tokens == reported["input_tokens"]
    assert tracker.events[0].input_tokens == TokenCounter("gpt-4o").count_messages(QUESTION)


async def test_track_usage_records_async_calls(openai_server: FakeOpenAIServer) -> None:
    llm = _llm(openai_server)
    with track_usage() as tracker:
        await llm.ainvoke(QUESTION, config={"metadata": {"agent": "async-agent"}})
        await llm.ainvoke(QUESTION, config={"metadata": {"agent": "async-agent"}})
    report = tracker.report()
    assert report.by_agent["async-agent"].calls == 2
    assert report.totals.cost_usd > 0


def test_an_http_error_is_recorded_and_releases_the_budget(
    openai_server: FakeOpenAIServer,
) -> None:
    budget = TokenBudget(max_tokens=10_000)
    tracker = UsageTracker(budget=budget)
    openai_server.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        _llm(openai_server, max_tokens=100).invoke(QUESTION, config={"callbacks": [tracker]})
    (event,) = tracker.events
    assert event.status == "error"
    assert budget.remaining().used_tokens == 0


def test_budget_exceeded_raises_before_any_http_request(
    openai_server: FakeOpenAIServer,
) -> None:
    input_tokens = int(TokenCounter("gpt-4o").count_messages(QUESTION))
    budget = TokenBudget(max_tokens=input_tokens + 99)
    llm = _llm(openai_server, max_tokens=100)
    with pytest.raises(BudgetExceededError):
        llm.invoke(QUESTION, config={"callbacks": [budget]})
    assert openai_server.request_count == 0
    with pytest.raises(BudgetExceededError):
        llm.invoke(QUESTION, config={"callbacks": [UsageTracker(budget=budget)]})
    assert openai_server.request_count == 0


def test_a_budget_is_settled_with_the_usage_the_server_returned(
    openai_server: FakeOpenAIServer,
) -> None:
    budget = TokenBudget(max_tokens=100_000, max_cost_usd="1")
    answer = _llm(openai_server, max_tokens=200).invoke(QUESTION, config={"callbacks": [budget]})
    usage = answer.usage_metadata
    assert usage is not None
    remaining = budget.remaining()
    assert remaining.used_tokens == usage["total_tokens"]
    cost = _genai_cost(
        "gpt-4o", input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"]
    )
    # Dollars are kept in whole nano-dollars, rounded up.
    assert cost <= remaining.used_cost_usd < cost + Decimal("0.000000001")
    assert openai_server.request_count == 1
