"""`ModelRouter` end to end: two `ChatOpenAI` tiers against the local OpenAI-compatible server.

Which tier answered is checked on the wire: the `model` field of each request body.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import openai
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_tokenopt.core.markers import ROUTE_EVENT, ROUTE_KEY
from langchain_tokenopt.routing.router import ModelRouter, Tier
from tests.support.openai_server import FakeOpenAIServer

EASY = "What is the capital of France?"
HARD = (
    "Prove that the sum of the first n odd numbers is n^2. Explain why each step holds, "
    "then compare an induction proof with a geometric one step by step and write a Python "
    "function that checks it."
)


def chat(server: FakeOpenAIServer, model: str) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test", model=model, max_retries=0)


def router_for(server: FakeOpenAIServer) -> ModelRouter:
    return ModelRouter(
        tiers=[
            Tier(chat(server, "gpt-4o-mini"), quality=0.3),
            Tier(chat(server, "gpt-4o"), quality=1.0),
        ]
    )


def sent_models(server: FakeOpenAIServer) -> list[str]:
    return [request["model"] for request in server.requests]


class EventRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data))


def test_easy_and_hard_requests_reach_different_models(openai_server: FakeOpenAIServer) -> None:
    router = router_for(openai_server)
    easy = router.invoke(EASY)
    hard = router.invoke(HARD)
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o"]
    assert easy.content == f"echo: {EASY}"
    assert easy.response_metadata["model_name"].startswith("gpt-4o-mini")
    assert easy.response_metadata[ROUTE_KEY]["tier"] == "gpt-4o-mini"
    assert hard.response_metadata[ROUTE_KEY]["tier"] == "gpt-4o"


def test_rate_limited_cheap_tier_falls_through_to_the_strong_one(
    openai_server: FakeOpenAIServer,
) -> None:
    router = router_for(openai_server)
    openai_server.fail_next(429)
    recorder = EventRecorder()
    reply = router.invoke(EASY, config={"callbacks": [recorder]})
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o"]
    assert reply.content == f"echo: {EASY}"
    assert reply.response_metadata[ROUTE_KEY]["fallbacks"] == ["gpt-4o-mini"]
    assert recorder.events == [(ROUTE_EVENT, reply.response_metadata[ROUTE_KEY])]
    stats = router.stats()
    assert stats.failures == {"gpt-4o-mini": 1} and stats.calls == {"gpt-4o": 1}


def test_server_error_on_every_tier_raises(openai_server: FakeOpenAIServer) -> None:
    router = router_for(openai_server)
    openai_server.fail_next(500, times=2)
    with pytest.raises(openai.InternalServerError):
        router.invoke(EASY)
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o"]
    assert router.stats().unanswered == 1


def test_stream_falls_through_before_the_first_chunk(openai_server: FakeOpenAIServer) -> None:
    router = router_for(openai_server)
    openai_server.fail_next(429)
    chunks = list(router.stream(EASY))
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o"]
    assert openai_server.last_request["stream"] is True
    assert "".join(str(c.content) for c in chunks) == f"echo: {EASY}"
    assert chunks[0].response_metadata[ROUTE_KEY]["tier"] == "gpt-4o"


async def test_async_invoke_routes_and_falls_through(openai_server: FakeOpenAIServer) -> None:
    router = router_for(openai_server)
    openai_server.fail_next(429)
    reply = await router.ainvoke(EASY)
    hard = await router.ainvoke(HARD)
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o", "gpt-4o"]
    assert reply.response_metadata[ROUTE_KEY]["fallbacks"] == ["gpt-4o-mini"]
    assert hard.response_metadata[ROUTE_KEY]["fallbacks"] == []


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return "sunny"


def test_bound_tools_reach_whichever_tier_answers(openai_server: FakeOpenAIServer) -> None:
    router = router_for(openai_server).bind_tools([get_weather])
    openai_server.fail_next(429)
    openai_server.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    reply = router.invoke("Weather in Oslo?")
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls[0]["args"] == {"city": "Oslo"}
    for request in openai_server.requests:
        assert [t["function"]["name"] for t in request["tools"]] == ["get_weather"]
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o"]


class City(BaseModel):
    """A city and its country."""

    name: str
    country: str


def test_structured_output_falls_through_on_malformed_arguments(
    openai_server: FakeOpenAIServer,
) -> None:
    router = router_for(openai_server).with_structured_output(City, method="function_calling")
    openai_server.enqueue(tool_calls=[{"name": "City", "arguments": '{"name": "Paris"'}])
    openai_server.enqueue(
        tool_calls=[{"name": "City", "arguments": {"name": "Paris", "country": "France"}}]
    )
    result = router.invoke("Which city is the capital of France?")
    assert result == City(name="Paris", country="France")
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o"]


def test_structured_output_falls_through_on_arguments_that_fail_validation(
    openai_server: FakeOpenAIServer,
) -> None:
    router = router_for(openai_server).with_structured_output(City, method="function_calling")
    openai_server.enqueue(tool_calls=[{"name": "City", "arguments": {"name": "Paris"}}])
    openai_server.enqueue(
        tool_calls=[{"name": "City", "arguments": {"name": "Paris", "country": "France"}}]
    )
    result = router.invoke("Which city is the capital of France?")
    assert result == City(name="Paris", country="France")
    assert sent_models(openai_server) == ["gpt-4o-mini", "gpt-4o"]
    assert router.stats().failures == {"gpt-4o-mini": 1}


def test_stats_price_the_usage_the_server_reported(openai_server: FakeOpenAIServer) -> None:
    router = router_for(openai_server)
    easy = router.invoke(EASY)
    hard = router.invoke(HARD)
    list(router.stream(EASY, stream_usage=True))
    stats = router.stats()
    assert stats.reported_calls == 3 and stats.estimated_calls == 0 and stats.cache_hits == 0
    usages = [m.usage_metadata for m in (easy, hard)]
    assert all(u is not None and u["input_tokens"] > 0 for u in usages)
    assert stats.reported_cost_usd > 0 and stats.strongest_cost_usd > stats.cost_usd
