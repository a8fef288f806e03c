"""SummarizingChatMessageHistory over a Redis chat history, state in RedisStore."""

from __future__ import annotations

import threading

import pytest
from langchain_community import chat_message_histories as redis_histories
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.stores import RedisStore

pytestmark = pytest.mark.redis
COUNTER = TokenCounter("gpt-4o")
BUDGET = 200


def _history(redis_url: str, session_id: str = "s1") -> SummarizingChatMessageHistory:
    store = redis_histories.RedisChatMessageHistory(session_id, url=redis_url)
    return SummarizingChatMessageHistory(
        store, max_tokens=BUDGET, state_store=RedisStore(redis_url), token_counter=COUNTER
    )


def _turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"Invoice {i} for 3{i} USD is due on June {i % 28 + 1}."), AIMessage("ok")]


def test_restart_over_redis_resumes_without_losing_messages(
    redis_url: str, redis_client: object
) -> None:
    first = _history(redis_url)
    for i in range(25):
        first.add_messages(_turn(i))
        assert COUNTER.count_messages(first.messages) <= BUDGET
    summary, view = first.summary, first.messages
    assert summary

    second = _history(redis_url)
    assert second.summary == summary
    assert [m.content for m in second.messages] == [m.content for m in view]
    assert len(second.full_messages) == 50


def test_two_workers_on_one_session_see_each_others_messages(
    redis_url: str, redis_client: object
) -> None:
    a, b = _history(redis_url, "shared"), _history(redis_url, "shared")
    for i in range(10):
        (a if i % 2 else b).add_messages(_turn(i))
    assert len(a.full_messages) == 20
    assert a.messages[-2].content == b.messages[-2].content == _turn(9)[0].content
    assert COUNTER.count_messages(a.messages) <= BUDGET
    assert COUNTER.count_messages(b.messages) <= BUDGET


def test_concurrent_threads_store_each_message_once_in_redis(
    redis_url: str, redis_client: object
) -> None:
    history = _history(redis_url, "threads")

    def worker(w: int) -> None:
        for i in range(15):
            history.add_messages([HumanMessage(f"worker {w} note {i}")])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    contents = sorted(str(m.content) for m in history.full_messages)
    assert contents == sorted(f"worker {w} note {i}" for w in range(3) for i in range(15))
    assert COUNTER.count_messages(history.messages) <= BUDGET
