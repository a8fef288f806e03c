"""Specification of `TokenCounter`: exact OpenAI counts, flagged approximations, memo."""

from __future__ import annotations

import base64
import io
import logging
import os
import random
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    messages_from_dict,
    messages_to_dict,
    trim_messages,
)
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from langchain_tokenopt.core.images import image_size_from_data_url
from langchain_tokenopt.core.tokens import (
    TokenCount,
    TokenCounter,
    normalize_model_name,
)

EXACT_MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4",
    "gpt-3.5-turbo",
    "o1",
    "o3-mini",
    "o4-mini",
]


@cache
def chat_openai(model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, api_key="not-used")


def langchain_count(model: str, messages: Sequence[BaseMessage], **kwargs: Any) -> int:
    return chat_openai(model).get_num_tokens_from_messages(messages, **kwargs)


def png_bytes(width: int, height: int) -> bytes:
    """A real (black) PNG, written without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x00" * (width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def data_url(image: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(image).decode()}"


def image_message(url: str, detail: str | None = None) -> HumanMessage:
    image_url: dict[str, str] = {"url": url}
    if detail:
        image_url["detail"] = detail
    return HumanMessage(
        content=[
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": image_url},
        ]
    )


# ---------------------------------------------------------------------- fixtures


CASES: dict[str, list[BaseMessage]] = {
    "plain": [
        SystemMessage("You are a helpful assistant that answers briefly."),
        HumanMessage("What's the capital of France? And of Italy?"),
        AIMessage("Paris and Rome."),
    ],
    "names": [
        HumanMessage("Hi, I am Alice.", name="alice"),
        AIMessage("Hello Alice!", name="example_assistant"),
        HumanMessage("Name in additional_kwargs", additional_kwargs={"name": "bob"}),
    ],
    "tool_calls_and_tool_message": [
        HumanMessage("What's the weather in Zürich and in Paris?"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Zürich", "unit": "C"}, "id": "call_1"},
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_2"},
            ],
        ),
        ToolMessage("sunny, 21 degrees", tool_call_id="call_1", name="get_weather"),
        ToolMessage("rain, 14 degrees", tool_call_id="call_2"),
        AIMessage("Zürich is sunny, Paris is rainy."),
    ],
    "tool_call_with_text": [
        AIMessage(
            "Let me look that up.",
            tool_calls=[{"name": "search", "args": {"q": "tokens"}, "id": "c"}],
        ),
    ],
    "invalid_tool_call": [
        AIMessage(
            "",
            invalid_tool_calls=[
                {
                    "name": "f",
                    "args": "{not json",
                    "id": "c",
                    "error": None,
                    "type": "invalid_tool_call",
                }
            ],
        )
    ],
    "legacy_function_call": [
        AIMessage("", additional_kwargs={"function_call": {"name": "f", "arguments": '{"a": 1}'}}),
        FunctionMessage(name="f", content="42"),
    ],
    "multi_part_text": [
        HumanMessage(
            content=[
                {"type": "text", "text": "Compare these two sentences:"},
                "The quick brown fox.",
                {"type": "text", "text": "A lazy dog sleeps."},
            ]
        ),
        AIMessage(content=[{"type": "text", "text": "They differ."}]),
    ],
    "system_and_developer": [
        SystemMessage("Rules for the system."),
        SystemMessage(
            "Rules for the developer.", additional_kwargs={"__openai_role__": "developer"}
        ),
        HumanMessage("ok"),
    ],
    "custom_role": [ChatMessage(role="critic", content="Too long.")],
    "empty_content": [HumanMessage(""), AIMessage("")],
    "no_messages": [],
    "unicode": [HumanMessage("日本語のテキストと emoji 🎉🎉 und Umlaute äöü")],
}


# ----------------------------------------------------- equality with ChatOpenAI


@pytest.mark.parametrize("model", EXACT_MODELS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_count_messages_equals_chat_openai(model: str, case: str) -> None:
    counter = TokenCounter(model)
    result = counter.count_messages(CASES[case])
    assert result == langchain_count(model, CASES[case])
    assert result.approximate is False
    assert counter.approximate is False


@pytest.mark.parametrize("model", EXACT_MODELS)
def test_count_message_sums_to_count_messages_minus_priming(model: str) -> None:
    counter = TokenCounter(model)
    messages = CASES["tool_calls_and_tool_message"]
    assert sum(counter.count_message(m) for m in messages) + 3 == counter.count_messages(messages)


def test_gpt_35_turbo_0301_framing_equals_chat_openai() -> None:
    messages = CASES["names"] + CASES["plain"]
    assert TokenCounter("gpt-3.5-turbo-0301").count_messages(messages) == langchain_count(
        "gpt-3.5-turbo-0301", messages
    )


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1", "gpt-4", "o1"])
@pytest.mark.parametrize("detail", [None, "auto", "high", "low"])
@pytest.mark.parametrize("size", [(300, 200), (1500, 900), (4096, 2048)])
def test_image_counts_equal_chat_openai_where_it_reads_the_size(
    model: str, detail: str | None, size: tuple[int, int]
) -> None:
    messages = [image_message(data_url(png_bytes(*size)), detail)]
    result = TokenCounter(model).count_messages(messages)
    assert result == langchain_count(model, messages)
    assert result.approximate is False


def test_standard_and_anthropic_image_blocks_count_like_image_url() -> None:
    encoded = base64.b64encode(png_bytes(800, 600)).decode()
    blocks = [
        HumanMessage(content=[{"type": "image", "base64": encoded, "mime_type": "image/png"}]),
        HumanMessage(
            content=[
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": encoded},
                }
            ]
        ),
    ]
    as_image_url = [image_message(data_url(png_bytes(800, 600))).model_copy() for _ in blocks]
    counter = TokenCounter("gpt-4o")
    assert counter.count_messages(blocks) == langchain_count("gpt-4o", blocks)
    per_image = counter.count_message(blocks[0])
    assert per_image == 3 + 1 + 85 + 170 * 4  # framing, "user", 1024x768 -> 4 tiles
    assert counter.count_message(blocks[1]) == per_image
    assert counter.count_message(as_image_url[0]) > per_image  # it also has a text part


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4"])
def test_openai_dicts_tuples_and_strings_count_like_converted_messages(model: str) -> None:
    raw: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Really brief."},
        ("human", "What is 2 + 2?"),
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "4"},
        "And 3 + 3?",
    ]
    from langchain_core.messages import convert_to_messages

    assert TokenCounter(model).count_messages(raw) == langchain_count(
        model, convert_to_messages(raw)
    )


# ------------------------------------------------------------------------- tools


class GetWeather(BaseModel):
    """Get the current weather in a given location."""

    location: str = Field(description="The city and state, e.g. San Francisco, CA")
    unit: str = Field(default="celsius", description="The unit of temperature")


@tool
def get_weather(location: str, unit: str = "celsius") -> str:
    """Get the current weather in a given location."""
    return f"20 {unit} in {location}"


def search_web(query: str, max_results: int = 5) -> list[str]:
    """Search the web and return result titles.

    Args:
        query: What to search for.
        max_results: How many results to return.
    """
    return [query] * max_results


COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.mark.parametrize(
    ("model", "api_prompt_tokens"),
    [("gpt-4o", 101), ("gpt-4o-mini", 101), ("gpt-4", 105), ("gpt-3.5-turbo", 105)],
)
def test_tools_match_the_prompt_tokens_openai_reported_in_its_cookbook(
    model: str, api_prompt_tokens: int
) -> None:
    result = TokenCounter(model).count_messages(COOKBOOK_MESSAGES, tools=COOKBOOK_TOOLS)
    assert result == api_prompt_tokens
    assert result.approximate is False


TOOL_FORMS: dict[str, Any] = {
    "BaseTool (@tool)": get_weather,
    "pydantic class": GetWeather,
    "python function": search_web,
    "openai dict": convert_to_openai_tool(search_web),
}


@pytest.mark.parametrize("model", EXACT_MODELS)
@pytest.mark.parametrize("form", sorted(TOOL_FORMS))
def test_count_messages_with_tools_is_chat_openai_plus_tool_schemas(model: str, form: str) -> None:
    tools = [TOOL_FORMS[form]]
    messages = CASES["tool_calls_and_tool_message"]
    counter = TokenCounter(model)
    with pytest.warns(UserWarning, match="tool schemas"):
        theirs = langchain_count(model, messages, tools=tools)  # ChatOpenAI ignores tools
    assert theirs == langchain_count(model, messages)
    tool_tokens = counter.count_tools(tools)
    assert tool_tokens > 12
    assert counter.count_messages(messages, tools=tools) == theirs + tool_tokens


def test_every_tool_form_counts_like_its_openai_schema() -> None:
    counter = TokenCounter("gpt-4o")
    assert isinstance(get_weather, BaseTool)
    for form in TOOL_FORMS.values():
        assert counter.count_tools([form]) == counter.count_tools([convert_to_openai_tool(form)])


def test_tool_schema_cost_follows_the_cookbook_formula() -> None:
    counter = TokenCounter("gpt-4o")
    no_params = {"type": "function", "function": {"name": "ping", "description": "Ping."}}
    # 12 per request, 7 per function, "ping:Ping" (one trailing period dropped)
    assert counter.count_tools([no_params]) == 12 + 7 + counter.count_text("ping:Ping")
    assert counter.count_tools([no_params, no_params]) == 12 + 2 * (
        7 + counter.count_text("ping:Ping")
    )
    assert counter.count_tools([]) == 0
    assert counter.count_messages([HumanMessage("x")], tools=[]) == counter.count_messages(
        [HumanMessage("x")]
    )


def test_builtin_tools_count_zero_and_make_the_count_approximate() -> None:
    result = TokenCounter("gpt-4o").count_tools([{"type": "web_search_preview"}])
    assert result == 12
    assert result.approximate is True


# ------------------------------------------------------------------------ images


@pytest.mark.parametrize(
    ("model", "size", "detail", "expected"),
    [
        ("gpt-4o", (1024, 1024), "high", 765),  # OpenAI's published examples
        ("gpt-4o", (2048, 4096), "high", 1105),
        ("gpt-4o", (4096, 8192), "low", 85),
        ("gpt-4o-mini", (1024, 1024), "high", 2833 + 4 * 5667),
        ("gpt-4o-mini", (4096, 8192), "low", 2833),
        ("o3", (1024, 1024), "high", 75 + 4 * 150),
        ("gpt-4.1-mini", (1024, 1024), "low", 1659),  # 1024 patches x 1.62, detail ignored
        ("gpt-4.1-mini", (1800, 2400), "high", 2353),  # scaled to 1452 patches x 1.62
        ("o4-mini", (1024, 1024), None, 1762),
    ],
)
def test_image_tokens_follow_openais_published_rules(
    model: str, size: tuple[int, int], detail: str | None, expected: int
) -> None:
    counter = TokenCounter(model)
    message = HumanMessage(
        content=[
            {
                "type": "image_url",
                "image_url": {"url": data_url(png_bytes(*size)), "detail": detail},
            }
        ]
    )
    result = counter.count_message(message)
    assert result == 3 + counter.count_text("user") + expected
    assert result.approximate is False


def test_gpt_4o_mini_images_cost_more_than_chat_openai_counts() -> None:
    # ChatOpenAI applies gpt-4o's 85/170 to every model; OpenAI bills gpt-4o-mini
    # images at 2833/5667 and reports them so in prompt_tokens.
    messages = [image_message(data_url(png_bytes(512, 512)), "low")]
    ours = TokenCounter("gpt-4o-mini").count_messages(messages)
    theirs = langchain_count("gpt-4o-mini", messages)
    assert ours - theirs == 2833 - 85


def test_image_urls_are_never_downloaded_and_counted_as_a_flagged_estimate() -> None:
    messages = [image_message("https://images.example.invalid/cat.png")]
    counter = TokenCounter("gpt-4o")
    result = counter.count_messages(messages)
    text_only = counter.count_messages(
        [HumanMessage([{"type": "text", "text": "What is in this picture?"}])]
    )
    assert result - text_only == 765  # 1024x1024 assumed
    assert result.approximate is True
    assert counter.approximate is False  # the model is still exact
    # ChatOpenAI, told not to fetch, leaves the image out.
    assert langchain_count("gpt-4o", messages, allow_fetching_images=False) == text_only
    low = counter.count_messages([image_message("https://images.example.invalid/cat.png", "low")])
    assert low - text_only == 85
    assert low.approximate is False


def test_unreadable_data_url_is_estimated_where_chat_openai_raises() -> None:
    messages = [
        image_message("data:image/png;base64," + base64.b64encode(b"not an image").decode())
    ]
    result = TokenCounter("gpt-4o").count_messages(messages)
    assert result.approximate is True
    with pytest.raises(Exception, match="cannot identify image"):
        langchain_count("gpt-4o", messages)


def pillow_image(fmt: str, size: tuple[int, int], **save: Any) -> bytes:
    from PIL import Image as image_module  # Pillow comes with matplotlib (test group)

    buffer = io.BytesIO()
    image_module.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt, **save)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime", "save"),
    [
        ("JPEG", "image/jpeg", {}),
        ("JPEG", "image/jpeg", {"progressive": True}),
        ("GIF", "image/gif", {}),
        ("WEBP", "image/webp", {"lossless": False}),
        ("WEBP", "image/webp", {"lossless": True}),
        ("PNG", "image/png", {}),
    ],
)
def test_image_size_is_read_from_the_header_bytes(
    fmt: str, mime: str, save: dict[str, Any]
) -> None:
    image = pillow_image(fmt, (1234, 567), **save)
    assert image_size_from_data_url(data_url(image, mime)) == (1234, 567)


def test_image_size_from_jpeg_with_a_large_exif_block() -> None:
    image = pillow_image("JPEG", (640, 480), exif=b"Exif\x00\x00" + b"\x00" * 60000)
    assert image_size_from_data_url(data_url(image, "image/jpeg")) == (640, 480)


def test_image_size_is_none_for_urls_and_garbage() -> None:
    assert image_size_from_data_url("https://example.com/a.png") is None
    assert image_size_from_data_url("data:image/png;base64,@@@@") is None
    assert image_size_from_data_url("data:text/plain,hello") is None
    assert image_size_from_data_url(data_url(b"\xff\xd8\xff\xda")) is None


# ------------------------------------------------ models, encodings, approximations


@pytest.mark.parametrize(
    ("model", "same_as"),
    [
        ("openai:gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("ft:gpt-4o-mini:my-org::abc123", "gpt-4o-mini"),
        ("azure/gpt-4o", "gpt-4o"),
        ("OpenAI:GPT-4.1", "gpt-4.1"),
        ("openrouter/openai/gpt-4", "gpt-4"),
        ("azure_openai:gpt-35-turbo", "gpt-3.5-turbo"),
    ],
)
def test_model_names_are_normalized_to_their_openai_base_model(model: str, same_as: str) -> None:
    counter, reference = TokenCounter(model), TokenCounter(same_as)
    assert counter.approximate is False
    assert counter.encoding_name == reference.encoding_name
    messages = [*CASES["plain"], image_message(data_url(png_bytes(600, 600)), "low")]
    assert counter.count_messages(messages) == reference.count_messages(messages)
    assert normalize_model_name(model).startswith(same_as)  # dated names match by prefix


@pytest.mark.parametrize(
    "model",
    [
        "claude-3-5-sonnet-latest",
        "gemini-1.5-pro",
        "llama-3.1-70b",
        "mistral-large",
        "my-model",
        "gpt-oss-120b",  # tiktoken: o200k_harmony, same ordinary tokens as o200k_base
        "davinci",  # tiktoken: r50k_base, not loaded (no download) for an approximation
    ],
)
def test_other_models_get_a_flagged_o200k_approximation(
    model: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="langchain_tokenopt.core.tokens"):
        counter = TokenCounter(model)
        TokenCounter(model)
    assert counter.approximate is True
    assert counter.encoding_name == "o200k_base"
    messages = CASES["plain"]
    result = counter.count_messages(messages)
    assert result.approximate is True
    assert result == TokenCounter("gpt-4o").count_messages(messages)  # same framing
    assert counter.count_text("hello").approximate is True
    assert counter.count_tools([get_weather]).approximate is True
    logged = [r for r in caplog.records if model in r.getMessage()]
    assert len(logged) <= 1  # once per process (0 if an earlier test logged it)


def test_unknown_model_logs_once_that_counts_are_approximate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"my-private-model-{random.randrange(10**9)}"
    with caplog.at_level(logging.INFO, logger="langchain_tokenopt.core.tokens"):
        TokenCounter(name)
        TokenCounter(name)
    assert [r.levelno for r in caplog.records if name in r.getMessage()] == [logging.INFO]


def test_chat_openai_cannot_count_unknown_models_but_we_approximate() -> None:
    with pytest.raises(NotImplementedError):
        langchain_count("my-model", CASES["plain"])
    assert TokenCounter("my-model").count_messages(CASES["plain"]) > 0


def test_explicit_encoding_always_wins() -> None:
    assert TokenCounter(encoding="o200k_base").approximate is False
    cl100k = TokenCounter("gpt-4o", encoding="cl100k_base")
    assert cl100k.encoding_name == "cl100k_base"
    assert cl100k.approximate is True  # not gpt-4o's own tokenizer
    assert cl100k.count_text("hello world").approximate is True
    claude = TokenCounter("claude-3-5-sonnet-latest", encoding="cl100k_base")
    assert claude.encoding_name == "cl100k_base"
    assert claude.approximate is True
    assert TokenCounter("gpt-4", encoding="cl100k_base").approximate is False


def test_unknown_encoding_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"Unknown tiktoken encoding 'o9000k'.*o200k_base"):
        TokenCounter("gpt-4o", encoding="o9000k")


# ------------------------------------------------------------- text and bad input


def test_encode_decode_and_count_text_agree() -> None:
    counter = TokenCounter("gpt-4o")
    text = "Tokens cost money. Count them once: ☕ 日本"
    ids = counter.encode(text)
    assert counter.decode(ids) == text
    assert counter.count_text(text) == len(ids) == len(chat_openai("gpt-4o").get_token_ids(text))
    assert counter.count_text("") == 0


def test_special_tokens_count_as_plain_text_where_chat_openai_raises() -> None:
    counter = TokenCounter("gpt-4o")
    text = "the end <|endoftext|>"
    assert counter.count_text(text) == len(counter.encode(text)) > 3
    assert counter.decode(counter.encode(text)) == text
    with pytest.raises(ValueError, match="special token"):
        langchain_count("gpt-4o", [HumanMessage(text)])
    assert counter.count_messages([HumanMessage(text)]) == 3 + 1 + counter.count_text(text) + 3


def test_empty_content_costs_only_the_framing() -> None:
    counter = TokenCounter("gpt-4o")
    assert counter.count_message(HumanMessage("")) == 3 + counter.count_text("user")
    assert counter.count_message(HumanMessage([])) == 3 + counter.count_text("user")
    assert counter.count_messages([]) == 3


def test_wrong_types_raise_type_errors_that_say_what_is_expected() -> None:
    counter = TokenCounter("gpt-4o")
    with pytest.raises(TypeError, match="str"):
        counter.count_text(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="count_text"):
        counter.count_messages("hello")
    with pytest.raises(TypeError, match="count_message for one"):
        counter.count_messages(HumanMessage("hello"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Message 1 is a int"):
        counter.count_messages([HumanMessage("ok"), 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="RemoveMessage"):
        counter.count_messages([RemoveMessage(id="m1")])
    with pytest.raises(TypeError, match="list of tools"):
        counter.count_tools(COOKBOOK_TOOLS[0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Tool 0"):
        counter.count_tools([42])
    with pytest.raises(TypeError, match="model name"):
        TokenCounter(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_size"):
        TokenCounter("gpt-4o", cache_size=-1)


def test_malformed_message_dict_raises_value_error_naming_the_message() -> None:
    with pytest.raises(ValueError, match="Message 0"):
        TokenCounter("gpt-4o").count_messages([{"content": "no role"}])


def test_blocks_chat_completions_does_not_send_or_know() -> None:
    counter = TokenCounter("gpt-4o")
    text_only = counter.count_message(AIMessage([{"type": "text", "text": "answer"}]))
    with_reasoning = AIMessage(
        [
            {"type": "reasoning", "reasoning": "long hidden chain of thought " * 20},
            {"type": "text", "text": "answer"},
        ]
    )
    assert counter.count_message(with_reasoning) == text_only
    assert counter.count_message(with_reasoning).approximate is False

    unknown = HumanMessage([{"type": "hologram", "payload": "abc"}])
    assert counter.count_message(unknown).approximate is True
    assert counter.count_message(unknown) > 3
    with pytest.raises(ValueError, match="Unrecognized content block type"):
        langchain_count("gpt-4o", [unknown])

    pdf = HumanMessage(
        [
            {
                "type": "file",
                "base64": "JVBERi0xLjQK",
                "mime_type": "application/pdf",
                "filename": "a.pdf",
            }
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert counter.count_message(pdf) == 3 + 1
        assert counter.count_message(pdf).approximate is True


def test_prompt_values_are_counted_as_their_messages() -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Be {style}."), ("human", "{q}")])
    value = prompt.invoke({"style": "brief", "q": "Why?"})
    counter = TokenCounter("gpt-4o")
    assert counter.count_messages(value) == counter.count_messages(value.to_messages())  # type: ignore[arg-type]


# ---------------------------------------------------------------- trim_messages


def conversation(turns: int, seed: int = 7) -> list[BaseMessage]:
    rng = random.Random(seed)
    words = ["token", "budget", "history", "cache", "model", "price", "prompt", "reply", "tool"]
    messages: list[BaseMessage] = [SystemMessage("You are a careful assistant.")]
    for turn in range(turns):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 40)))
        messages.append(HumanMessage(f"Q{turn}: {text}"))
        if turn % 4 == 3:
            messages.append(
                AIMessage(
                    "", tool_calls=[{"name": "lookup", "args": {"q": text[:20]}, "id": f"c{turn}"}]
                )
            )
            messages.append(ToolMessage(f"result {text[:30]}", tool_call_id=f"c{turn}"))
        messages.append(AIMessage(f"A{turn}: {text[::-1]}"))
    return messages


@pytest.mark.parametrize("strategy", ["last", "first"])
@pytest.mark.parametrize("allow_partial", [False, True])
@pytest.mark.parametrize("max_tokens", [40, 150, 600])
def test_trim_messages_with_our_counter_keeps_what_chat_openai_keeps(
    strategy: str, allow_partial: bool, max_tokens: int
) -> None:
    messages = conversation(30)
    counter = TokenCounter("gpt-4o")
    kwargs: dict[str, Any] = {
        "max_tokens": max_tokens,
        "strategy": strategy,
        "allow_partial": allow_partial,
        "include_system": strategy == "last",
    }
    ours = trim_messages(messages, token_counter=counter, **kwargs)
    theirs = trim_messages(messages, token_counter=chat_openai("gpt-4o"), **kwargs)
    assert ours == theirs
    assert counter(ours) <= max_tokens


def test_trim_partial_message_edits_in_place_are_counted_afresh() -> None:
    # trim_messages shortens a copied message in place and counts it again each time.
    counter = TokenCounter("gpt-4o")
    message = HumanMessage("one two three four five six seven eight nine ten")
    before = counter([message])
    message.content = "one two"
    assert counter([message]) == langchain_count("gpt-4o", [message]) < before
    history = [SystemMessage("sys"), message]
    counter(history)
    message.content = "one two three four"
    assert counter(history) == langchain_count("gpt-4o", history)


# ---------------------------------------------------------------- memoization


class SpyCounter(TokenCounter):
    """Records which messages are read (not served from a memo)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0

    def _count_item(self, item: Any, index: int) -> tuple[int, bool]:
        self.reads += 1
        return super()._count_item(item, index)


