"""BatchAPIRunnable over ChatOpenAI against the local Batch API, over real HTTP."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_tokenopt.core.markers import BATCH_KEY
from langchain_tokenopt.errors import BatchItemError
from langchain_tokenopt.stores import SQLiteStore
from tests.integration_tests.batch.conftest import MakeBatched
from tests.support.openai_server import FakeOpenAIServer


class Person(BaseModel):
    name: str
    age: int


def test_answers_come_back_in_input_order_through_one_batch(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")]).invoke({"q": "prompt value"})
    inputs: list[Any] = [
        "first",
        [SystemMessage("be brief"), HumanMessage("second")],
        [("human", "third")],
        prompt,
    ]
    answers = make_batched(llm).batch(inputs)
    assert [a.content for a in answers] == [
        "echo: first",
        "echo: second",
        "echo: third",
        "echo: prompt value",
    ]
    assert all(isinstance(a, AIMessage) and a.usage_metadata for a in answers)
    assert [a.response_metadata[BATCH_KEY]["custom_id"] for a in answers] == [
        f"item-{i}" for i in range(4)
    ]
    (batch,) = openai_server.batch.batches
    assert batch["status"] == "completed"
    assert openai_server.request_count == 0  # nothing went to /v1/chat/completions


def test_the_request_body_is_the_models_own_payload(
    openai_server: FakeOpenAIServer, make_batched: MakeBatched
) -> None:
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=openai_server.base_url,
        api_key="test",
        temperature=0.3,
        max_tokens=50,
        model_kwargs={"user": "u-1"},
    )
    make_batched(llm).batch(["hi"])
    (body,) = openai_server.batch.requests
    assert body["temperature"] == 0.3
    assert body["max_completion_tokens"] == 50
    assert body["user"] == "u-1"
    assert "stream" not in body
    expected = llm._get_request_payload([HumanMessage("hi")])
    expected.pop("stream", None)
    assert body == expected


def test_a_failed_item_raises_after_the_batch_ends_naming_it(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.fail_items({"item-1": (400, "bad image url")})
    with pytest.raises(BatchItemError, match=r"Item 1 \('item-1'\).*HTTP 400.*bad image url"):
        make_batched(llm).batch(["a", "b", "c"])
    assert openai_server.batch.batches[0]["status"] == "completed"


def test_return_exceptions_gives_the_failed_item_its_error(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.fail_items({"item-0": (500, "server error")})
    answers = make_batched(llm).batch(["a", "b"], return_exceptions=True)
    assert isinstance(answers[0], BatchItemError)
    assert (answers[0].index, answers[0].reason, answers[0].status_code) == (0, "failed", 500)
    assert isinstance(answers[1], AIMessage) and answers[1].content == "echo: b"


def test_expired_items_are_errors_and_answered_ones_are_kept(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.expire_next(completed_items=2)
    answers = make_batched(llm).batch(["a", "b", "c", "d"], return_exceptions=True)
    assert [a.content for a in answers[:2]] == ["echo: a", "echo: b"]
    assert all(isinstance(a, BatchItemError) and a.reason == "expired" for a in answers[2:])
    assert openai_server.batch.batches[0]["status"] == "expired"


def test_cancel_stops_the_batch_and_its_items_come_back_cancelled(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.hold()
    batched = make_batched(llm)
    answers: list[Any] = []
    config: Any = {"configurable": {"batch_key": "nightly"}}
    worker = threading.Thread(
        target=lambda: answers.extend(batched.batch(["a", "b"], config, return_exceptions=True))
    )
    worker.start()
    assert openai_server.batch.wait_for_polls(1)  # created, saved, being polled
    assert batched.cancel("nightly") == 1
    worker.join(timeout=10)
    assert all(isinstance(a, BatchItemError) and a.reason == "cancelled" for a in answers)
    assert openai_server.batch.batches[0]["status"] == "cancelled"
    assert batched.cancel("nightly") == 0  # collected: the key is free again


def test_a_restarted_process_collects_the_same_batch_instead_of_paying_twice(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched, tmp_path: Path
) -> None:
    config: Any = {"configurable": {"batch_key": "labels-2024-06"}}
    openai_server.batch.hold()
    first = make_batched(llm, store=SQLiteStore(tmp_path / "batches.db"), timeout_seconds=0.02)
    with pytest.raises(TimeoutError, match="batch_key"):
        first.batch(["a", "b", "c"], config)  # the process "dies" while the batch runs
    assert len(openai_server.batch.batches) == 1
    openai_server.batch.release()

    restarted = make_batched(llm, store=SQLiteStore(tmp_path / "batches.db"))
    answers = restarted.batch(["a", "b", "c"], config)
    assert [a.content for a in answers] == ["echo: a", "echo: b", "echo: c"]
    assert len(openai_server.batch.batches) == 1  # no second batch was created


def test_without_a_key_the_same_requests_find_their_running_batch(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched, tmp_path: Path
) -> None:
    openai_server.batch.hold()
    store = SQLiteStore(tmp_path / "batches.db")
    with pytest.raises(TimeoutError):
        make_batched(llm, store=store, timeout_seconds=0.02).batch(["a", "b"])
    openai_server.batch.release()
    answers = make_batched(llm, store=store).batch(["a", "b"])
    assert [a.content for a in answers] == ["echo: a", "echo: b"]
    assert len(openai_server.batch.batches) == 1


def test_a_key_holding_another_batch_is_refused(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.hold()
    batched = make_batched(llm, timeout_seconds=0.02)
    config: Any = {"configurable": {"batch_key": "k"}}
    with pytest.raises(TimeoutError):
        batched.batch(["a", "b"], config)
    with pytest.raises(ValueError, match="holds a openai batch of 2 requests"):
        batched.batch(["a", "b", "c"], config)


def test_requests_are_split_by_count_and_by_size(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    inputs: list[Any] = [f"question {i}" for i in range(7)]
    answers = make_batched(llm, max_requests_per_batch=3).batch(inputs)
    assert [a.content for a in answers] == [f"echo: question {i}" for i in range(7)]
    sizes = [b["request_counts"]["total"] for b in openai_server.batch.batches]
    assert sizes == [3, 3, 1]

    openai_server.batch.reset()
    line_bytes = 200  # each request's JSONL line is a bit under 200 bytes
    answers = make_batched(llm, max_bytes_per_batch=2 * line_bytes).batch(inputs)
    assert [a.content for a in answers] == [f"echo: question {i}" for i in range(7)]
    assert all(b["request_counts"]["total"] <= 2 for b in openai_server.batch.batches)
    assert len(openai_server.batch.batches) >= 4


def test_a_request_larger_than_a_batch_is_refused_before_anything_is_sent(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    with pytest.raises(ValueError, match=r"item 0 is .* bytes"):
        make_batched(llm, max_bytes_per_batch=50).batch(["hello"])
    assert openai_server.batch.batches == []


def test_bound_tools_are_sent_and_tool_calls_come_back(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.enqueue(tool_calls=[{"name": "Person", "arguments": {"name": "Ada", "age": 36}}])
    openai_server.enqueue("no tool")
    answers = make_batched(llm.bind_tools([Person], tool_choice="auto")).batch(["ada", "none"])
    assert answers[0].tool_calls[0]["name"] == "Person"
    assert answers[0].tool_calls[0]["args"] == {"name": "Ada", "age": 36}
    assert answers[1].content == "no tool"
    body = openai_server.batch.requests[0]
    assert body["tools"][0]["function"]["name"] == "Person"
    assert body["tool_choice"] == "auto"


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_is_parsed_as_the_model_would(
    openai_server: FakeOpenAIServer,
    llm: ChatOpenAI,
    make_batched: MakeBatched,
    method: Literal["json_schema", "function_calling"],
) -> None:
    if method == "json_schema":
        openai_server.enqueue('{"name": "Ada", "age": 36}')
    else:
        openai_server.enqueue(
            tool_calls=[{"name": "Person", "arguments": {"name": "Ada", "age": 36}}]
        )
    answers = make_batched(llm.with_structured_output(Person, method=method)).batch(["who?"])
    assert answers == [Person(name="Ada", age=36)]
    body = openai_server.batch.requests[0]
    if method == "json_schema":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Person"
    else:
        assert body["tool_choice"]["function"]["name"] == "Person"


def test_structured_output_with_raw_keeps_the_message(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.enqueue(tool_calls=[{"name": "Person", "arguments": {"name": "Ada", "age": 36}}])
    structured = llm.with_structured_output(Person, method="function_calling", include_raw=True)
    (answer,) = make_batched(structured).batch(["who?"])
    assert answer["parsed"] == Person(name="Ada", age=36)
    assert isinstance(answer["raw"], AIMessage) and answer["raw"].usage_metadata


def test_an_unparsable_answer_is_that_items_error(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.enqueue(tool_calls=[{"name": "Person", "arguments": {"name": "Ada"}}])
    openai_server.enqueue(tool_calls=[{"name": "Person", "arguments": {"name": "Bo", "age": 5}}])
    structured = make_batched(llm.with_structured_output(Person, method="function_calling"))
    answers = structured.batch(["a", "b"], return_exceptions=True)
    assert isinstance(answers[0], Exception)
    assert answers[1] == Person(name="Bo", age=5)
    openai_server.enqueue(tool_calls=[{"name": "Person", "arguments": {"name": "Ada"}}])
    with pytest.raises(BatchItemError, match="Item 0"):
        structured.batch(["a"])


async def test_abatch_answers_in_order_with_the_async_client(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.fail_items({"item-2": (400, "nope")})
    batched = make_batched(llm, max_requests_per_batch=2)
    answers = await batched.abatch(["a", "b", "c", "d"], return_exceptions=True)
    assert [getattr(a, "content", None) for a in answers] == ["echo: a", "echo: b", None, "echo: d"]
    assert isinstance(answers[2], BatchItemError)
    assert len(openai_server.batch.batches) == 2
    assert (await batched.ainvoke("e")).content == "echo: e"


async def test_acancel_and_async_restart(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched, tmp_path: Path
) -> None:
    config: Any = {"configurable": {"batch_key": "k"}}
    openai_server.batch.hold()
    store = SQLiteStore(tmp_path / "b.db")
    with pytest.raises(TimeoutError):
        await make_batched(llm, store=store, timeout_seconds=0.02).abatch(["a"], config)
    restarted = make_batched(llm, store=store)
    assert await restarted.acancel("k") == 1
    (answer,) = await restarted.abatch(["a"], config, return_exceptions=True)
    assert isinstance(answer, BatchItemError) and answer.reason == "cancelled"
    assert len(openai_server.batch.batches) == 1


def test_invoke_is_a_batch_of_one(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    assert make_batched(llm).invoke("solo").content == "echo: solo"
    assert openai_server.batch.batches[0]["request_counts"]["total"] == 1
