"""`CostRouterMiddleware` in a real `create_agent` loop: which tier answers each call."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatResult

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.markers import ROUTE_EVENT, ROUTE_KEY
from langchain_tokenopt.middleware.routing import CostRouterMiddleware
from langchain_tokenopt.routing.router import ModelRouter, Tier
from tests.support.agent_doubles import (
    ScriptedChatModel,
    call_tool,
    get_weather,
    scripted,
    with_usage,
)

EASY = "hi, thanks!"
HARD = (
    "Compare quicksort and mergesort step by step, explain why one is stable, then "
    "implement both in Python and prove the expected running time of quicksort."
)


class BrokenChatModel(ScriptedChatModel):
    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise ConnectionError("rate limited")


def tiers(mini: ScriptedChatModel, big: ScriptedChatModel) -> list[Tier]:
    return [
        Tier(mini, quality=0.3, model_name="gpt-4o-mini", name="mini"),
        Tier(big, quality=1.0, model_name="gpt-4o", name="big"),
    ]


def test_easy_requests_go_to_the_cheap_tier_and_hard_ones_to_the_strong_tier() -> None:
    mini, big = scripted(["Hello!"]), scripted(["A long answer."])
    middleware = CostRouterMiddleware(ModelRouter(tiers=tiers(mini, big)))
    agent = create_agent(big, [], middleware=[middleware])
    easy = agent.invoke({"messages": [HumanMessage(EASY)]})
    hard = agent.invoke({"messages": [HumanMessage(HARD)]})
    assert (len(mini.calls), len(big.calls)) == (1, 1)
    assert easy["messages"][-1].content == "Hello!"
    assert easy["messages"][-1].response_metadata[ROUTE_KEY]["tier"] == "mini"
    assert hard["messages"][-1].response_metadata[ROUTE_KEY]["tier"] == "big"
    stats = middleware.stats()
    assert stats.calls == {"mini": 1, "big": 1}
    assert stats.savings_usd > 0


def test_every_step_of_a_tool_loop_is_routed_with_the_agent_tools_bound() -> None:
    mini = scripted([call_tool("get_weather", city="Oslo"), "Sunny in Oslo."])
    big = scripted([])
    middleware = CostRouterMiddleware(ModelRouter(tiers=tiers(mini, big)))
    agent = create_agent(big, [get_weather], middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("Weather in Oslo?")]})
    assert result["messages"][-1].content == "Sunny in Oslo."
    assert [call["tools"] for call in mini.calls] == [["get_weather"], ["get_weather"]]
    assert big.calls == []


def test_a_failing_tier_falls_through_to_the_next() -> None:
    mini = BrokenChatModel(messages=iter([]))
    big = scripted(["Answered by the big model."])
    middleware = CostRouterMiddleware(ModelRouter(tiers=tiers(mini, big)))
    agent = create_agent(big, [], middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage(EASY)]})
    route = result["messages"][-1].response_metadata[ROUTE_KEY]
    assert route["tier"] == "big"
    assert route["fallbacks"] == ["mini"]
    assert middleware.stats().failures == {"mini": 1}


def test_when_every_tier_fails_the_last_error_is_raised() -> None:
    mini, big = BrokenChatModel(messages=iter([])), BrokenChatModel(messages=iter([]))
    middleware = CostRouterMiddleware(ModelRouter(tiers=tiers(mini, big)))
    agent = create_agent(big, [], middleware=[middleware])
    with pytest.raises(ConnectionError, match="rate limited"):
        agent.invoke({"messages": [HumanMessage(EASY)]})
    assert middleware.stats().unanswered == 1


def test_a_spent_budget_relaxes_hard_requests_to_the_cheap_tier() -> None:
    budget = TokenBudget(max_tokens=1000)
    mini = scripted([with_usage(AIMessage("Spent it."), 990, 10), "Cheap answer."])
    big = scripted([])
    router = ModelRouter(tiers=tiers(mini, big), budget=budget)
    agent = create_agent(big, [], middleware=[CostRouterMiddleware(router)])
    agent.invoke({"messages": [HumanMessage(EASY)]}, {"callbacks": [budget]})
    assert budget.remaining().tokens == 0
    result = agent.invoke({"messages": [HumanMessage(HARD)]})
    assert result["messages"][-1].response_metadata[ROUTE_KEY]["tier"] == "mini"
    assert big.calls == []


def test_the_decision_is_dispatched_as_a_custom_event() -> None:
    events: list[dict[str, Any]] = []

    class Listener(BaseCallbackHandler):
        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            if name == ROUTE_EVENT:
                events.append(data)

    mini, big = scripted(["Hello!"]), scripted([])
    agent = create_agent(
        big, [], middleware=[CostRouterMiddleware(ModelRouter(tiers=tiers(mini, big)))]
    )
    agent.invoke({"messages": [HumanMessage(EASY)]}, {"callbacks": [Listener()]})
    assert [event["tier"] for event in events] == ["mini"]


async def test_async_agent_routes_the_same_way() -> None:
    mini, big = scripted(["Hello!"]), scripted(["A long answer."])
    middleware = CostRouterMiddleware(ModelRouter(tiers=tiers(mini, big)))
    agent = create_agent(big, [], middleware=[middleware])
    await agent.ainvoke({"messages": [HumanMessage(EASY)]})
    await agent.ainvoke({"messages": [HumanMessage(HARD)]})
    assert (len(mini.calls), len(big.calls)) == (1, 1)


def test_router_argument_is_checked() -> None:
    with pytest.raises(TypeError, match="ModelRouter"):
        CostRouterMiddleware([])  # type: ignore[arg-type]
