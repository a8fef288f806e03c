"""BatchAPIRunnable over ChatAnthropic against the local Message Batches API."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.core.markers import BATCH_KEY
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.errors import BatchItemError, StoreUnavailableError
from tests.integration_tests.batch.conftest import MakeBatched
from tests.support.openai_server import FakeOpenAIServer
from tests.support.stores import SwitchableStore

langchain_anthropic = pytest.importorskip("langchain_anthropic")


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture
def claude(openai_server: FakeOpenAIServer) -> Any:
    return langchain_anthropic.ChatAnthropic(
        model="claude-haiku-4-5",
        base_url=openai_server.base_url.removesuffix("/v1"),
        api_key="test",
        max_tokens=256,
        max_retries=0,
    )


def test_message_batches_answer_in_order_at_half_price(
    openai_server: FakeOpenAIServer, claude: Any, make_batched: MakeBatched
) -> None:
    openai_server.batch.fail_items({"item-1": (400, "bad request")})
    tracker = UsageTracker()
    batched = make_batched(claude)
    assert batched.provider == "anthropic"
    answers = batched.batch(
        ["alpha", [("system", "be brief"), ("human", "beta")], "gamma"],
        config={"callbacks": [tracker]},
        return_exceptions=True,
    )
    assert [getattr(a, "content", None) for a in answers] == ["echo: alpha", None, "echo: gamma"]
    assert isinstance(answers[1], BatchItemError) and answers[1].reason == "failed"
    assert answers[0].response_metadata[BATCH_KEY]["batch_id"].startswith("msgbatch_")
    (batch,) = openai_server.batch.batches
    assert batch["processing_status"] == "ended"
    assert openai_server.batch.requests[0]["max_tokens"] == 256
    standard = sum(
        (price("claude-haiku-4-5", dict(a.usage_metadata)) for a in (answers[0], answers[2])),
        Decimal(0),
    )
    assert tracker.report().totals.cost_usd == standard / 2


def test_bound_tools_and_structured_output_through_message_batches(
    openai_server: FakeOpenAIServer, claude: Any, make_batched: MakeBatched
) -> None:
    openai_server.enqueue(tool_calls=[{"name": "Person", "arguments": {"name": "Ada", "age": 36}}])
    (answer,) = make_batched(claude.bind_tools([Person])).batch(["who?"])
    assert answer.tool_calls[0]["args"] == {"name": "Ada", "age": 36}
    assert openai_server.batch.requests[0]["tools"][0]["name"] == "Person"

    openai_server.enqueue(tool_calls=[{"name": "Person", "arguments": {"name": "Bo", "age": 5}}])
    assert make_batched(claude.with_structured_output(Person)).batch(["who?"]) == [
        Person(name="Bo", age=5)
    ]


def test_cancel_and_expiry_of_message_batches(
    openai_server: FakeOpenAIServer, claude: Any, make_batched: MakeBatched
) -> None:
    openai_server.batch.expire_next(completed_items=1)
    answers = make_batched(claude).batch(["a", "b"], return_exceptions=True)
    assert answers[0].content == "echo: a"
    assert isinstance(answers[1], BatchItemError) and answers[1].reason == "expired"

    openai_server.batch.hold()
    polled = openai_server.batch.polls
    batched = make_batched(claude)
    config: Any = {"configurable": {"batch_key": "k"}}
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.extend(batched.batch(["c"], config, return_exceptions=True))
    )
    worker.start()
    assert openai_server.batch.wait_for_polls(polled + 1)
    assert batched.cancel("k") == 1
    worker.join(timeout=10)
    assert isinstance(results[0], BatchItemError) and results[0].reason == "cancelled"


async def test_abatch_with_message_batches(claude: Any, make_batched: MakeBatched) -> None:
    answers = await make_batched(claude, max_requests_per_batch=1).abatch(["x", "y"])
    assert [a.content for a in answers] == ["echo: x", "echo: y"]


def test_a_crash_after_create_sends_the_chunk_again_with_a_warning(
    openai_server: FakeOpenAIServer,
    claude: Any,
    make_batched: MakeBatched,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Message Batches carry no metadata: the lost batch cannot be recognized (documented).
    store = SwitchableStore()
    store.sets_until_failure = 1
    with pytest.raises(StoreUnavailableError):
        make_batched(claude, store=store).batch(["a"])
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.batch.runnable"):
        (answer,) = make_batched(claude, store=store).batch(["a"])
    assert answer.content == "echo: a"
    assert len(openai_server.batch.batches) == 2
    assert any("Anthropic keeps no batch metadata" in r.getMessage() for r in caplog.records)
