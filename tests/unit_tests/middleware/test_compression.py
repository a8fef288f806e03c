"""`CompressionMiddleware` in a real `create_agent` loop: tool outputs enter state compressed."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.types import Command

from langchain_tokenopt.compression import PromptCompressor
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.middleware.compression import CompressionMiddleware
from tests.support.agent_doubles import call_tool, get_weather, scripted

PRETTY = get_weather.invoke({"city": "Oslo"})

REPORT = (
    "## Status\n\n\n**All   good.**   Run `make   test` and see https://example.com/a%20b   "
    "for the 3.50   EUR    fee.   \n\n\n\n"
)


@tool
def status_report() -> str:
    """The build status report."""
    return REPORT


@tool
def lookup_order(order_id: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command[Any]:
    """Look up an order and remember it."""
    body = json.dumps({"order_id": order_id, "status": "shipped"}, indent=4)
    return Command(update={"messages": [ToolMessage(body, tool_call_id=tool_call_id)]})


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def test_tool_output_enters_state_compressed() -> None:
    model = scripted([call_tool("get_weather", city="Oslo"), "Sunny."])
    agent = create_agent(model, [get_weather], middleware=[CompressionMiddleware()])
    result = agent.invoke({"messages": [HumanMessage("Weather in Oslo?")]})
    stored = tool_messages(result)[0]
    assert stored.content == '{"city":"Oslo","sky":"sunny","celsius":21}'
    assert json.loads(str(stored.content)) == json.loads(PRETTY)  # same data
    # ... and the next model call is sent the compressed output
    sent = [m for m in model.calls[1]["messages"] if isinstance(m, ToolMessage)]
    assert sent[0].content == stored.content
    assert stored.tool_call_id == "c1"


def test_lossless_level_keeps_code_urls_and_numbers_byte_for_byte() -> None:
    model = scripted([call_tool("status_report"), "ok"])
    agent = create_agent(model, [status_report], middleware=[CompressionMiddleware()])
    content = str(tool_messages(agent.invoke({"messages": [HumanMessage("status?")]}))[0].content)
    for span in ("`make   test`", "https://example.com/a%20b", "3.50"):
        assert span in content
    assert "**" not in content
    assert "   " not in content.replace("`make   test`", "")
    assert content == PromptCompressor().compress_text(REPORT)


def test_stats_are_exact_token_counts_of_the_tool_messages() -> None:
    middleware = CompressionMiddleware()
    model = scripted([call_tool("get_weather", city="Oslo"), "Sunny."])
    agent = create_agent(model, [get_weather], middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("Weather in Oslo?")]})
    counter = TokenCounter("gpt-4o")
    stored = tool_messages(result)[0]
    original = stored.model_copy(update={"content": PRETTY})
    stats = middleware.stats
    assert stats.tool_messages == 1
    assert stats.tokens_before == counter.count_message(original)
    assert stats.tokens_after == counter.count_message(stored)
    assert stats.tokens_saved > 0


def test_tool_messages_inside_a_command_are_compressed() -> None:
    model = scripted([call_tool("lookup_order", order_id="NW-1"), "Shipped."])
    agent = create_agent(model, [lookup_order], middleware=[CompressionMiddleware()])
    result = agent.invoke({"messages": [HumanMessage("Where is NW-1?")]})
    assert tool_messages(result)[0].content == '{"order_id":"NW-1","status":"shipped"}'


def test_light_level_is_available_and_named() -> None:
    middleware = CompressionMiddleware(level="light")
    assert middleware.compressor.level == "light"
    with pytest.raises(TypeError, match="PromptCompressor"):
        CompressionMiddleware("lossless")  # type: ignore[arg-type]


async def test_async_agent_compresses_too() -> None:
    model = scripted([call_tool("get_weather", city="Oslo"), "Sunny."])
    agent = create_agent(model, [get_weather], middleware=[CompressionMiddleware()])
    result = await agent.ainvoke({"messages": [HumanMessage("Weather in Oslo?")]})
    assert tool_messages(result)[0].content == '{"city":"Oslo","sky":"sunny","celsius":21}'
