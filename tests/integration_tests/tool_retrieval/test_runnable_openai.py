"""`bind_relevant_tools` end to end: `ChatOpenAI` against the local OpenAI-compatible server.

"Bound" is checked on the wire: the `tools` of each request body the server received.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.tool_retrieval.retriever import ToolRetriever
from langchain_tokenopt.tool_retrieval.runnable import bind_relevant_tools
from tests.support.openai_server import FakeOpenAIServer
from tests.unit_tests.tool_retrieval.test_retriever import (
    book_hotel,
    convert_currency,
    get_weather,
    search_flights,
    send_email,
)

TOOLS = [get_weather, convert_currency, send_email, search_flights, book_hotel]


def chat(server: FakeOpenAIServer) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o", max_retries=0)


def sent_tools(request: dict[str, Any]) -> list[str] | None:
    tools = request.get("tools")
    return None if tools is None else [t["function"]["name"] for t in tools]


def test_request_carries_only_the_selected_tools(openai_server: FakeOpenAIServer) -> None:
    runnable = bind_relevant_tools(chat(openai_server), TOOLS, k=1)
    reply = runnable.invoke("What's the weather in Oslo?")
    assert reply.content == "echo: What's the weather in Oslo?"
    assert sent_tools(openai_server.last_request) == ["get_weather"]
    assert openai_server.last_request["tools"][0]["function"]["parameters"]["properties"] == {
        "city": {"type": "string"}
    }


def test_tool_call_round_trip_keeps_the_called_tool_bound(
    openai_server: FakeOpenAIServer,
) -> None:
    runnable = bind_relevant_tools(chat(openai_server), TOOLS, k=1)
    openai_server.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    first = runnable.invoke([HumanMessage("What's the weather in Oslo?")])
    assert isinstance(first, AIMessage)
    assert [call["name"] for call in first.tool_calls] == ["get_weather"]

    history = [
        HumanMessage("What's the weather in Oslo?"),
        first,
        ToolMessage("sunny", tool_call_id=first.tool_calls[0]["id"]),
        AIMessage("Sunny in Oslo."),
        HumanMessage("Then convert 200 euros to Norwegian currency for me"),
    ]
    runnable.invoke(history)
    assert sent_tools(openai_server.requests[0]) == ["get_weather"]
    assert sent_tools(openai_server.requests[1]) == ["get_weather", "convert_currency"]


def test_budgeted_request_fits_the_budget_on_the_wire(openai_server: FakeOpenAIServer) -> None:
    counter = TokenCounter("gpt-4o")
    retriever = ToolRetriever(TOOLS, k=5)
    budget = retriever.schema_tokens("book_hotel") + retriever.schema_tokens("get_weather") - 5
    runnable = bind_relevant_tools(chat(openai_server), retriever, token_budget=budget)
    runnable.invoke("Book a hotel in Rome and check the weather there")
    sent = openai_server.last_request["tools"]
    assert 0 < len(sent) < 5
    assert counter.count_tools(sent) <= budget


def test_streamed_request_carries_only_the_selected_tools(
    openai_server: FakeOpenAIServer,
) -> None:
    runnable = bind_relevant_tools(chat(openai_server), TOOLS, k=2)
    chunks = list(runnable.stream("Send an email to Ann about the flights"))
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert "".join(str(c.content) for c in chunks) == "echo: Send an email to Ann about the flights"
    assert openai_server.last_request["stream"] is True
    assert sent_tools(openai_server.last_request) == ["send_email", "search_flights"]


async def test_async_requests_carry_only_the_selected_tools(
    openai_server: FakeOpenAIServer,
) -> None:
    runnable = bind_relevant_tools(chat(openai_server), TOOLS, k=1)
    await runnable.ainvoke("Reserve a hotel room in Rome")
    assert sent_tools(openai_server.last_request) == ["book_hotel"]
    chunks = [chunk async for chunk in runnable.astream("Search flights to Lisbon")]
    assert chunks
    assert sent_tools(openai_server.last_request) == ["search_flights"]


def test_no_matching_tool_sends_no_tools_key(openai_server: FakeOpenAIServer) -> None:
    bind_relevant_tools(chat(openai_server), TOOLS).invoke("zzzz qqqq")
    assert sent_tools(openai_server.last_request) is None
