"""`TokenBudgetMiddleware` in a real `create_agent` loop: spend, shrink, stop cleanly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatResult
from langgraph.checkpoint.memory import InMemorySaver

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import BudgetExceededError
from langchain_tokenopt.middleware.budget import TokenBudgetMiddleware
from langchain_tokenopt.stores import SQLiteStore
from tests.support.agent_doubles import (
    SYSTEM,
    ScriptedChatModel,
    call_tool,
    get_weather,
    question,
    replies,
    scripted,
    travel_agent,
    with_usage,
)


class FailingChatModel(ScriptedChatModel):
    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise ConnectionError("provider down")


def answer(text: str = "Sunny.", input_tokens: int = 100, output_tokens: int = 10) -> AIMessage:
    return with_usage(AIMessage(text), input_tokens, output_tokens)


def ask(agent: Any, text: str, thread: str = "t1") -> dict[str, Any]:
    result: dict[str, Any] = agent.invoke(
        {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}
    )
    return result


def test_spending_is_settled_with_the_usage_the_model_reports() -> None:
    budget = TokenBudget(max_tokens=10_000)
    model = scripted(
        [with_usage(call_tool("get_weather", city="Oslo"), 120, 15), answer("Sunny.", 180, 5)]
    )
    agent = create_agent(model, [get_weather], middleware=[TokenBudgetMiddleware(budget)])
    ask(agent, "Weather in Oslo?")
    assert budget.remaining().used_tokens == 120 + 15 + 180 + 5


def test_a_spent_budget_ends_the_run_with_a_final_message_and_no_model_call() -> None:
    budget = TokenBudget(max_tokens=300)
    model = scripted([answer("First.", 250, 50), answer("never sent")])
    middleware = TokenBudgetMiddleware(budget)
    agent = create_agent(
        model, [get_weather], middleware=[middleware], checkpointer=InMemorySaver()
    )
    ask(agent, "Hello")
    result = ask(agent, "Weather in Oslo?")
    final = result["messages"][-1]
    assert isinstance(final, AIMessage)
    assert "token budget is used up" in str(final.content)
    assert final.response_metadata["tokenopt_budget_stop"] is True
    assert len(model.calls) == 1
    assert middleware.stopped_runs == 1


def test_a_call_that_would_not_fit_is_not_made_and_the_run_ends() -> None:
    budget = TokenBudget(max_tokens=150)
    model = scripted([with_usage(call_tool("get_weather", city="Oslo"), 100, 10), answer()])
    agent = create_agent(
        model, [get_weather], system_prompt=SYSTEM, middleware=[TokenBudgetMiddleware(budget)]
    )
    result = ask(agent, question(1))
    # 40 tokens are left; the second call's input (the question, the call and its
    # result) is larger, so it is not sent and the run ends after the tool ran.
    assert len(model.calls) == 1
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "ai"]
    assert "Budget exceeded" in str(result["messages"][-1].content)
    assert budget.remaining().used_tokens == 110  # nothing reserved is left behind


def test_custom_final_message() -> None:
    budget = TokenBudget(max_tokens=100)
    model = scripted([answer("First.", 90, 10)])
    agent = create_agent(
        model,
        [get_weather],
        middleware=[
            TokenBudgetMiddleware(budget, final_message="Out of credit, see you tomorrow.")
        ],
        checkpointer=InMemorySaver(),
    )
    ask(agent, "Hello")
    assert ask(agent, "Again")["messages"][-1].content == "Out of credit, see you tomorrow."


def test_context_shrinks_as_the_budget_runs_low() -> None:
    counter = TokenCounter("gpt-4o-mini")
    budget = TokenBudget(max_tokens=60_000)
    middleware = TokenBudgetMiddleware(budget, min_context_tokens=300, max_context_tokens=2000)
    model = scripted(
        [with_usage(AIMessage(r) if isinstance(r, str) else r, 0, 0) for r in replies(12)]
    )
    agent = travel_agent(model, middleware)
    for i in range(12):
        ask(agent, question(i))
    roomy = [int(counter.count_messages(c["messages"])) for c in model.calls]
    assert max(roomy) <= 2000 and len(model.calls[-1]["messages"]) > 20  # 5% of 60k: all fits
    # Spend most of the budget elsewhere: 5% of what is left is now below the conversation.
    elsewhere = GenericFakeChatModel(messages=iter([answer("elsewhere", 50_000, 4_000)]))
    elsewhere.invoke("another job", config={"callbacks": [budget]})
    left = budget.remaining().tokens
    assert left is not None
    allowed = budget.context_tokens_for(left, min_context_tokens=300, max_context_tokens=2000)
    model.messages = iter([answer("Short answer.", 0, 0)])
    ask(agent, "And what about Oslo?")
    sent = model.calls[-1]["messages"]
    assert int(counter.count_messages(sent)) <= allowed < max(roomy)
    assert sent[-1].content == "And what about Oslo?"
    assert str(sent[1].content).startswith("Summary of the earlier conversation:")


def test_a_failed_call_gives_its_reservation_back() -> None:
    budget = TokenBudget(max_tokens=10_000)
    model = FailingChatModel(messages=iter([]))
    agent = create_agent(model, [get_weather], middleware=[TokenBudgetMiddleware(budget)])
    with pytest.raises(ConnectionError):
        ask(agent, "Hello")
    assert budget.remaining().used_tokens == 0


def test_a_cache_hit_costs_nothing() -> None:
    budget = TokenBudget(max_tokens=10_000)
    model = scripted([answer("Sunny.", 100, 10), answer("unused", 100, 10)])
    model.cache = TokenOptCache()
    agent = create_agent(model, [get_weather], middleware=[TokenBudgetMiddleware(budget)])
    ask(agent, "Weather in Oslo?", thread="a")
    ask(agent, "Weather in Oslo?", thread="b")  # the same request: answered by the cache
    assert len(model.calls) == 1
    assert budget.remaining().used_tokens == 110


def test_a_dollar_budget_prices_calls_by_the_model_name() -> None:
    budget = TokenBudget(max_cost_usd="0.01")
    model = scripted([answer("Sunny.", 1000, 100)])
    agent = create_agent(model, [get_weather], middleware=[TokenBudgetMiddleware(budget)])
    ask(agent, "Weather?")
    # gpt-4o-mini: $0.15 per million input tokens and $0.60 per million output tokens
    assert budget.remaining().used_cost_usd == Decimal("0.00021")


async def test_async_agent_with_a_sqlite_budget(tmp_path: Any) -> None:
    budget = TokenBudget(max_tokens=300, store=SQLiteStore(str(tmp_path / "b.db")))
    model = scripted([answer("First.", 250, 50), answer("never sent")])
    agent = create_agent(
        model,
        [get_weather],
        middleware=[TokenBudgetMiddleware(budget)],
        checkpointer=InMemorySaver(),
    )
    await agent.ainvoke({"messages": [HumanMessage("Hi")]}, {"configurable": {"thread_id": "x"}})
    result = await agent.ainvoke(
        {"messages": [HumanMessage("Again")]}, {"configurable": {"thread_id": "x"}}
    )
    assert "token budget is used up" in str(result["messages"][-1].content)
    assert len(model.calls) == 1
    assert budget.remaining().used_tokens == 300


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="TokenBudget"):
        TokenBudgetMiddleware(1000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="share"):
        TokenBudgetMiddleware(TokenBudget(max_tokens=10), share=0)
    with pytest.raises(ValueError, match="min_context_tokens"):
        TokenBudgetMiddleware(
            TokenBudget(max_tokens=10), min_context_tokens=500, max_context_tokens=100
        )


def test_final_message_function_gets_the_reason() -> None:
    reasons: list[Any] = []

    def final(reason: Any) -> str:
        reasons.append(reason)
        return "stop"

    budget = TokenBudget(max_tokens=50)
    model = scripted([answer()])
    agent = create_agent(
        model,
        [get_weather],
        system_prompt=SYSTEM * 20,
        middleware=[TokenBudgetMiddleware(budget, final_message=final)],
    )
    assert ask(agent, "Hello")["messages"][-1].content == "stop"
    assert isinstance(reasons[0], BudgetExceededError)
    assert model.calls == []
