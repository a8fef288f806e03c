"""`Usage.parse` reads every provider shape the same way, strictly or leniently."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult

from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.usage import Usage, read_result


def _result(message: AIMessage, llm_output: dict[str, Any] | None = None) -> LLMResult:
    return LLMResult(generations=[[ChatGeneration(message=message)]], llm_output=llm_output)


def test_openai_shape_keeps_cache_reads_and_reasoning_inside_the_totals() -> None:
    # langchain-openai `_create_usage_metadata` of prompt 1200 (1024 cached), completion 300
    # (200 reasoning).
    usage = Usage.parse(
        {
            "input_tokens": 1200,
            "output_tokens": 300,
            "total_tokens": 1500,
            "input_token_details": {"audio": 0, "cache_read": 1024},
            "output_token_details": {"audio": 0, "reasoning": 200},
        },
        strict=False,
    )
    assert usage == Usage(
        input_tokens=1200, output_tokens=300, cache_read_tokens=1024, reasoning_tokens=200
    )


def test_openai_flex_tier_prefixed_keys_are_read_as_cache_reads_and_reasoning() -> None:
    # langchain-openai with service_tier="flex": prefixed detail keys plus the bare tier key.
    usage = Usage.parse(
        {
            "input_tokens": 2000,
            "output_tokens": 500,
            "total_tokens": 2500,
            "input_token_details": {"flex_cache_read": 1536, "flex": 464},
            "output_token_details": {"flex_reasoning": 128, "flex": 372},
        },
        strict=False,
    )
    assert usage.cache_read_tokens == 1536
    assert usage.reasoning_tokens == 128
    assert usage.service_tier == "flex"
    assert usage.input_tokens == 2000 and usage.output_tokens == 500


def test_openai_priority_tier_prefixed_keys_are_read_too() -> None:
    usage = Usage.parse(
        {
            "input_tokens": 100,
            "output_tokens": 10,
            "total_tokens": 110,
            "input_token_details": {"priority_cache_read": 64, "priority": 36},
            "output_token_details": {"priority_reasoning": 4, "priority": 6},
        },
        strict=False,
    )
    assert (usage.cache_read_tokens, usage.reasoning_tokens, usage.service_tier) == (
        64,
        4,
        "priority",
    )


def test_anthropic_shape_with_split_cache_writes_counts_each_write_once() -> None:
    # Newer langchain-anthropic: cache_creation zeroed, 5m / 1h writes listed; input_tokens
    # already includes cache reads and writes (100 plain + 1000 read + 300 + 200 written).
    usage = Usage.parse(
        {
            "input_tokens": 1600,
            "output_tokens": 50,
            "total_tokens": 1650,
            "input_token_details": {
                "cache_read": 1000,
                "cache_creation": 0,
                "ephemeral_5m_input_tokens": 300,
                "ephemeral_1h_input_tokens": 200,
            },
        },
        strict=False,
    )
    assert usage.input_tokens == 1600
    assert usage.cache_read_tokens == 1000
    assert usage.cache_write_tokens == 500
    assert usage.cache_write_1h_tokens == 200


def test_older_anthropic_shape_with_total_and_split_writes_is_not_double_counted() -> None:
    # Older langchain-anthropic kept the total in cache_creation besides the split keys.
    usage = Usage.parse(
        {
            "input_tokens": 1600,
            "output_tokens": 50,
            "total_tokens": 1650,
            "input_token_details": {
                "cache_read": 1000,
                "cache_creation": 500,
                "ephemeral_5m_input_tokens": 300,
                "ephemeral_1h_input_tokens": 200,
            },
        },
        strict=False,
    )
    assert usage.cache_write_tokens == 500


def test_anthropic_usage_is_priced_with_cache_reads_and_writes_at_their_rates() -> None:
    metadata = {
        "input_tokens": 1600,
        "output_tokens": 50,
        "total_tokens": 1650,
        "input_token_details": {
            "cache_read": 1000,
            "cache_creation": 0,
            "ephemeral_5m_input_tokens": 500,
        },
    }
    normalized = Usage.parse(metadata, strict=False)
    model = "claude-3-5-sonnet-latest"
    # 100 plain input at $3/M, 1000 cache reads at $0.30/M, 500 writes at $3.75/M,
    # 50 output at $15/M.
    expected = (
        Decimal(100) * 3 + Decimal(1000) * Decimal("0.3") + Decimal(500) * Decimal("3.75")
    ) / 1_000_000 + Decimal(50) * 15 / 1_000_000
    assert price(model, normalized) == expected
    assert price(model, normalized) < price(model, {"input_tokens": 1600, "output_tokens": 50})


def test_raw_provider_numbers_that_exclude_the_cache_are_repaired() -> None:
    # An integration that passes Anthropic's API numbers as they are: input_tokens 100
    # excludes 1000 cache reads, which cannot be LangChain's convention.
    usage = Usage.parse(
        {"input_tokens": 100, "output_tokens": 5, "input_token_details": {"cache_read": 1000}},
        strict=False,
    )
    assert usage.input_tokens == 1100


def test_legacy_openai_token_usage_in_llm_output_is_read() -> None:
    usage = Usage.parse(
        {
            "prompt_tokens": 50,
            "completion_tokens": 7,
            "total_tokens": 57,
            "prompt_tokens_details": {"cached_tokens": 32},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
        strict=False,
    )
    assert usage == Usage(
        input_tokens=50, output_tokens=7, cache_read_tokens=32, reasoning_tokens=3
    )


def test_raw_anthropic_usage_in_llm_output_adds_the_cache_to_input_tokens() -> None:
    usage = Usage.parse(
        {
            "input_tokens": 20,
            "output_tokens": 9,
            "cache_read_input_tokens": 400,
            "cache_creation_input_tokens": 80,
        },
        strict=False,
    )
    assert usage == Usage(
        input_tokens=500, output_tokens=9, cache_read_tokens=400, cache_write_tokens=80
    )


def test_llm_output_without_counts_gives_no_usage() -> None:
    result = read_result(_result(AIMessage("a"), {"token_usage": {"model_name": "x"}}))
    assert result.usage is None


def test_read_result_prefers_usage_metadata_then_llm_output() -> None:
    with_metadata = _result(
        AIMessage("a", usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}),
        {"token_usage": {"prompt_tokens": 99, "completion_tokens": 99}},
    )
    assert read_result(with_metadata).usage == Usage(input_tokens=3, output_tokens=1)
    legacy = _result(
        AIMessage("a"),
        {"token_usage": {"prompt_tokens": 12, "completion_tokens": 2}, "model_name": "gpt-4"},
    )
    result = read_result(legacy)
    assert result.usage == Usage(input_tokens=12, output_tokens=2)
    assert result.model == "gpt-4"


def test_read_result_sees_both_cache_hit_markers_and_streaming() -> None:
    ours = _result(AIMessage("a", response_metadata={CACHE_HIT_KEY: True}))
    core = _result(
        AIMessage(
            "a",
            usage_metadata={
                "input_tokens": 3,
                "output_tokens": 1,
                "total_tokens": 4,
                "total_cost": 0,
            },
        )
    )
    fresh = _result(
        AIMessage("a", usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4})
    )
    streamed = LLMResult(generations=[[ChatGenerationChunk(message=AIMessageChunk(content="a"))]])
    assert read_result(ours).cache_hit
    assert read_result(core).cache_hit
    assert not read_result(fresh).cache_hit
    assert read_result(streamed).streamed and not read_result(fresh).streamed


def test_tracker_prices_an_anthropic_call_from_its_normalized_usage() -> None:
    metadata: Any = {
        "input_tokens": 1600,
        "output_tokens": 50,
        "total_tokens": 1650,
        "input_token_details": {
            "cache_read": 1000,
            "cache_creation": 0,
            "ephemeral_5m_input_tokens": 500,
        },
    }
    reply = AIMessage(
        "ok", usage_metadata=metadata, response_metadata={"model": "claude-3-5-sonnet-latest"}
    )
    model = GenericFakeChatModel(messages=itertools.repeat(reply))
    tracker = UsageTracker()
    model.invoke("hi", config={"callbacks": [tracker]})
    (event,) = tracker.events
    assert event.model == "claude-3-5-sonnet-latest"
    assert (event.cache_read_tokens, event.cache_write_tokens) == (1000, 500)
    assert event.cost_usd == price("claude-3-5-sonnet-latest", Usage.parse(metadata, strict=False))


# ---------------------------------------------------------------- strict or lenient

JUNK_COUNTS: list[dict[str, Any]] = [
    {"input_tokens": -1, "output_tokens": 0},
    {"input_tokens": 1.5, "output_tokens": 0},
    {"input_tokens": "10", "output_tokens": 0},
    {"input_tokens": True, "output_tokens": 0},
    {"input_tokens": 10, "output_tokens": 0, "input_token_details": {"cache_read": "x"}},
    {"input_tokens": 10, "output_tokens": 0, "input_token_details": [1]},
]


@pytest.mark.parametrize("data", JUNK_COUNTS)
def test_strict_parsing_names_the_bad_field_and_lenient_reads_it_as_zero(
    data: dict[str, Any],
) -> None:
    with pytest.raises((TypeError, ValueError), match=r"usage field 'input_token"):
        Usage.parse(data, strict=True)
    lenient = Usage.parse(data, strict=False)
    assert lenient.cache_read_tokens == 0
    assert lenient.input_tokens in (0, 10)


def test_strict_parsing_refuses_details_beyond_their_totals_and_lenient_repairs_them() -> None:
    too_much_reasoning = {
        "input_tokens": 0,
        "output_tokens": 1,
        "output_token_details": {"reasoning": 2},
    }
    with pytest.raises(ValueError, match="reasoning"):
        Usage.parse(too_much_reasoning, strict=True)
    assert Usage.parse(too_much_reasoning, strict=False).reasoning_tokens == 1
    raw_cache = {"input_tokens": 10, "output_tokens": 0, "input_token_details": {"cache_read": 11}}
    with pytest.raises(ValueError, match="input_tokens must include cache"):
        Usage.parse(raw_cache, strict=True)
    assert Usage.parse(raw_cache, strict=False).input_tokens == 21


def test_a_usage_that_is_not_a_mapping_is_a_type_error_only_when_strict() -> None:
    with pytest.raises(TypeError, match="UsageMetadata"):
        Usage.parse([1, 2], strict=True)  # type: ignore[arg-type]
    assert Usage.parse([1, 2], strict=False) == Usage()  # type: ignore[arg-type]


def test_raw_provider_shapes_are_read_strictly_too() -> None:
    openai = {"prompt_tokens": 50, "completion_tokens": 7, "prompt_tokens_details": {}}
    assert Usage.parse(openai, strict=True) == Usage(input_tokens=50, output_tokens=7)
    with pytest.raises(TypeError, match="'prompt_tokens'"):
        Usage.parse({"prompt_tokens": "50", "completion_tokens": 7}, strict=True)


def test_a_usage_is_parsed_as_itself_and_checked_when_strict() -> None:
    usage = Usage(input_tokens=10, output_tokens=2, cache_read_tokens=4)
    assert Usage.parse(usage, strict=True) is usage
    with pytest.raises(ValueError, match="cache tokens"):
        Usage.parse(Usage(input_tokens=1, cache_read_tokens=4), strict=True)


def test_price_of_a_usage_equals_price_of_its_usage_metadata() -> None:
    metadata: Any = {
        "input_tokens": 1600,
        "output_tokens": 50,
        "input_token_details": {
            "cache_read": 1000,
            "ephemeral_5m_input_tokens": 300,
            "ephemeral_1h_input_tokens": 200,
            "audio": 10,
        },
        "output_token_details": {"reasoning": 20},
    }
    usage = Usage.parse(metadata, strict=False)
    assert usage == Usage.parse(metadata, strict=True)
    assert usage.input_audio_tokens == 10
    for model in ("claude-sonnet-4-5", "gpt-4o", "o3-mini"):
        assert price(model, usage) == price(model, metadata)
