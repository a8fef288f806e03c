"""Specification of `price()` and `PriceTable`."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from langchain_core.messages import AIMessage

from langchain_tokenopt.core.pricing import ModelPrice, PriceTable, normalize_usage, price
from langchain_tokenopt.errors import UnknownModelError

MILLION = 1_000_000


def test_gpt_4o_one_million_in_and_out_costs_12_50() -> None:
    assert price("gpt-4o", {"input_tokens": MILLION, "output_tokens": MILLION}) == Decimal("12.50")


def test_gpt_4o_cache_reads_are_priced_at_the_cache_read_rate() -> None:
    usage = {
        "input_tokens": MILLION,
        "output_tokens": 0,
        "input_token_details": {"cache_read": 500_000},
    }
    assert price("gpt-4o", usage) == Decimal("1.875")


def test_price_is_a_decimal_never_a_float() -> None:
    result = price("gpt-4o-mini", {"input_tokens": 123, "output_tokens": 45})
    assert isinstance(result, Decimal)
    assert result > 0


def test_price_accepts_the_usage_metadata_of_a_langchain_message() -> None:
    message = AIMessage(
        content="hi",
        usage_metadata={
            "input_tokens": 1000,
            "output_tokens": 200,
            "total_tokens": 1200,
            "input_token_details": {"cache_read": 400},
            "output_token_details": {"reasoning": 50},
        },
    )
    assert message.usage_metadata is not None
    expected = calc_price(
        Usage(
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=400,
            output_reasoning_tokens=50,
        ),
        "o3-mini",
    ).total_price
    assert price("o3-mini", message.usage_metadata) == expected


def test_reasoning_tokens_are_billed_as_output_not_twice() -> None:
    plain = price("o3-mini", {"input_tokens": 0, "output_tokens": MILLION})
    with_reasoning = price(
        "o3-mini",
        {
            "input_tokens": 0,
            "output_tokens": MILLION,
            "output_token_details": {"reasoning": 900_000},
        },
    )
    assert with_reasoning == plain


def test_anthropic_cache_writes_are_priced_at_the_write_rate() -> None:
    base = price("claude-sonnet-4-5", {"input_tokens": 100_000, "output_tokens": 0})
    written = price(
        "claude-sonnet-4-5",
        {
            "input_tokens": 100_000,
            "output_tokens": 0,
            "input_token_details": {"cache_creation": 100_000},
        },
    )
    # Anthropic charges 1.25x the input rate for 5-minute cache writes.
    assert written == base * Decimal("1.25")


def test_one_hour_cache_writes_count_inside_cache_creation_not_on_top() -> None:
    usage = {
        "input_tokens": 100_000,
        "output_tokens": 0,
        "input_token_details": {
            "cache_creation": 100_000,
            "ephemeral_1h_input_tokens": 100_000,
        },
    }
    assert normalize_usage(usage)["cache_write_tokens"] == 100_000
    one_hour = price("claude-sonnet-4-5", usage)
    five_minutes = price(
        "claude-sonnet-4-5",
        {
            "input_tokens": 100_000,
            "output_tokens": 0,
            "input_token_details": {"cache_creation": 100_000},
        },
    )
    assert one_hour > five_minutes


def test_provider_prefixes_are_understood() -> None:
    usage = {"input_tokens": MILLION, "output_tokens": 0}
    assert price("openai:gpt-4o", usage) == price("gpt-4o", usage) == Decimal("2.50")


def test_unknown_model_raises_an_error_naming_it() -> None:
    with pytest.raises(UnknownModelError) as info:
        price("my-private-model", {"input_tokens": 1, "output_tokens": 1})
    assert info.value.model == "my-private-model"
    assert "my-private-model" in str(info.value)
    assert "PriceTable" in str(info.value)


def test_unknown_model_uses_the_configured_default() -> None:
    table = PriceTable(default={"input_per_mtok": 1, "output_per_mtok": 3})
    assert table.price("my-private-model", {"input_tokens": MILLION, "output_tokens": MILLION}) == 4
    assert table.knows("my-private-model")


def test_overrides_win_over_genai_prices() -> None:
    table = PriceTable({"gpt-4o": ModelPrice(Decimal("1"), Decimal("2"))})
    assert table.price("gpt-4o", {"input_tokens": MILLION, "output_tokens": MILLION}) == 3


def test_override_patterns_price_fine_tuned_models() -> None:
    table = PriceTable(
        {
            "ft:gpt-4o-mini:*": {
                "input_per_mtok": "0.30",
                "output_per_mtok": "1.20",
                "cache_read_per_mtok": "0.15",
            }
        }
    )
    usage = {
        "input_tokens": MILLION,
        "output_tokens": MILLION,
        "input_token_details": {"cache_read": MILLION // 2},
    }
    assert table.price("ft:gpt-4o-mini:acme::abc123", usage) == Decimal("0.15") + Decimal(
        "0.075"
    ) + Decimal("1.20")
    with pytest.raises(UnknownModelError):
        table.price("ft:gpt-4o:acme::abc123", usage)


def test_override_reasoning_price_applies_to_reasoning_tokens_only() -> None:
    table = PriceTable(
        {"r1-local": {"input_per_mtok": 0, "output_per_mtok": 2, "reasoning_per_mtok": 1}}
    )
    usage = {
        "input_tokens": 0,
        "output_tokens": MILLION,
        "output_token_details": {"reasoning": MILLION // 2},
    }
    assert table.price("r1-local", usage) == Decimal("1.5")


def test_memoized_results_are_invalidated_by_a_new_override() -> None:
    table = PriceTable()
    usage = {"input_tokens": MILLION, "output_tokens": 0}
    assert table.price("gpt-4o", usage) == Decimal("2.50")
    table.set("gpt-4o", {"input_per_mtok": 1, "output_per_mtok": 1})
    assert table.price("gpt-4o", usage) == 1


@pytest.mark.parametrize(
    ("usage", "error"),
    [
        ({"input_tokens": -1, "output_tokens": 0}, ValueError),
        ({"input_tokens": 1.5, "output_tokens": 0}, TypeError),
        ({"input_tokens": "10", "output_tokens": 0}, TypeError),
        (
            {"input_tokens": 10, "output_tokens": 0, "input_token_details": {"cache_read": 11}},
            ValueError,
        ),
        (
            {"input_tokens": 0, "output_tokens": 1, "output_token_details": {"reasoning": 2}},
            ValueError,
        ),
        ({"input_tokens": 1, "output_tokens": 0, "input_token_details": [1]}, TypeError),
    ],
)
def test_bad_usage_is_rejected_with_the_field_named(usage: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        price("gpt-4o", usage)


def test_usage_that_is_not_a_mapping_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="UsageMetadata"):
        price("gpt-4o", [1, 2])  # type: ignore[arg-type]


def test_bad_override_prices_are_rejected() -> None:
    with pytest.raises(ValueError, match="input_per_mtok"):
        PriceTable({"m": {"output_per_mtok": 1}})
    with pytest.raises(ValueError, match="non-negative"):
        PriceTable({"m": {"input_per_mtok": -1, "output_per_mtok": 1}})
    with pytest.raises(ValueError, match="Unknown price field"):
        PriceTable({"m": {"input_per_mtok": 1, "output_per_mtok": 1, "inpt": 3}})


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "o3-mini",
        "gpt-3.5-turbo",
        "claude-sonnet-4-5",  # long-context tiers
        "claude-3-5-haiku-latest",
        "gemini-2.5-pro",  # tiers
        "deepseek-chat",  # time-of-day prices
    ],
)
def test_every_usage_is_priced_exactly_as_genai_prices_prices_it(model: str) -> None:
    rng = random.Random(model)
    table = PriceTable(memo_size=1)
    for _ in range(40):
        input_tokens = rng.randint(0, 400_000)
        output_tokens = rng.randint(0, 50_000)
        cache_read = rng.randint(0, input_tokens // 2)
        cache_write = rng.choice([0, rng.randint(0, (input_tokens - cache_read) // 2)])
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {"cache_read": cache_read, "cache_creation": cache_write},
            "output_token_details": {"reasoning": output_tokens // 3},
        }
        expected = calc_price(Usage(**normalize_usage(usage)), model).total_price
        assert table.price(model, usage) == expected, usage
