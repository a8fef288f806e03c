"""The fake OpenAI server speaks the real protocol: ChatOpenAI runs against it end to end."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import openai
import pytest
import tiktoken
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.support.openai_server import FakeOpenAIServer


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city."""
    return f"sunny in {city}"


class Capital(BaseModel):
    """The capital of a country."""

    country: str
    city: str


def _llm(server: FakeOpenAIServer, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("max_retries", 0)
    return ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o", **kwargs)


def _o200k_tokens(text: str) -> int:
    return len(tiktoken.get_encoding("o200k_base").encode(text))


def _aggregate(chunks: Sequence[BaseMessage]) -> AIMessageChunk:
    """Add up streamed chunks the way LangChain does."""
    assert chunks and all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    typed = [chunk for chunk in chunks if isinstance(chunk, AIMessageChunk)]
    total = typed[0]
    for chunk in typed[1:]:
        total = total + chunk
    return total


def test_invoke_returns_enqueued_content_and_usage_details(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.enqueue(
        "Paris.",
        usage={"prompt_tokens": 2000, "cached_tokens": 1536, "reasoning_tokens": 64},
    )
    reply = _llm(openai_server).invoke("Capital of France?")

    assert reply.content == "Paris."
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["model_name"] == "gpt-4o"
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == 2000
    assert usage["input_token_details"]["cache_read"] == 1536
    assert usage["output_token_details"]["reasoning"] == 64
    # completion tokens include the reasoning tokens, as OpenAI reports them
    assert usage["output_tokens"] == 64 + _o200k_tokens("Paris.")
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_default_reply_echoes_the_last_user_message_with_counted_usage(
    openai_server: FakeOpenAIServer,
) -> None:
    llm = _llm(openai_server)
    messages = [SystemMessage("Be brief."), HumanMessage("How many tokens is this question?")]
    reply = llm.invoke(messages)

    assert reply.content == "echo: How many tokens is this question?"
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == llm.get_num_tokens_from_messages(messages)
    assert usage["output_tokens"] == _o200k_tokens(str(reply.content))
    assert usage["input_token_details"]["cache_read"] == 0
    assert usage["output_token_details"]["reasoning"] == 0


def test_prompt_tokens_use_the_encoding_of_the_requested_model(
    openai_server: FakeOpenAIServer,
) -> None:
    text = "Tokenizers disagree about numbers like 1234567 and words like antidisestablishment."
    for model in ("gpt-4", "gpt-4o"):
        llm = ChatOpenAI(base_url=openai_server.base_url, api_key="test", model=model)
        reply = llm.invoke([HumanMessage(text)])
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["input_tokens"] == llm.get_num_tokens_from_messages(
            [HumanMessage(text)]
        )
        assert reply.response_metadata["model_name"] == model


def test_stream_usage_true_puts_usage_on_the_aggregated_chunk(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.enqueue("one two three four", usage={"cached_tokens": 3})
    chunks = list(_llm(openai_server, stream_usage=True).stream("count"))

    content_chunks = [chunk for chunk in chunks if chunk.content]
    assert len(content_chunks) == 4
    total = _aggregate(chunks)
    assert total.content == "one two three four"
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.usage_metadata is not None
    assert total.usage_metadata["input_token_details"]["cache_read"] == 3
    assert total.usage_metadata["output_tokens"] == 4
    assert openai_server.last_request["stream_options"] == {"include_usage": True}


def test_stream_without_stream_usage_has_no_usage(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue("no usage here")
    total = _aggregate(list(_llm(openai_server, stream_usage=False).stream("hi")))

    assert total.content == "no usage here"
    assert total.usage_metadata is None
    assert "stream_options" not in openai_server.last_request


def test_tool_calls_are_parsed_into_the_ai_message(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"},
            {"name": "get_weather", "arguments": {"city": "Rome"}},
        ]
    )
    reply = _llm(openai_server).bind_tools([get_weather]).invoke("Weather in Paris and Rome?")

    assert reply.content == ""
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert [call["args"] for call in reply.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert reply.tool_calls[0]["id"] == "call_1"
    assert str(reply.tool_calls[1]["id"]).startswith("call_")


def test_streamed_tool_call_fragments_join_into_tool_calls(
    openai_server: FakeOpenAIServer,
) -> None:
    arguments = {"city": "San Francisco, California, United States"}
    openai_server.enqueue("Checking.", tool_calls=[{"name": "get_weather", "arguments": arguments}])
    chunks = list(_llm(openai_server).bind_tools([get_weather]).stream("Weather?"))

    fragments = [
        c
        for chunk in chunks
        if isinstance(chunk, AIMessageChunk)
        for c in chunk.tool_call_chunks
        if c["args"]
    ]
    assert len(fragments) > 1  # the arguments really arrived in pieces
    total = _aggregate(chunks)
    assert total.content == "Checking."
    assert total.tool_calls == [
        {
            "name": "get_weather",
            "args": arguments,
            "id": total.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]
    assert total.response_metadata["finish_reason"] == "tool_calls"


def test_malformed_tool_arguments_become_invalid_tool_calls(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.enqueue(tool_calls=[{"name": "get_weather", "arguments": '{"city": '}])
    reply = _llm(openai_server).bind_tools([get_weather]).invoke("Weather?")

    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["args"] == '{"city": '


def test_requests_record_the_tools_and_temperature_sent(openai_server: FakeOpenAIServer) -> None:
    _llm(openai_server, temperature=0.25).bind_tools([get_weather]).invoke("Weather?")

    (request,) = openai_server.requests
    assert request["temperature"] == 0.25
    assert request["model"] == "gpt-4o"
    assert [t["function"]["name"] for t in request["tools"]] == ["get_weather"]
    assert request["messages"] == [{"role": "user", "content": "Weather?"}]


def test_structured_output_with_function_calling(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(
        tool_calls=[{"name": "Capital", "arguments": {"country": "France", "city": "Paris"}}]
    )
    structured = _llm(openai_server).with_structured_output(Capital, method="function_calling")

    assert structured.invoke("Capital of France?") == Capital(country="France", city="Paris")
    assert openai_server.last_request["tool_choice"]["function"]["name"] == "Capital"


def test_structured_output_with_json_schema(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(json.dumps({"country": "Italy", "city": "Rome"}))
    structured = _llm(openai_server).with_structured_output(Capital, method="json_schema")

    assert structured.invoke("Capital of Italy?") == Capital(country="Italy", city="Rome")
    assert openai_server.last_request["response_format"]["type"] == "json_schema"


def test_batch_answers_each_input(openai_server: FakeOpenAIServer) -> None:
    replies = _llm(openai_server).batch(["a", "b", "c"])

    assert sorted(str(reply.content) for reply in replies) == ["echo: a", "echo: b", "echo: c"]
    assert openai_server.request_count == 3


async def test_ainvoke_and_astream(openai_server: FakeOpenAIServer) -> None:
    llm = _llm(openai_server, stream_usage=True)
    openai_server.enqueue("async answer", usage={"reasoning_tokens": 5})
    reply = await llm.ainvoke("hi")
    assert reply.content == "async answer"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_token_details"]["reasoning"] == 5

    openai_server.enqueue("streamed async answer")
    total = _aggregate([chunk async for chunk in llm.astream("hi")])
    assert total.content == "streamed async answer"
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == _o200k_tokens("streamed async answer")


async def test_async_tool_calls_stream(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    llm = _llm(openai_server).bind_tools([get_weather])
    total = _aggregate([chunk async for chunk in llm.astream("Weather?")])

    assert [call["args"] for call in total.tool_calls] == [{"city": "Oslo"}]


def test_fail_next_500_raises_internal_server_error(openai_server: FakeOpenAIServer) -> None:
    openai_server.fail_next(500)
    with pytest.raises(openai.InternalServerError) as raised:
        _llm(openai_server).invoke("hi")
    assert raised.value.status_code == 500
    # the failure is used up: the next call succeeds
    assert _llm(openai_server).invoke("again").content == "echo: again"


def test_fail_next_429_raises_rate_limit_error_with_openai_body(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.fail_next(429)
    with pytest.raises(openai.RateLimitError) as raised:
        _llm(openai_server).invoke("hi")
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["retry-after"] == "0"


def test_sdk_retries_through_rate_limits(openai_server: FakeOpenAIServer) -> None:
    openai_server.fail_next(429, times=2)
    openai_server.enqueue("finally")

    assert _llm(openai_server, max_retries=2).invoke("hi").content == "finally"
    assert openai_server.request_count == 3


def test_max_tokens_truncates_the_reply_with_finish_reason_length(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.enqueue("one two three four five six seven eight")
    reply = _llm(openai_server, max_tokens=3).invoke("count")

    assert reply.content == "one two three"
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 3


def test_unknown_paths_get_an_openai_shaped_404(openai_server: FakeOpenAIServer) -> None:
    request = urllib.request.Request(
        openai_server.base_url + "/responses", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 404
    assert json.loads(raised.value.read())["error"]["type"] == "invalid_request_error"
    assert openai_server.request_count == 0


def test_paused_server_holds_replies_until_resumed(openai_server: FakeOpenAIServer) -> None:
    llm = _llm(openai_server)
    openai_server.pause()
    replies: list[str] = []
    callers = [
        threading.Thread(target=lambda q=q: replies.append(str(llm.invoke(q).content)))
        for q in ("first", "second")
    ]
    for caller in callers:
        caller.start()

    assert openai_server.wait_for_requests(2)
    assert replies == []  # both calls are in flight at the same time
    openai_server.resume()
    for caller in callers:
        caller.join(timeout=10)
    assert sorted(replies) == ["echo: first", "echo: second"]


def test_close_cuts_a_delayed_reply_short() -> None:
    replies: list[str] = []
    with FakeOpenAIServer() as server:
        server.enqueue("slow answer", delay_seconds=600)
        llm = _llm(server)
        caller = threading.Thread(target=lambda: replies.append(str(llm.invoke("hi").content)))
        caller.start()
        assert server.wait_for_requests(1)
        assert replies == []  # held by the delay
    caller.join(timeout=10)
    assert replies == ["slow answer"]


def test_simulated_prompt_cache_reports_the_shared_prefix(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.simulate_prompt_cache = True
    llm = _llm(openai_server)
    system = SystemMessage("You are a careful assistant. " * 300)
    first = llm.invoke([system, HumanMessage("question one")])
    second = llm.invoke([system, HumanMessage("question two")])

    assert first.usage_metadata is not None
    assert second.usage_metadata is not None
    assert first.usage_metadata["input_token_details"]["cache_read"] == 0
    cached = second.usage_metadata["input_token_details"]["cache_read"]
    assert 1024 <= cached <= second.usage_metadata["input_tokens"]
    assert cached % 128 == 0


def test_reset_forgets_requests_queue_and_failures(openai_server: FakeOpenAIServer) -> None:
    _llm(openai_server).invoke("before")
    openai_server.enqueue("stale")
    openai_server.fail_next(500)
    openai_server.reset()

    assert openai_server.requests == []
    assert openai_server.pending_replies == 0
    assert _llm(openai_server).invoke("fresh").content == "echo: fresh"


def test_enqueue_rejects_unknown_usage_keys(openai_server: FakeOpenAIServer) -> None:
    with pytest.raises(ValueError, match="input_tokens"):
        openai_server.enqueue("x", usage={"input_tokens": 3})


def test_server_works_as_a_context_manager_outside_pytest_fixtures() -> None:
    with FakeOpenAIServer() as server:
        server.enqueue("hello")
        assert _llm(server).invoke("hi").content == "hello"
        base_url = server.base_url
    with pytest.raises(openai.APIConnectionError):
        ChatOpenAI(base_url=base_url, api_key="test", model="gpt-4o", max_retries=0).invoke("hi")
