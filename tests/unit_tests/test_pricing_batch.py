"""`price(..., processing="batch")`: the provider batch APIs' rates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from langchain_tokenopt.core.pricing import BATCH_FALLBACK_RATE, PriceTable, price

USAGE = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o", "claude-haiku-4-5"])
def test_genai_prices_batch_rates_are_half_the_standard_price(model: str) -> None:
    assert price(model, USAGE, processing="batch") == price(model, USAGE) / 2


def test_a_model_without_batch_rates_gets_the_documented_fifty_percent() -> None:
    # genai-prices has no batch variant for claude-3-5-haiku-latest
    model = "claude-3-5-haiku-latest"
    assert price(model, USAGE, processing="batch") == price(model, USAGE) * BATCH_FALLBACK_RATE


def test_overrides_and_defaults_are_discounted_by_the_fallback_rate() -> None:
    table = PriceTable(
        {"my-model": {"input_per_mtok": 2, "output_per_mtok": 4}},
        default={"input_per_mtok": 1, "output_per_mtok": 1},
    )
    assert table.price("my-model", USAGE, processing="batch") == Decimal(3)
    assert table.price("never-heard-of", USAGE, processing="batch") == Decimal(1)


def test_standard_and_batch_prices_are_memoized_apart() -> None:
    table = PriceTable()
    assert table.price("gpt-4o-mini", USAGE) == Decimal("0.75")
    assert table.price("gpt-4o-mini", USAGE, processing="batch") == Decimal("0.375")
    assert table.price("gpt-4o-mini", USAGE) == Decimal("0.75")


def test_an_unknown_processing_is_refused() -> None:
    with pytest.raises(ValueError, match="processing"):
        price("gpt-4o", USAGE, processing="flex")  # type: ignore[arg-type]
