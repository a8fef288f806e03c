"""End to end: ChatOpenAI (real SDK, local server) in RunnableWithMessageHistory."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
    trim_messages,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_openai import ChatOpenAI

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.chat_history.summarizers import LLMSummarizer
from langchain_tokenopt.core.tokens import TokenCounter
from tests.support.openai_server import FakeOpenAIServer

COUNTER = TokenCounter("gpt-4o")
BUDGET = 300
SYSTEM = "You are a concise assistant for a moving company."


# These tests exercise RunnableWithMessageHistory, which langchain-core deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:RunnableWithMessageHistory is deprecated:DeprecationWarning"
)


def _llm(server: FakeOpenAIServer) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o", max_retries=0)


def _chain(
    server: FakeOpenAIServer, sessions: dict[str, SummarizingChatMessageHistory]
) -> Runnable[Any, Any]:
    def get_history(session_id: str) -> SummarizingChatMessageHistory:
        return sessions.setdefault(
            session_id, SummarizingChatMessageHistory(max_tokens=BUDGET, token_counter=COUNTER)
        )

    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    return RunnableWithMessageHistory(
        prompt | _llm(server),
        get_history,
        input_messages_key="question",
        history_messages_key="history",
    )


def _sent(body: dict[str, Any]) -> list[BaseMessage]:
    return convert_to_messages(body["messages"])


def _question(i: int) -> str:
    return f"Box {i} holds {i * 3} plates and goes to the kitchen on floor {i % 4}."


def test_requests_stay_in_budget_and_the_store_keeps_every_turn(
    openai_server: FakeOpenAIServer,
) -> None:
    sessions: dict[str, SummarizingChatMessageHistory] = {}
    chain = _chain(openai_server, sessions)
    for i in range(25):
        reply = chain.invoke(
            {"question": _question(i)}, {"configurable": {"session_id": "mover-1"}}
        )
        assert reply.content == f"echo: {_question(i)}"
    history = sessions["mover-1"]
    assert len(history.full_messages) == 50
    assert history.summary
    fixed = COUNTER.count_messages([SystemMessage(SYSTEM), HumanMessage(_question(24))])
    for body in openai_server.requests:
        history_part = COUNTER.count_messages(_sent(body)) - fixed + 3
        assert history_part <= BUDGET
    last = _sent(openai_server.requests[-1])
    assert "Summary of the earlier conversation" in str(last[1].content)
    assert last[-1].content == _question(24)


async def test_async_chain_over_the_real_http_client(openai_server: FakeOpenAIServer) -> None:
    sessions: dict[str, SummarizingChatMessageHistory] = {}
    chain = _chain(openai_server, sessions)
    for i in range(15):
        await chain.ainvoke({"question": _question(i)}, {"configurable": {"session_id": "a"}})
    history = sessions["a"]
    assert len(history.full_messages) == 30
    assert COUNTER.count_messages(await history.aget_messages()) <= BUDGET


def test_chat_openai_as_summarizer_gets_previous_summary_and_new_turns_only(
    openai_server: FakeOpenAIServer,
) -> None:
    history = SummarizingChatMessageHistory(
        max_tokens=BUDGET, summarizer=_llm(openai_server), token_counter=COUNTER
    )
    assert isinstance(history._summarizer, LLMSummarizer)
    summaries = [f"Summary {n}: boxes were listed." for n in range(20)]
    for text in summaries:
        openai_server.enqueue(text)
    for i in range(25):
        history.add_messages([HumanMessage(_question(i)), AIMessage("Noted.")])
        assert COUNTER.count_messages(history.messages) <= BUDGET
    calls = openai_server.requests
    assert len(calls) >= 2
    assert history.summary == summaries[len(calls) - 1]
    for n, body in enumerate(calls):
        prompt = str(body["messages"][1]["content"])
        previous = "(none yet)" if n == 0 else summaries[n - 1]
        assert prompt.startswith(f"Current summary:\n{previous}\n")
    # Every question appears in exactly one summarizer request: none re-summarized.
    for i in range(25):
        sent = sum(_question(i) in str(body["messages"][1]["content"]) for body in calls)
        assert sent <= 1


async def test_async_history_awaits_the_chat_openai_summarizer(
    openai_server: FakeOpenAIServer,
) -> None:
    history = SummarizingChatMessageHistory(
        max_tokens=BUDGET, summarizer=_llm(openai_server), token_counter=COUNTER
    )
    for n in range(10):
        openai_server.enqueue(f"Async summary {n}.")
    for i in range(25):
        await history.aadd_messages([HumanMessage(_question(i)), AIMessage("Noted.")])
        assert COUNTER.count_messages(await history.aget_messages()) <= BUDGET
    assert openai_server.requests
    assert history.summary == f"Async summary {len(openai_server.requests) - 1}."


def test_summarizer_outage_falls_back_to_trimming_then_recovers(
    openai_server: FakeOpenAIServer,
) -> None:
    history = SummarizingChatMessageHistory(
        max_tokens=BUDGET, summarizer=_llm(openai_server), token_counter=COUNTER
    )
    openai_server.fail_next(status=500, times=50)
    for i in range(20):
        history.add_messages([HumanMessage(_question(i)), AIMessage("Noted.")])
        assert COUNTER.count_messages(history.messages) <= BUDGET
    assert history.summary == ""
    assert len(history.full_messages) == 40
    openai_server.reset()
    for _ in range(10):  # the backlog is folded in chunks of about the budget
        openai_server.enqueue("Boxes 0-19 were listed with their plates and floors.")
    history.add_messages([HumanMessage(_question(20)), AIMessage("Noted.")])
    assert history.summary == "Boxes 0-19 were listed with their plates and floors."
    assert COUNTER.count_messages(history.messages) <= BUDGET


def test_stable_summary_prefix_gets_more_prompt_cache_hits_than_trimming(
    openai_server: FakeOpenAIServer,
) -> None:
    llm = _llm(openai_server)
    system = SystemMessage("Policy: " + " ".join(f"rule {i} applies." for i in range(300)))
    budget = int(COUNTER.count_messages([system])) + 700
    # The server caches in 128-token steps: this much of every request is the system
    # prompt, which both strategies repeat; count only cache hits beyond it.
    system_cached = (int(COUNTER.count_messages([system])) - 3) // 128 * 128
    answer = AIMessage("Packed and labelled, nothing else.")

    def cached_beyond_system(build: Any) -> int:
        openai_server.reset()
        openai_server.simulate_prompt_cache = True
        total = 0
        for i in range(60):
            reply = llm.invoke(build(HumanMessage(_question(i) + " Anything else to pack?")))
            assert reply.usage_metadata is not None
            cached = reply.usage_metadata["input_token_details"]["cache_read"]
            if i >= 25:  # both drop old turns by now (from about turn 18)
                total += max(0, cached - system_cached)
        return total

    ours = SummarizingChatMessageHistory(max_tokens=budget, token_counter=COUNTER)
    ours.add_messages([system])

    def with_ours(question: HumanMessage) -> list[BaseMessage]:
        prompt = [*ours.messages, question]
        ours.add_messages([question, answer])
        return prompt

    plain: list[BaseMessage] = [system]

    def with_trim(question: HumanMessage) -> list[BaseMessage]:
        window = trim_messages(
            plain,
            max_tokens=budget,
            token_counter=COUNTER,
            strategy="last",
            start_on="human",
            include_system=True,
        )
        plain.extend([question, answer])
        return [*window, question]

    ours_hits, trim_hits = cached_beyond_system(with_ours), cached_beyond_system(with_trim)
    assert ours.folded_message_count > 0
    assert ours_hits > 3 * trim_hits
    assert ours_hits >= 35 * 256  # on average two more cached blocks per request
