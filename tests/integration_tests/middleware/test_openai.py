"""The agent middleware end to end: `create_agent` over `ChatOpenAI` and the local server.

Every claim is checked on the wire: the request bodies the OpenAI-compatible server
received (their `tools`, `messages` and `model`).
"""

from __future__ import annotations

import json
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.markers import ROUTE_KEY
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.middleware import (
    CompressionMiddleware,
    CostRouterMiddleware,
    SummaryRecallMiddleware,
    TokenBudgetMiddleware,
    ToolRetrievalMiddleware,
)
from langchain_tokenopt.routing.router import ModelRouter, Tier
from tests.support.agent_doubles import SYSTEM, TOOLS, get_weather, question
from tests.support.openai_server import FakeOpenAIServer


def chat(server: FakeOpenAIServer, model: str = "gpt-4o-mini") -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test", model=model, max_retries=0)


def sent_tools(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def weather_then_answer(server: FakeOpenAIServer, answer: str = "Sunny in Oslo.") -> None:
    server.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "c1"}])
    server.enqueue(answer)


def test_only_the_retrieved_tools_are_sent(openai_server: FakeOpenAIServer) -> None:
    weather_then_answer(openai_server)
    agent = create_agent(chat(openai_server), TOOLS, middleware=[ToolRetrievalMiddleware(k=1)])
    result = agent.invoke({"messages": [HumanMessage("What's the weather in Oslo?")]})
    assert result["messages"][-1].content == "Sunny in Oslo."
    first, second = openai_server.requests
    assert sent_tools(first) == ["get_weather"]
    assert "get_weather" in sent_tools(second)  # called: stays bound
    assert len(sent_tools(second)) < len(TOOLS)
    assert openai_server.request_count == 2  # no selection call


def test_tool_output_is_sent_compressed(openai_server: FakeOpenAIServer) -> None:
    weather_then_answer(openai_server)
    middleware = CompressionMiddleware()
    agent = create_agent(chat(openai_server), [get_weather], middleware=[middleware])
    agent.invoke({"messages": [HumanMessage("What's the weather in Oslo?")]})
    tool_message = next(m for m in openai_server.requests[1]["messages"] if m["role"] == "tool")
    assert tool_message["content"] == '{"city":"Oslo","sky":"sunny","celsius":21}'
    assert middleware.stats.tokens_saved > 0


def test_long_conversations_are_sent_as_summary_and_recent_turns(
    openai_server: FakeOpenAIServer,
) -> None:
    counter = TokenCounter("gpt-4o-mini")
    agent = create_agent(
        chat(openai_server),
        [get_weather],
        system_prompt=SYSTEM,
        middleware=[SummaryRecallMiddleware(max_tokens=400, model="gpt-4o-mini")],
        checkpointer=InMemorySaver(),
    )
    result: dict[str, Any] = {}
    for i in range(10):
        result = agent.invoke(
            {"messages": [HumanMessage(question(i))]}, {"configurable": {"thread_id": "t"}}
        )
    last = openai_server.last_request["messages"]
    assert last[0] == {"role": "system", "content": SYSTEM}
    assert last[1]["role"] == "system"
    assert last[1]["content"].startswith("Summary of the earlier conversation:")
    assert last[-1] == {"role": "user", "content": question(9)}
    assert len(last) < len(result["messages"]) + 1
    # What went over the wire (OpenAI message dicts) is within the budget.
    assert counter.count_messages(last) <= 400


def test_budget_is_settled_from_the_server_usage_and_stops_the_run(
    openai_server: FakeOpenAIServer,
) -> None:
    weather_then_answer(openai_server)
    budget = TokenBudget(max_tokens=100_000)
    agent = create_agent(
        chat(openai_server),
        [get_weather],
        middleware=[TokenBudgetMiddleware(budget)],
        checkpointer=InMemorySaver(),
    )
    result = agent.invoke(
        {"messages": [HumanMessage("What's the weather in Oslo?")]},
        {"configurable": {"thread_id": "t"}},
    )
    reported = sum(
        m.usage_metadata["total_tokens"]
        for m in result["messages"]
        if isinstance(m, AIMessage) and m.usage_metadata
    )
    assert budget.remaining().used_tokens == reported > 0
    # Spend the rest elsewhere: the next run ends without a request.
    spent = TokenBudget(max_tokens=reported, store=budget.store)
    assert spent.remaining().tokens == 0
    stopped = create_agent(
        chat(openai_server),
        [get_weather],
        middleware=[TokenBudgetMiddleware(spent)],
        checkpointer=InMemorySaver(),
    )
    final = stopped.invoke(
        {"messages": [HumanMessage("And tomorrow?")]}, {"configurable": {"thread_id": "u"}}
    )
    assert "token budget is used up" in str(final["messages"][-1].content)
    assert openai_server.request_count == 2


def test_each_call_goes_to_the_model_the_router_picks(openai_server: FakeOpenAIServer) -> None:
    mini, big = chat(openai_server, "gpt-4o-mini"), chat(openai_server, "gpt-4o")
    router = ModelRouter(tiers=[Tier(mini, quality=0.3), Tier(big, quality=1.0)])
    agent = create_agent(big, [get_weather], middleware=[CostRouterMiddleware(router)])
    openai_server.enqueue("Hello!")
    easy = agent.invoke({"messages": [HumanMessage("hi, thanks!")]})
    openai_server.enqueue("Here is the proof.")
    agent.invoke(
        {
            "messages": [
                HumanMessage(
                    "Compare quicksort and mergesort step by step, explain why one is stable, "
                    "then implement both in Python and prove the expected running time."
                )
            ]
        }
    )
    assert [r["model"] for r in openai_server.requests] == ["gpt-4o-mini", "gpt-4o"]
    assert sent_tools(openai_server.requests[0]) == ["get_weather"]
    assert easy["messages"][-1].response_metadata[ROUTE_KEY]["model"] == "gpt-4o-mini"


def test_all_middleware_together(openai_server: FakeOpenAIServer) -> None:
    weather_then_answer(openai_server)
    budget = TokenBudget(max_tokens=100_000)
    router = ModelRouter(
        tiers=[
            Tier(chat(openai_server, "gpt-4o-mini"), quality=0.5),
            Tier(chat(openai_server, "gpt-4o"), quality=1.0),
        ]
    )
    # Middleware with their own state keys: typed as the common base, as create_agent takes them.
    middleware: list[AgentMiddleware[Any, Any, Any]] = [
        TokenBudgetMiddleware(budget),
        CostRouterMiddleware(router),
        ToolRetrievalMiddleware(k=1),
        SummaryRecallMiddleware(max_tokens=2000),
        CompressionMiddleware(),
    ]
    agent = create_agent(
        chat(openai_server, "gpt-4o"), TOOLS, system_prompt=SYSTEM, middleware=middleware
    )
    result = agent.invoke({"messages": [HumanMessage("What's the weather in Oslo?")]})
    assert result["messages"][-1].content == "Sunny in Oslo."
    first, second = openai_server.requests
    assert sent_tools(first) == ["get_weather"]
    assert {first["model"], second["model"]} == {"gpt-4o-mini"}
    tool_message = next(m for m in second["messages"] if m["role"] == "tool")
    assert json.loads(tool_message["content"]) == {"city": "Oslo", "sky": "sunny", "celsius": 21}
    assert " " not in tool_message["content"]
    assert budget.remaining().used_tokens > 0
