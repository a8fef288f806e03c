"""Dollars for the token counts the commands report, or None when the model has no price."""

from __future__ import annotations

import logging
from decimal import Decimal

from langchain_tokenopt.core.pricing import Processing, price
from langchain_tokenopt.errors import UnknownModelError

__all__ = ["Pricer"]

logger = logging.getLogger(__name__)


class Pricer:
    """Prices token counts on one model; after the first unknown-model answer, None.

    Example:
        >>> Pricer("gpt-4o")(1_000_000)
        Decimal('2.5')
        >>> Pricer("gpt-4o")(1_000_000, processing="batch")
        Decimal('1.25')
        >>> Pricer("my-model")(1_000) is None
        True
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.known = True

    def __call__(
        self, input_tokens: int, output_tokens: int = 0, *, processing: Processing = "standard"
    ) -> Decimal | None:
        """Dollars for the counts (`processing="batch"`: through a provider batch API)."""
        if not self.known:
            return None
        try:
            return price(
                self.model,
                {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                },
                processing=processing,
            )
        except UnknownModelError:
            self.known = False
            logger.info("No price known for %r: dollars are not reported.", self.model)
            return None