def test_growing_history_reads_only_the_new_message_not_the_whole_history() -> None:
    counter = SpyCounter("gpt-4o")
    history = conversation(2500)  # ~ 10,000 messages
    first = counter.count_messages(history)
    assert counter.reads == len(history)
    history.append(HumanMessage("one more question"))
    counter.reads = 0
    grown = counter.count_messages(history)
    assert counter.reads <= 2  # the new message and the one before it
    assert grown == first + counter.count_message(HumanMessage("one more question"))
    assert grown == langchain_count("gpt-4o", history)


def test_memo_serves_new_lists_of_the_same_messages_and_equal_copies() -> None:
    counter = SpyCounter("gpt-4o")
    history = conversation(50)
    expected = counter.count_messages(history)
    counter.reads = 0
    assert counter.count_messages([*history, HumanMessage("x")]) == langchain_count(
        "gpt-4o", [*history, HumanMessage("x")]
    )
    assert counter.reads <= 2
    reloaded = messages_from_dict(messages_to_dict(history))  # e.g. read back from a store
    assert reloaded[5] is not history[5]
    assert counter.count_messages(reloaded) == expected


def test_memo_stays_exact_under_random_edits_of_the_history() -> None:
    rng = random.Random(11)
    counter = TokenCounter("gpt-4o", cache_size=64)
    pool = conversation(40, seed=3)
    history: list[BaseMessage] = list(pool[:10])
    for step in range(300):
        action = rng.choice(
            ["append", "append", "replace_last", "pop", "new_list", "insert", "edit_last", "prefix"]
        )
        if action == "append":
            history.append(rng.choice(pool).model_copy())
        elif action == "replace_last" and history:
            history[-1] = rng.choice(pool)
        elif action == "pop" and history:
            history.pop()
        elif action == "new_list":
            history = list(history)
        elif action == "insert":
            history.insert(rng.randrange(len(history) + 1), HumanMessage(f"inserted {step}"))
        elif action == "edit_last" and history:
            last = history[-1].model_copy()
            last.content = f"edited {step} " * rng.randint(1, 5)
            history[-1] = last
            counter(history)
            last.content = f"edited again {step}"  # in-place edit of the last message
        elif action == "prefix":
            cut = rng.randrange(len(history) + 1)
            assert counter(history[:cut]) == langchain_count("gpt-4o", history[:cut])
            continue
        assert counter.count_messages(history) == langchain_count("gpt-4o", history), (step, action)


