"""CoalescingRunnable in front of ChatOpenAI, against the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import openai
import pytest
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from langchain_tokenopt.coalescing import CoalescingRunnable
from tests.support.openai_server import FakeOpenAIServer


def _llm(server: FakeOpenAIServer, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("temperature", 0)
    return ChatOpenAI(
        base_url=server.base_url,
        api_key="test",
        model="gpt-4o-mini",
        max_retries=0,
        **kwargs,
    )


async def test_identical_concurrent_requests_send_one_http_request(
    openai_server: FakeOpenAIServer,
) -> None:
    coalescer = CoalescingRunnable(_llm(openai_server), window_ms=0)
    openai_server.pause()
    first = [asyncio.create_task(coalescer.ainvoke("What is 2+2?")) for _ in range(3)]
    assert await asyncio.to_thread(openai_server.wait_for_requests, 1)
    late = [asyncio.create_task(coalescer.ainvoke("What is 2+2?")) for _ in range(2)]
    await asyncio.sleep(0)  # the late callers join the request in flight
    openai_server.resume()
    replies: list[BaseMessage] = await asyncio.gather(*first, *late)
    assert {reply.content for reply in replies} == {"echo: What is 2+2?"}
    assert openai_server.request_count == 1
    assert coalescer.stats.shared == 4


async def test_a_server_error_reaches_every_waiter_and_the_next_call_retries(
    openai_server: FakeOpenAIServer,
) -> None:
    coalescer = CoalescingRunnable(_llm(openai_server), window_ms=0)
    openai_server.fail_next(500)
    results = await asyncio.gather(
        *(coalescer.ainvoke("hello") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, openai.InternalServerError) for r in results)
    assert openai_server.request_count == 1
    reply = await coalescer.ainvoke("hello")
    assert reply.content == "echo: hello"
    assert openai_server.request_count == 2


async def test_distinct_requests_batch_and_each_gets_its_own_answer(
    openai_server: FakeOpenAIServer,
) -> None:
    coalescer = CoalescingRunnable(_llm(openai_server), window_ms=0, max_batch_size=8)
    questions = [f"question {i}" for i in range(5)]
    replies = await asyncio.gather(*(coalescer.ainvoke(q) for q in questions))
    assert [reply.content for reply in replies] == [f"echo: {q}" for q in questions]
    assert openai_server.request_count == 5, "ChatOpenAI has no batch endpoint"
    assert coalescer.stats.underlying_calls == 1
    assert coalescer.stats.largest_batch == 5


async def test_sampling_model_sends_one_request_per_caller(
    openai_server: FakeOpenAIServer,
) -> None:
    coalescer = CoalescingRunnable(_llm(openai_server, temperature=0.9), window_ms=0)
    await asyncio.gather(*(coalescer.ainvoke("a poem") for _ in range(3)))
    assert openai_server.request_count == 3


def test_threads_share_one_request(openai_server: FakeOpenAIServer) -> None:
    coalescer = CoalescingRunnable(_llm(openai_server), window_ms=0)
    openai_server.pause()
    contents: list[Any] = []

    def ask() -> None:
        contents.append(coalescer.invoke("ping").content)

    leader = threading.Thread(target=ask)
    leader.start()
    assert openai_server.wait_for_requests(1)
    followers = [threading.Thread(target=ask) for _ in range(3)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while coalescer.stats.shared < 3:  # synchronize with the follower threads
        assert time.monotonic() < deadline, "followers never joined the request in flight"
        time.sleep(0.001)
    openai_server.resume()
    for thread in [leader, *followers]:
        thread.join(10)
    assert contents == ["echo: ping"] * 4
    assert openai_server.request_count == 1


@pytest.fixture(autouse=True)
def _resume_server(openai_server: FakeOpenAIServer) -> Any:
    yield
    openai_server.resume()  # never leave a paused server behind a failed test
