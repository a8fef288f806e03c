"""What a cache hit saves: the tokens and dollars of the model call it replaces.

Priced when the entry is written, from the cached response's own `usage_metadata`
and model name (the `llm_string` names the model when the response does not), so a
hit only adds stored numbers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import Generation

from langchain_tokenopt.core.pricing import PriceTable, price
from langchain_tokenopt.errors import TokenOptError

__all__ = ["PICO", "UNKNOWN_MODEL", "Saving", "int_or_zero", "model_from_llm_string", "saving_of"]

logger = logging.getLogger(__name__)

#: Dollars are stored as integers of 1e-12 dollars, so counters add exactly.
PICO = Decimal(10) ** 12
#: The model name recorded when neither the response nor the `llm_string` names one.
UNKNOWN_MODEL = "unknown"

# langchain-core's llm_string: the model's params as a repr'd sorted item list, or its
# `dumps()` JSON, then "---" and the call-time params (see docs/internals.md).
_PARAM_MODEL_RE = re.compile(r"\('(?:model|model_name|model_id)', '([^']+)'\)")
_JSON_MODEL_RE = re.compile(r'"(?:model|model_name|model_id)": "([^"]+)"')


def model_from_llm_string(llm_string: str) -> str | None:
    """The model named in an `llm_string`, call-time parameters first; None if none is.

    Example:
        >>> model_from_llm_string("[('_type', 'openai-chat'), ('model', 'gpt-4o')]")
        'gpt-4o'
    """
    head, sep, params = llm_string.rpartition("---")
    for text in (params, head) if sep else (llm_string,):
        found = _PARAM_MODEL_RE.search(text) or _JSON_MODEL_RE.search(text)
        if found:
            return found.group(1)
    return None


def int_or_zero(value: Any) -> int:
    """`value` if it is an int (not a bool), else 0: counters read from a store."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Saving:
    """What one replay of a cached response saves."""

    model: str
    input_tokens: int
    output_tokens: int
    usd_pico: int | None  # None: the model has no known price


def saving_of(
    generations: Sequence[Generation], llm_string: str, table: PriceTable | None
) -> Saving:
    """What replaying `generations` saves, from the first message that reports usage.

    With n > 1 choices providers report one usage for the whole call, so the first
    message's usage is the call's usage; summing them would count it n times.
    """
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    for generation in generations:
        message = getattr(generation, "message", None)
        if not isinstance(message, BaseMessage):
            continue
        metadata = message.response_metadata or {}
        named = metadata.get("model_name") or metadata.get("model")
        if model is None and isinstance(named, str) and named:
            model = named
        found = getattr(message, "usage_metadata", None)
        if found:
            usage = found
            if isinstance(named, str) and named:
                model = named
            break
    model = model or model_from_llm_string(llm_string) or UNKNOWN_MODEL
    if not usage:
        return Saving(model, 0, 0, None)
    input_tokens = int_or_zero(usage.get("input_tokens"))
    output_tokens = int_or_zero(usage.get("output_tokens"))
    usd_pico: int | None = None
    if model != UNKNOWN_MODEL:
        try:
            usd = price(model, usage, table=table)
            usd_pico = int((usd * PICO).to_integral_value(ROUND_HALF_EVEN))
        except TokenOptError as exc:  # unknown model or unreadable usage: tokens only
            logger.debug("No price for cached response of %r: %s", model, exc)
    return Saving(model, input_tokens, output_tokens, usd_pico)
