"""Specification of `price()` and `PriceTable`."""

from __future__ import annotations

import logging
import random
import sys
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from langchain_core.messages import AIMessage

from langchain_tokenopt.core import pricing
from langchain_tokenopt.core.pricing import ModelPrice, PriceTable, price
from langchain_tokenopt.core.usage import Usage as TokenUsage
from langchain_tokenopt.errors import UnknownModelError

MILLION = 1_000_000


def genai_usage(usage: dict[str, Any]) -> dict[str, int]:
    """A LangChain UsageMetadata as genai-prices usage keys, mapped by hand."""
    details = usage.get("input_token_details", {})
    output_details = usage.get("output_token_details", {})
    return {
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "cache_read_tokens": details.get("cache_read", 0),
        "cache_write_tokens": details.get("cache_creation", 0),
        "output_reasoning_tokens": output_details.get("reasoning", 0),
    }


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
    assert TokenUsage.parse(usage).cache_write_tokens == 100_000
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
        "perplexity:sonar",  # a price per request besides the token prices
    ],
)
def test_every_usage_is_priced_exactly_as_genai_prices_prices_it(model: str) -> None:
    provider, _, name = model.rpartition(":")
    rng = random.Random(model)
    table = PriceTable(memo_size=1, provider=provider or None)
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
        expected = calc_price(
            Usage(**genai_usage(usage)), name, provider_id=provider or None
        ).total_price
        assert table.price(name, usage) == expected, usage


# ---------------------------------------------------------------- the flat-price fast path


@pytest.mark.parametrize(
    ("model", "provider", "fast"),
    [
        ("gpt-4o", None, True),
        ("gpt-4o-mini", None, True),
        ("o3-mini", None, True),
        ("claude-sonnet-4-5", None, False),  # long-context tiers
        ("gemini-2.5-pro", None, False),  # tiers
        ("deepseek-chat", None, False),  # time-of-day prices
        ("sonar", "perplexity", False),  # a price per request
    ],
)
def test_the_fast_path_serves_flat_priced_models_only(
    model: str, provider: str | None, fast: bool
) -> None:
    # Pins the read of genai-prices' data snapshot (docs/internals.md, "genai-prices"):
    # if its layout changes, flat models stop taking the fast path and this fails.
    pricing._linear_rates.cache_clear()
    assert (pricing._linear_rates(model, provider) is not None) is fast


def test_pricing_falls_back_to_calc_price_when_the_snapshot_layout_changes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_tokenopt.core import logs

    def moved(model: str, provider: str | None) -> Any:
        raise AttributeError("'DataSnapshot' object has no attribute 'find_provider_model'")

    usage = {"input_tokens": 1000, "output_tokens": 200, "input_token_details": {"cache_read": 400}}
    expected = calc_price(Usage(**genai_usage(usage)), "gpt-4o").total_price
    monkeypatch.setattr(pricing, "_snapshot_prices", moved)
    monkeypatch.setattr(logs, "_logged_once", set())
    pricing._linear_rates.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.core.pricing"):
            assert pricing._linear_rates("gpt-4o", None) is None
            assert PriceTable(memo_size=1).price("gpt-4o", usage) == expected
            assert PriceTable(memo_size=1).price("gpt-4o-mini", usage) > 0
    finally:
        pricing._linear_rates.cache_clear()
    warnings = [r for r in caplog.records if "data snapshot" in r.getMessage()]
    assert len(warnings) == 1


def test_pricing_falls_back_to_calc_price_when_the_snapshot_module_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    usage = {"input_tokens": 1000, "output_tokens": 200}
    expected = calc_price(Usage(**genai_usage(usage)), "gpt-4o").total_price
    monkeypatch.setitem(sys.modules, "genai_prices.data_snapshot", None)
    pricing._linear_rates.cache_clear()
    try:
        assert pricing._linear_rates("gpt-4o", None) is None
        assert PriceTable(memo_size=1).price("gpt-4o", usage) == expected
    finally:
        pricing._linear_rates.cache_clear()


def test_price_accepts_a_usage_as_well_as_a_mapping() -> None:
    usage = {
        "input_tokens": MILLION,
        "output_tokens": 0,
        "input_token_details": {"cache_read": 500_000},
    }
    parsed = TokenUsage.parse(usage)
    assert price("gpt-4o", parsed) == price("gpt-4o", usage) == Decimal("1.875")
    model_price = ModelPrice(input_per_mtok=Decimal(2), output_per_mtok=Decimal(8))
    assert model_price.cost(parsed) == model_price.cost(usage) == Decimal(2)
    table = PriceTable({"mine": model_price})
    assert table.price("mine", parsed) == Decimal(2)
