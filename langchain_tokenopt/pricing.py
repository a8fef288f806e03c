"""What a model call costs, in US dollars as `Decimal`.

CONTRACT STUB (being implemented). genai-prices is the default source of prices;
`PriceTable` adds overrides (fine-tuned, self-hosted, negotiated prices) and a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class ModelPrice:
    """Prices in US dollars per million tokens. Unset cache/reasoning prices fall back
    to the input / output price."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    reasoning_per_mtok: Decimal | None = None


class PriceTable:
    """genai-prices plus overrides and an optional default for unknown models."""

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        default: ModelPrice | Mapping[str, Any] | None = None,
        provider: str | None = None,
    ) -> None:
        raise NotImplementedError

    def price(self, model: str, usage: Mapping[str, Any]) -> Decimal:
        """Dollars for `usage` (a LangChain `UsageMetadata` or a dict of the same shape)."""
        raise NotImplementedError

    def knows(self, model: str) -> bool:
        """True if `model` has a price (override, genai-prices or default)."""
        raise NotImplementedError


def price(model: str, usage: Mapping[str, Any], *, table: PriceTable | None = None) -> Decimal:
    """Dollars for `usage` on `model`; raises `UnknownModelError` for unknown models."""
    raise NotImplementedError
