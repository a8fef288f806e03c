"""UsageTracker records every model call exactly: usage, cost, outcome, agent and task."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.caches import InMemoryCache
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers import context as tracer_context

from langchain_tokenopt.callbacks.tracker import UsageTracker, track_usage
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.pricing import ModelPrice, PriceTable, price
from langchain_tokenopt.core.tokens import TokenCounter
from tests.support.agent_doubles import scripted
from tests.support.chat_models import CountingFakeChatModel, repeating, reply_with_usage

reply = reply_with_usage


def fake(message: AIMessage | None = None, **kwargs: Any) -> CountingFakeChatModel:
    return repeating(message or reply(), **kwargs)


# ---------------------------------------------------------------- recording one call


def test_each_call_becomes_one_event_with_usage_model_and_cost() -> None:
    tracker = UsageTracker()
    model = fake(reply(1200, 80, input_token_details={"cache_read": 1024}), model="gpt-4o")
    model.invoke("hello", config={"callbacks": [tracker]})
    (event,) = tracker.events
    assert (event.input_tokens, event.output_tokens, event.cache_read_tokens) == (1200, 80, 1024)
    assert event.model == "gpt-4o"
    assert event.status == "ok" and not event.estimated and not event.cache_hit
    expected = price(
        "gpt-4o",
        {"input_tokens": 1200, "output_tokens": 80, "input_token_details": {"cache_read": 1024}},
    )
    assert event.cost_usd == expected
    assert event.latency_seconds >= 0


def test_run_and_parent_run_ids_are_recorded() -> None:
    tracker = UsageTracker()
    model = fake()

    def chain(text: str) -> AIMessage:
        return model.invoke(text)

    RunnableLambda(chain).invoke("hi", config={"callbacks": [tracker], "run_name": "outer"})
    (event,) = tracker.events
    assert event.parent_run_id is not None
    assert event.run_id != event.parent_run_id


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"metadata": {"agent": "planner"}, "tags": ["agent:ignored"]}, "planner"),
        ({"tags": ["seq:step:1", "agent:researcher"]}, "researcher"),
        ({"metadata": {"lc_agent_name": "support_bot"}}, "support_bot"),
        ({"run_name": "summarize"}, "summarize"),
        ({"metadata": {"lc_agent_name": "support_bot"}, "run_name": "x"}, "support_bot"),
        ({"metadata": {"langgraph_node": "model"}}, "default"),  # a node is not an agent
        ({}, "default"),
    ],
)
def test_agent_comes_from_metadata_then_tags_then_agent_name_then_run_name(
    config: dict[str, Any], expected: str
) -> None:
    tracker = UsageTracker()
    run_config: Any = {"callbacks": [tracker], **config}
    fake().invoke("hi", config=run_config)
    assert tracker.events[0].agent == expected


def test_an_agent_built_with_create_agent_is_named_by_its_name() -> None:
    tracker = UsageTracker()
    agent = create_agent(scripted([reply()]), name="support_bot")
    config: Any = {"callbacks": [tracker], "run_name": "ignored_for_a_named_agent"}
    agent.invoke({"messages": [HumanMessage("hi")]}, config=config)
    (event,) = tracker.events
    assert event.agent == "support_bot"
    assert event.task_id not in (event.run_id, event.parent_run_id)  # the agent's whole run


def test_an_unnamed_agent_is_named_by_its_run_name_else_by_its_graph() -> None:
    tracker = UsageTracker()
    agent = create_agent(scripted([reply(), reply()]))
    agent.invoke({"messages": [HumanMessage("hi")]}, config={"callbacks": [tracker]})
    config: Any = {"callbacks": [tracker], "run_name": "faq_agent"}
    agent.invoke({"messages": [HumanMessage("hi")]}, config=config)
    assert [event.agent for event in tracker.events] == [agent.name, "faq_agent"]
    assert agent.name == "LangGraph"  # create_agent's graph name when none is given


def test_a_chain_is_named_by_its_run_name_else_by_its_own_name() -> None:
    tracker = UsageTracker()
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | fake()
    chain.invoke({"question": "q"}, config={"callbacks": [tracker], "run_name": "faq_chain"})
    chain.invoke({"question": "q"}, config={"callbacks": [tracker]})
    assert [event.agent for event in tracker.events] == ["faq_chain", chain.get_name()]
    assert chain.get_name() == "RunnableSequence"


def test_a_root_name_is_forgotten_when_its_run_ends() -> None:
    tracker = UsageTracker()
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | fake()
    chain.invoke({"question": "q"}, config={"callbacks": [tracker], "run_name": "faq_chain"})
    fake().invoke("hi", config={"callbacks": [tracker]})
    assert [event.agent for event in tracker.events] == ["faq_chain", "default"]
    assert not tracker._root_names and not tracker._roots


def test_a_user_agent_key_wins_over_metadata() -> None:
    tracker = UsageTracker(agent_key=lambda call: call.metadata.get("team"))
    model = fake()
    model.invoke("hi", config={"callbacks": [tracker], "metadata": {"agent": "a", "team": "t1"}})
    model.invoke("hi", config={"callbacks": [tracker], "metadata": {"agent": "a"}})
    assert [e.agent for e in tracker.events] == ["t1", "a"]


def test_usage_from_llm_output_is_used_when_the_message_has_none() -> None:
    class LegacyChat(CountingFakeChatModel):
        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> ChatResult:
            result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
            result.llm_output = {
                "token_usage": {"prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44}
            }
            return result

    tracker = UsageTracker()
    LegacyChat(messages=itertools.repeat(AIMessage("x"))).invoke(
        "hi", config={"callbacks": [tracker]}
    )
    (event,) = tracker.events
    assert (event.input_tokens, event.output_tokens, event.estimated) == (40, 4, False)


def test_a_call_without_usage_is_counted_with_token_counter_and_marked_estimated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = UsageTracker()
    model = fake(AIMessage("Paris is the capital of France."), model="gpt-4o")
    messages = [HumanMessage("What is the capital of France?")]
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.callbacks.tracker"):
        model.invoke(messages, config={"callbacks": [tracker]})
        model.invoke(messages, config={"callbacks": [tracker]})
    counter = TokenCounter("gpt-4o")
    event = tracker.events[0]
    assert event.estimated
    assert event.input_tokens == counter.count_messages(messages)
    assert event.output_tokens == counter.count_text("Paris is the capital of France.")
    assert len([r for r in caplog.records if "reported no token usage" in r.message]) == 1


def test_a_streamed_openai_call_without_usage_warns_once_to_set_stream_usage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = UsageTracker()
    model = fake(AIMessage("streamed words here"), provider="openai", model="gpt-4o-mini")
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.callbacks.tracker"):
        for _ in range(3):
            for _chunk in model.stream("hi", config={"callbacks": [tracker]}):
                pass
    warnings = [r for r in caplog.records if "stream_usage=True" in r.message]
    assert len(warnings) == 1
    assert all(e.estimated and e.streamed for e in tracker.events)
    assert tracker.events[0].output_tokens == TokenCounter("gpt-4o-mini").count_text(
        "streamed words here"
    )


def test_streamed_usage_comes_from_the_final_chunk() -> None:
    # GenericFakeChatModel drops usage when streaming; this fake puts it on the last chunk
    # like ChatOpenAI with stream_usage=True does.
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    class UsageStreamingChat(CountingFakeChatModel):
        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> Iterator[ChatGenerationChunk]:
            yield ChatGenerationChunk(message=AIMessageChunk(content="hello "))
            yield ChatGenerationChunk(message=AIMessageChunk(content="world"))
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata={"input_tokens": 21, "output_tokens": 2, "total_tokens": 23},
                )
            )

    tracker = UsageTracker()
    model = UsageStreamingChat(messages=iter([]))
    assert "".join(str(c.content) for c in model.stream("hi", config={"callbacks": [tracker]}))
    (event,) = tracker.events
    assert (event.input_tokens, event.output_tokens, event.estimated, event.streamed) == (
        21,
        2,
        False,
        True,
    )


def test_a_failed_call_is_recorded_as_an_error_without_spending() -> None:
    tracker = UsageTracker()
    model = fake(fail_with="provider down")
    with pytest.raises(RuntimeError, match="provider down"):
        model.invoke("hi", config={"callbacks": [tracker], "metadata": {"agent": "a"}})
    (event,) = tracker.events
    assert event.status == "error" and event.error_type == "RuntimeError"
    report = tracker.report()
    assert report.totals.errors == 1 and report.totals.calls == 1
    assert report.totals.total_tokens == 0


def test_an_unknown_model_gets_cost_none_and_one_log_line_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = UsageTracker()
    model = fake(model="my-private-llama")
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.callbacks.tracker"):
        for _ in range(3):
            model.invoke("hi", config={"callbacks": [tracker]})
        report = tracker.report()
    assert all(e.cost_usd is None for e in report.events)
    assert report.totals.unpriced_calls == 3 and report.totals.cost_usd == 0
    assert report.totals.input_tokens == 300
    assert len([r for r in caplog.records if "my-private-llama" in r.message]) == 1


def test_a_price_table_prices_a_private_model() -> None:
    prices = PriceTable({"my-private-llama": ModelPrice(Decimal("1"), Decimal("2"))})
    tracker = UsageTracker(prices=prices)
    fake(reply(1_000_000, 1_000_000), model="my-private-llama").invoke(
        "hi", config={"callbacks": [tracker]}
    )
    assert tracker.events[0].cost_usd == Decimal(3)


# ---------------------------------------------------------------- cache hits


def test_a_langchain_cache_hit_is_saved_not_spent() -> None:
    tracker = UsageTracker()
    model = fake(reply(500, 50), cache=InMemoryCache())
    model.invoke("same question", config={"callbacks": [tracker]})
    model.invoke("same question", config={"callbacks": [tracker]})
    first, second = tracker.events
    assert not first.cache_hit and second.cache_hit
    assert second.cost_usd == 0 and second.saved_cost_usd == first.cost_usd
    totals = tracker.report().totals
    assert (totals.input_tokens, totals.output_tokens) == (500, 50)
    assert totals.cache_hits == 1 and totals.saved_tokens == 550
    assert totals.saved_cost_usd == first.cost_usd
    assert totals.cost_usd == first.cost_usd


def test_a_tokenopt_cache_hit_marker_counts_as_saved() -> None:
    tracker = UsageTracker()
    cached = reply(300, 30)
    cached.response_metadata[CACHE_HIT_KEY] = True
    fake(cached).invoke("hi", config={"callbacks": [tracker]})
    totals = tracker.report().totals
    assert totals.cache_hits == 1 and totals.saved_tokens == 330 and totals.total_tokens == 0


# ---------------------------------------------------------------- track_usage


def test_track_usage_attaches_a_tracker_to_every_run_inside_the_block() -> None:
    model = fake()

    def chain(text: str) -> AIMessage:
        return model.invoke(text)

    with track_usage() as tracker:
        model.invoke("a")
        RunnableLambda(chain).invoke("b")
    model.invoke("after the block")
    assert tracker.report().totals.calls == 2


def test_track_usage_does_not_grow_langchains_hook_list() -> None:
    before = len(tracer_context._configure_hooks)
    model = fake()
    for _ in range(100):
        with track_usage() as tracker:
            model.invoke("a")
        assert tracker.report().totals.calls == 1
    assert len(tracer_context._configure_hooks) == before


def test_nested_track_usage_blocks_restore_the_outer_tracker() -> None:
    model = fake()
    with track_usage() as outer:
        with track_usage() as inner:
            model.invoke("inner")
        model.invoke("outer")
    assert inner.report().totals.calls == 1
    assert outer.report().totals.calls == 1


def test_track_usage_is_not_attached_twice_when_also_passed_as_callback() -> None:
    model = fake()
    with track_usage() as tracker:
        model.invoke("a", config={"callbacks": [tracker]})
    assert tracker.report().totals.calls == 1


# ---------------------------------------------------------------- concurrency


def test_totals_are_exact_with_8_threads_of_1000_calls() -> None:
    tracker = UsageTracker()
    model = fake(reply(7, 3))

    def work(agent: str) -> None:
        config: Any = {"callbacks": [tracker], "metadata": {"agent": agent}}
        for _ in range(1000):
            model.invoke("hi", config=config)

    threads = [threading.Thread(target=work, args=(f"agent{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = tracker.report()
    assert report.totals.calls == 8000
    assert (report.totals.input_tokens, report.totals.output_tokens) == (56_000, 24_000)
    assert {a: t.calls for a, t in report.by_agent.items()} == {f"agent{i}": 1000 for i in range(8)}
    assert report.totals.cost_usd == 8000 * price("gpt-4o", {"input_tokens": 7, "output_tokens": 3})


async def test_totals_are_exact_with_1000_concurrent_async_calls() -> None:
    tracker = UsageTracker()
    model = fake(reply(11, 5))
    await asyncio.gather(
        *(model.ainvoke("hi", config={"callbacks": [tracker]}) for _ in range(1000))
    )
    totals = tracker.report().totals
    assert (totals.calls, totals.input_tokens, totals.output_tokens) == (1000, 11_000, 5_000)


# ---------------------------------------------------------------- validation


def test_a_budget_that_is_not_a_token_budget_is_refused() -> None:
    with pytest.raises(TypeError, match="budget"):
        UsageTracker(budget=object())  # type: ignore[arg-type]


def test_reset_forgets_recorded_events() -> None:
    tracker = UsageTracker()
    fake().invoke("hi", config={"callbacks": [tracker]})
    tracker.reset()
    assert tracker.report().totals.calls == 0