def test_clear_cache_picks_up_in_place_edits_of_older_messages() -> None:
    counter = TokenCounter("gpt-4o")
    history = conversation(5)
    counter.count_messages(history)
    history[1].content = "a completely different and much longer question " * 3
    # Documented assumption: counted messages are immutable values.
    counter.clear_cache()
    assert counter.count_messages(history) == langchain_count("gpt-4o", history)


def test_counting_is_thread_safe() -> None:
    counter = TokenCounter("gpt-4o", cache_size=128)
    histories = [conversation(60, seed=seed) for seed in range(6)]
    expected = [[langchain_count("gpt-4o", h[:n]) for n in range(0, len(h), 7)] for h in histories]
    errors: list[str] = []

    def work(index: int) -> None:
        history = histories[index]
        for round_ in range(3):
            for position, n in enumerate(range(0, len(history), 7)):
                got = counter.count_messages(history[:n])
                if got != expected[index][position]:
                    errors.append(f"history {index} round {round_} n={n}: {got}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(histories))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_token_count_is_an_int_that_carries_the_approximate_flag() -> None:
    count = TokenCount(12, approximate=True)
    assert count == 12 and isinstance(count, int)
    assert count.approximate is True
    assert TokenCount(3).approximate is False


def test_an_encoding_that_cannot_be_loaded_offline_is_a_typed_error_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty cache folder and no network: tiktoken cannot find or fetch the file.
    code = (
        "from langchain_tokenopt.core.tokens import TokenCounter\n"
        "from langchain_tokenopt.errors import EncodingUnavailableError\n"
        "for kwargs in ({'model': 'gpt-4o'}, {'encoding': 'o200k_base'}, {'model': 'claude-3'}):\n"
        "    try:\n"
        "        TokenCounter(**kwargs)\n"
        "    except EncodingUnavailableError as exc:\n"
        "        assert 'TIKTOKEN_CACHE_DIR' in str(exc), exc\n"
        "        assert isinstance(exc, ValueError)\n"
        "    else:\n"
        "        raise SystemExit(f'no error for {kwargs}')\n"
        "print('ok')\n"
    )
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path),
        # an unroutable proxy makes any download attempt fail at once, even online
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_count_text_memo_gives_the_same_counts_and_stays_bounded() -> None:
    from langchain_tokenopt.core import tokens as tokens_module

    counter = TokenCounter("gpt-4o")
    plain = TokenCounter("gpt-4o", cache_size=0)
    rng = random.Random(17)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 60))) for _ in range(400)]
    for text in texts + texts[::-1]:
        expected = len(counter.encode(text))
        assert counter.count_text(text) == expected == plain.count_text(text)
    memo = counter._text_cache
    assert 0 < len(memo) <= tokens_module._TEXT_MEMO_SLOTS
    assert all(
        tokens_module._TEXT_MEMO_MIN_CHARS <= len(text) <= tokens_module._TEXT_MEMO_MAX_CHARS
        for text in memo
    )
    assert not plain._text_cache  # cache_size=0 memoizes nothing
    huge = "word " * tokens_module._TEXT_MEMO_MAX_CHARS
    assert counter.count_text(huge) == len(counter.encode(huge))
    assert huge not in memo
