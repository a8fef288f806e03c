"""`price(..., processing="batch")`: the provider batch APIs' rates."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from langchain_tokenopt.core import logs, pricing
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


def test_genai_prices_still_lays_out_batch_rates_as_price_variants() -> None:
    # Pins what _has_batch_rates reads (docs/internals.md, "genai-prices").
    variants = pricing._snapshot_model("gpt-4o-mini", "openai").price_variants
    batch = [v for v in variants if v.when.get("processing") == "batch"]
    assert len(batch) == 1
    assert batch[0].prices.input_mtok == Decimal("0.075")
    assert pricing._has_batch_rates("gpt-4o-mini", None)
    assert not pricing._has_batch_rates("claude-3-5-haiku-latest", None)
    assert not pricing._has_batch_rates("never-heard-of", None)


def test_batch_pricing_falls_back_to_half_when_the_variant_layout_changes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = pricing._snapshot_model

    class Moved:
        def __init__(self, info: Any) -> None:
            self.prices = info.prices  # the standard price entry is still where it was

        @property
        def price_variants(self) -> Any:
            raise AttributeError("'ModelInfo' object has no attribute 'price_variants'")

    monkeypatch.setattr(pricing, "_snapshot_model", lambda m, p: Moved(real(m, p)))
    monkeypatch.setattr(logs, "_logged_once", set())
    pricing._has_batch_rates.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.core.pricing"):
            for model in ("gpt-4o", "gpt-4o-mini"):
                batch = PriceTable().price(model, USAGE, processing="batch")
                assert batch == price(model, USAGE) * BATCH_FALLBACK_RATE
    finally:
        pricing._has_batch_rates.cache_clear()
    warnings = [r for r in caplog.records if "price variants" in r.getMessage()]
    assert len(warnings) == 1
