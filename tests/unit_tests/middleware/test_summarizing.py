"""`SummaryRecallMiddleware` in a real `create_agent` loop: what each model call is sent."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.middleware.summarizing import SummaryRecallMiddleware
from tests.support.agent_doubles import (
    SYSTEM,
    ScriptedChatModel,
    get_weather,
    question,
    replies,
    scripted,
    travel_agent,
)


def run_conversation(
    middleware: SummaryRecallMiddleware, turns: int, thread: str = "t1"
) -> tuple[ScriptedChatModel, dict[str, Any]]:
    model = scripted(replies(turns))
    agent = travel_agent(model, middleware)
    result: dict[str, Any] = {}
    for i in range(turns):
        result = agent.invoke(
            {"messages": [HumanMessage(question(i))]}, {"configurable": {"thread_id": thread}}
        )
    return model, result


def assert_tool_pairs_intact(messages: list[BaseMessage]) -> None:
    for index, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            owners = [
                m
                for m in messages[:index]
                if isinstance(m, AIMessage)
                and any(c["id"] == message.tool_call_id for c in m.tool_calls)
            ]
            assert owners, f"tool result {message.tool_call_id} sent without its call"
        if isinstance(message, AIMessage) and message.tool_calls:
            answered = {m.tool_call_id for m in messages[index:] if isinstance(m, ToolMessage)}
            pending = index == len(messages) - 1
            assert pending or {c["id"] for c in message.tool_calls} <= answered


def test_every_call_stays_within_max_tokens_counted_exactly() -> None:
    counter = TokenCounter("gpt-4o")
    model, _ = run_conversation(SummaryRecallMiddleware(max_tokens=400), turns=12)
    sizes = [int(counter.count_messages(call["messages"])) for call in model.calls]
    assert max(sizes) <= 400
    assert len(model.calls) == 16  # 12 answers and 4 tool calls


def test_state_keeps_every_message_while_calls_get_a_summary() -> None:
    model, result = run_conversation(SummaryRecallMiddleware(max_tokens=400), turns=12)
    humans = [m for m in result["messages"] if isinstance(m, HumanMessage)]
    assert [m.content for m in humans] == [question(i) for i in range(12)]
    last = model.calls[-1]["messages"]
    assert isinstance(last[0], SystemMessage) and last[0].content == SYSTEM
    assert isinstance(last[1], SystemMessage)
    assert str(last[1].content).startswith("Summary of the earlier conversation:")
    assert last[-1].content == question(11)
    assert len(last) < len(result["messages"])


def test_a_tool_call_is_never_sent_without_its_result_or_the_other_way_round() -> None:
    model, _ = run_conversation(SummaryRecallMiddleware(max_tokens=300), turns=12)
    for call in model.calls:
        assert_tool_pairs_intact(call["messages"])
        conversation = [m for m in call["messages"] if not isinstance(m, SystemMessage)]
        assert not isinstance(conversation[0], ToolMessage)


def test_short_conversations_are_sent_whole() -> None:
    middleware = SummaryRecallMiddleware(max_tokens=4000)
    model, result = run_conversation(middleware, turns=3)
    assert model.calls[-1]["messages"][1:] == result["messages"][:-1]
    assert middleware.stats.tokens_saved == 0


def test_summary_is_incremental_each_fold_sees_only_new_turns() -> None:
    requests: list[dict[str, Any]] = []

    def summarize(request: dict[str, Any]) -> str:
        requests.append(request)
        return f"summary {len(requests)}"

    middleware = SummaryRecallMiddleware(max_tokens=400, summary_model=RunnableLambda(summarize))
    model, _ = run_conversation(middleware, turns=12)
    assert len(requests) >= 2
    folded = [m for request in requests for m in request["messages"]]
    assert len(folded) == len({id(m) for m in folded})  # no message summarized twice
    for index, request in enumerate(requests[1:], start=1):
        assert request["previous_summary"] == f"summary {index}"
    assert any("summary" in str(m.content) for m in model.calls[-1]["messages"][1:2])


def test_a_summary_model_writes_the_summary() -> None:
    summarizer = GenericFakeChatModel(messages=iter(["The user plans family trips."] * 20))
    middleware = SummaryRecallMiddleware(max_tokens=400, summary_model=summarizer)
    model, _ = run_conversation(middleware, turns=12)
    summary = model.calls[-1]["messages"][1]
    assert summary.content == "Summary of the earlier conversation:\nThe user plans family trips."


def test_without_a_model_the_summary_is_extractive_from_the_conversation() -> None:
    model, _ = run_conversation(SummaryRecallMiddleware(max_tokens=400), turns=12)
    summary = str(model.calls[-1]["messages"][1].content)
    assert "trip" in summary  # sentences taken from the folded turns


def test_threads_have_separate_summaries() -> None:
    middleware = SummaryRecallMiddleware(max_tokens=400)
    model = scripted(replies(12) * 2)
    agent = travel_agent(model, middleware)
    for i in range(12):
        agent.invoke(
            {"messages": [HumanMessage(question(i))]}, {"configurable": {"thread_id": "a"}}
        )
    agent.invoke(
        {"messages": [HumanMessage("Hello, new trip!")]}, {"configurable": {"thread_id": "b"}}
    )
    first_of_b = model.calls[-1]["messages"]
    assert [m.content for m in first_of_b] == [SYSTEM, "Hello, new trip!"]


def test_stats_compare_sent_tokens_with_the_full_conversation() -> None:
    middleware = SummaryRecallMiddleware(max_tokens=400)
    model, _ = run_conversation(middleware, turns=12)
    counter = TokenCounter("gpt-4o")
    stats = middleware.stats
    assert stats.model_calls == len(model.calls)
    assert stats.sent_tokens == sum(int(counter.count_messages(c["messages"])) for c in model.calls)
    assert stats.full_tokens > stats.sent_tokens


async def test_async_agent_stays_within_budget() -> None:
    counter = TokenCounter("gpt-4o")
    model = scripted(replies(8))
    agent = create_agent(
        model,
        [get_weather],
        system_prompt=SYSTEM,
        middleware=[SummaryRecallMiddleware(max_tokens=350)],
        checkpointer=InMemorySaver(),
    )
    for i in range(8):
        await agent.ainvoke(
            {"messages": [HumanMessage(question(i))]}, {"configurable": {"thread_id": "x"}}
        )
    assert max(int(counter.count_messages(c["messages"])) for c in model.calls) <= 350


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        SummaryRecallMiddleware(max_tokens=8)
    with pytest.raises(TypeError, match="int"):
        SummaryRecallMiddleware(max_tokens=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target_ratio"):
        SummaryRecallMiddleware(target_ratio=0)
    with pytest.raises(TypeError, match="summarizer"):
        SummaryRecallMiddleware(summary_model="gpt-4o")  # type: ignore[arg-type]
