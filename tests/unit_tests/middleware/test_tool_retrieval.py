"""`ToolRetrievalMiddleware` in a real `create_agent` loop: which tools each call binds."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.middleware.tool_retrieval import ToolRetrievalMiddleware
from langchain_tokenopt.tool_retrieval.retriever import ToolRetriever
from tests.support.agent_doubles import (
    TOOLS,
    call_tool,
    get_weather,
    scripted,
    send_email,
)


def ask(agent: Any, text: str, thread: str | None = None) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread}} if thread else None
    result: dict[str, Any] = agent.invoke({"messages": [HumanMessage(text)]}, config)
    return result


def test_binds_only_the_tools_relevant_to_the_question() -> None:
    model = scripted(["Here you go."])
    agent = create_agent(model, TOOLS, middleware=[ToolRetrievalMiddleware(k=1)])
    ask(agent, "What's the weather in Oslo tomorrow?")
    assert model.calls[0]["tools"] == ["get_weather"]


def test_tools_the_assistant_called_stay_bound_for_the_rest_of_the_conversation() -> None:
    model = scripted(
        [call_tool("get_weather", city="Oslo"), "Sunny.", "20 EUR is 3200 JPY."],
    )
    agent = create_agent(
        model, TOOLS, middleware=[ToolRetrievalMiddleware(k=1)], checkpointer=InMemorySaver()
    )
    ask(agent, "What's the weather in Oslo?", thread="t1")
    ask(agent, "Convert 20 euros to yen at today's exchange rate", thread="t1")
    assert model.calls[0]["tools"] == ["get_weather"]
    # Called tools are bound on top of the k retrieved ones.
    assert "get_weather" in model.calls[1]["tools"]
    assert len(model.calls[1]["tools"]) == 2
    assert model.calls[2]["tools"][0] == "get_weather"
    assert "convert_currency" in model.calls[2]["tools"]
    assert len(model.calls[2]["tools"]) == 2


def test_selection_costs_no_model_call() -> None:
    model = scripted([call_tool("get_weather", city="Oslo"), "Sunny."])
    agent = create_agent(model, TOOLS, middleware=[ToolRetrievalMiddleware(k=2)])
    result = ask(agent, "What's the weather in Oslo?")
    assert len(model.calls) == 2  # the tool call and the answer, nothing else
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "ai"]


def test_a_question_about_no_tool_is_sent_without_tools() -> None:
    model = scripted(["Hello!"])
    agent = create_agent(model, TOOLS, middleware=[ToolRetrievalMiddleware(k=3)])
    ask(agent, "zzz qqq")
    assert model.calls[0]["tools"] == []


def test_always_included_tools_are_bound_on_every_call() -> None:
    model = scripted(["ok"])
    middleware = ToolRetrievalMiddleware(k=1, always_include=["send_email"])
    agent = create_agent(model, TOOLS, middleware=[middleware])
    ask(agent, "What's the weather in Oslo?")
    assert sorted(model.calls[0]["tools"]) == ["get_weather", "send_email"]


def test_always_include_naming_an_unknown_tool_is_a_clear_error() -> None:
    agent = create_agent(
        scripted(["ok"]), TOOLS, middleware=[ToolRetrievalMiddleware(always_include=["nope"])]
    )
    with pytest.raises(ValueError, match=r"always_include names tools .*\['nope'\]"):
        ask(agent, "weather?")


def test_stats_count_the_schema_tokens_not_sent() -> None:
    model = scripted(["ok"])
    middleware = ToolRetrievalMiddleware(k=1)
    agent = create_agent(model, TOOLS, middleware=[middleware])
    ask(agent, "What's the weather in Oslo?")
    counter = TokenCounter("gpt-4o")
    stats = middleware.stats
    assert stats.model_calls == 1
    assert (stats.tools_offered, stats.tools_bound) == (5, 1)
    assert stats.schema_tokens_offered == counter.count_tools(TOOLS)
    assert stats.schema_tokens_bound == counter.count_tools([get_weather])
    assert stats.tokens_saved > 0


def test_a_given_retriever_and_token_budget_are_used() -> None:
    counter = TokenCounter("gpt-4o")
    budget = int(counter.count_tools([send_email]))
    retriever = ToolRetriever(TOOLS, k=3)
    question = "Convert 20 euros to US dollars and email the result"
    unlimited, limited = scripted(["ok"]), scripted(["ok"])
    create_agent(unlimited, TOOLS, middleware=[ToolRetrievalMiddleware(retriever)]).invoke(
        {"messages": [HumanMessage(question)]}
    )
    middleware = ToolRetrievalMiddleware(retriever, token_budget=budget)
    create_agent(limited, TOOLS, middleware=[middleware]).invoke(
        {"messages": [HumanMessage(question)]}
    )
    assert len(unlimited.calls[0]["tools"]) == 3  # the retriever's k
    bound = [t for t in TOOLS if t.name in limited.calls[0]["tools"]]
    assert len(bound) == 1
    assert counter.count_tools(bound) <= budget
    assert middleware.stats.schema_tokens_bound <= budget


def test_provider_tool_dicts_are_always_kept() -> None:
    middleware = ToolRetrievalMiddleware(k=1)
    web_search = {"type": "web_search_preview"}
    request = ModelRequest(
        model=scripted([]),
        messages=[HumanMessage("What's the weather in Oslo?")],
        tools=[*TOOLS, web_search],
    )
    selected = middleware.select(request)
    assert selected.tools == [get_weather, web_search]


def test_conversation_with_tool_results_only_queries_on_user_and_assistant_text() -> None:
    middleware = ToolRetrievalMiddleware(k=1)
    request = ModelRequest(
        model=scripted([]),
        messages=[
            HumanMessage("Send an email to Bob"),
            AIMessage("", tool_calls=[{"name": "send_email", "args": {}, "id": "c1"}]),
            ToolMessage("weather weather weather", tool_call_id="c1", name="send_email"),
        ],
        tools=list(TOOLS),
    )
    names = [t.name for t in middleware.select(request).tools]  # type: ignore[union-attr]
    assert "send_email" in names  # called before: kept
    assert "get_weather" not in names  # the tool output is not part of the query


async def test_async_agent_binds_the_same_tools() -> None:
    model = scripted([call_tool("get_weather", city="Oslo"), "Sunny."])
    agent = create_agent(model, TOOLS, middleware=[ToolRetrievalMiddleware(k=1)])
    await agent.ainvoke({"messages": [HumanMessage("What's the weather in Oslo?")]})
    assert model.calls[0]["tools"] == ["get_weather"]
    assert "get_weather" in model.calls[1]["tools"]


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ToolRetrievalMiddleware(k=-1)
    with pytest.raises(ValueError, match="recent_weight"):
        ToolRetrievalMiddleware(recent_weight=2.0)
    with pytest.raises(TypeError, match="ToolRetriever"):
        ToolRetrievalMiddleware(TOOLS)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of tool names"):
        ToolRetrievalMiddleware(always_include="send_email")
