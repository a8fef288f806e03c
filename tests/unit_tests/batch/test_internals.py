"""Pins the upstream internals the batch runnable uses (docs/internals.md) and their fallbacks."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_tokenopt.batch import openai as openai_batch
from langchain_tokenopt.batch.openai import OpenAIBatchEndpoint

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"x": 1}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
}


class Answer(BaseModel):
    text: str


def _llm(**kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", **kwargs)


def test_chatopenai_builds_the_chat_completions_body_from_bound_kwargs() -> None:
    body = _llm(temperature=0.5, max_tokens=9)._get_request_payload(
        [HumanMessage("hi")], stop=None, tools=[{"type": "function", "function": {"name": "f"}}]
    )
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert (body["model"], body["temperature"], body["max_completion_tokens"]) == (
        "gpt-4o-mini",
        0.5,
        9,
    )
    assert body["tools"][0]["function"]["name"] == "f"


def test_chatopenai_reads_a_completion_dict_with_usage_and_tool_calls() -> None:
    result = _llm()._create_chat_result(COMPLETION)
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    assert message.tool_calls[0]["args"] == {"x": 1}
    assert message.usage_metadata is not None and message.usage_metadata["total_tokens"] == 10


def test_the_fallbacks_give_the_same_essentials() -> None:
    llm = _llm(temperature=0.5, max_tokens=9)
    body = openai_batch._fallback_payload(llm, [HumanMessage("hi")], {})
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert (body["temperature"], body["max_completion_tokens"]) == (0.5, 9)
    message = openai_batch._fallback_chat_result(COMPLETION).generations[0].message
    assert isinstance(message, AIMessage)
    assert message.tool_calls[0]["args"] == {"x": 1}
    assert message.usage_metadata is not None and message.usage_metadata["total_tokens"] == 10


def test_a_pydantic_response_format_becomes_the_sdks_strict_json_schema() -> None:
    endpoint = OpenAIBatchEndpoint(_llm(), {"response_format": Answer})
    fmt = endpoint.request_body([HumanMessage("hi")])["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False


def test_chatanthropic_builds_and_reads_messages_api_bodies() -> None:
    langchain_anthropic = pytest.importorskip("langchain_anthropic")
    from anthropic.types import Message

    llm = langchain_anthropic.ChatAnthropic(model="claude-haiku-4-5", api_key="k", max_tokens=5)
    body = llm._get_request_payload([HumanMessage("hi")], stop=None)
    assert body["messages"] == [{"role": "user", "content": "hi"}] and body["max_tokens"] == 5
    message = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "yo"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 4, "output_tokens": 1},
        }
    )
    ai = llm._format_output(message).generations[0].message
    assert ai.content == "yo" and ai.usage_metadata["total_tokens"] == 5


ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [
        {"type": "text", "text": "calling f"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 4,
        "output_tokens": 3,
        "cache_read_input_tokens": 2,
        "cache_creation_input_tokens": 1,
    },
}


def test_the_anthropic_reader_falls_back_when_format_output_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    langchain_anthropic = pytest.importorskip("langchain_anthropic")
    from langchain_tokenopt.batch.anthropic import AnthropicBatchEndpoint

    llm = langchain_anthropic.ChatAnthropic(model="claude-haiku-4-5", api_key="k", max_tokens=5)
    endpoint = AnthropicBatchEndpoint(llm, {})
    own = endpoint.chat_result(ANTHROPIC_MESSAGE).generations[0].message
    monkeypatch.delattr(langchain_anthropic.ChatAnthropic, "_format_output")
    fallback = endpoint.chat_result(ANTHROPIC_MESSAGE).generations[0].message
    assert isinstance(own, AIMessage) and isinstance(fallback, AIMessage)
    assert fallback.text == "calling f"
    assert [(c["name"], c["args"], c["id"]) for c in fallback.tool_calls] == [
        (c["name"], c["args"], c["id"]) for c in own.tool_calls
    ]
    assert own.usage_metadata is not None and fallback.usage_metadata is not None
    for field in ("input_tokens", "output_tokens", "total_tokens"):
        assert fallback.usage_metadata[field] == own.usage_metadata[field]


def test_an_unreadable_anthropic_answer_is_that_items_failure() -> None:
    langchain_anthropic = pytest.importorskip("langchain_anthropic")
    from langchain_tokenopt.batch.anthropic import AnthropicBatchEndpoint
    from langchain_tokenopt.batch.endpoint import ItemFailure

    llm = langchain_anthropic.ChatAnthropic(model="claude-haiku-4-5", api_key="k", max_tokens=5)
    endpoint = AnthropicBatchEndpoint(llm, {})
    broken = {"custom_id": "item-0", "result": {"type": "succeeded", "message": {"id": 1}}}
    custom_id, outcome = endpoint._outcome(broken)
    assert custom_id == "item-0"
    assert isinstance(outcome, ItemFailure) and outcome.reason == "failed"
    assert "unreadable answer" in outcome.message
