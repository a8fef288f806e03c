"""What a model call costs, in US dollars, as `Decimal`.

Prices come from genai-prices (a maintained, dated price database covering OpenAI,
Anthropic, Google, Mistral and many more), so cache-read and cache-write input tokens
are priced as the provider prices them, and long-context tiers apply. `PriceTable` adds
what genai-prices cannot know: fine-tuned, self-hosted and negotiated prices, and a
default for models it has never heard of.

Usage is a `Usage` or a mapping `Usage.parse` reads strictly (a LangChain
`UsageMetadata`, or a provider's raw usage): `input_tokens` is the sum of all input
token types (cache reads and writes included) and `output_tokens` the sum of all output
types (reasoning included); the details only say how many of them were of which kind.
Reasoning tokens are billed at the output rate unless an override prices them.

`processing="batch"` prices a call made through a provider batch API (OpenAI Batch,
Anthropic Message Batches): genai-prices' batch rates where it has them, else
`BATCH_FALLBACK_RATE` (50%, what OpenAI and Anthropic document) of the standard price.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import functools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from cachetools import LRUCache

from langchain_tokenopt.core.logs import log_once
from langchain_tokenopt.core.usage import Usage
from langchain_tokenopt.core.validation import dollars, instance_of, int_in_range, optional, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError, UnknownModelError

__all__ = ["BATCH_FALLBACK_RATE", "ModelPrice", "PriceTable", "Processing", "price"]

logger = logging.getLogger(__name__)

_MTOK = Decimal(1_000_000)
#: How a call was processed: interactively, or through a provider batch API.
Processing = Literal["standard", "batch"]
#: Share of the standard price charged for batch processing where genai-prices has no
#: batch rates (overrides, defaults, models without a batch variant, a snapshot laid out
#: differently): OpenAI's and Anthropic's documented 50%.
BATCH_FALLBACK_RATE = Decimal("0.5")

# Provider prefixes users write in front of model names ("openai:gpt-4o",
# "anthropic/claude-3-5-sonnet"), mapped to genai-prices provider ids.
_PROVIDER_PREFIXES = {
    "openai": "openai",
    "azure": "azure",
    "azure_openai": "azure",
    "anthropic": "anthropic",
    "google": "google",
    "google_genai": "google",
    "google-gla": "google",
    "google_vertexai": "google",
    "mistral": "mistral",
    "mistralai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "bedrock": "aws",
    "aws": "aws",
    "xai": "x-ai",
    "cohere": "cohere",
    "together": "together",
    "fireworks": "fireworks",
}


@dataclass(frozen=True)
class ModelPrice:
    """Prices in US dollars per million tokens.

    Unset cache prices fall back to the input price, an unset reasoning price to the
    output price.

    Example:
        >>> from decimal import Decimal
        >>> p = ModelPrice(input_per_mtok=Decimal("0.5"), output_per_mtok=Decimal("1.5"))
        >>> p.cost({"input_tokens": 2_000_000, "output_tokens": 0})
        Decimal('1.0')
        >>> p.cost(Usage(input_tokens=2_000_000, cache_read_tokens=2_000_000))
        Decimal('1.0')
    """

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    reasoning_per_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        for name in (
            "input_per_mtok",
            "output_per_mtok",
            "cache_read_per_mtok",
            "cache_write_per_mtok",
            "reasoning_per_mtok",
        ):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, dollars(value, name))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ModelPrice:
        """Build from a dict such as `{"input_per_mtok": 1, "output_per_mtok": 2}`."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise InvalidArgumentError(
                f"Unknown price field(s) {sorted(unknown)}; expected some of {sorted(allowed)}"
            )
        missing = {"input_per_mtok", "output_per_mtok"} - set(data)
        if missing:
            raise InvalidArgumentError(f"A model price needs {sorted(missing)}")
        return cls(**{k: dollars(v, k) for k, v in data.items() if v is not None})

    def cost(self, usage: Usage | Mapping[str, Any]) -> Decimal:
        """Dollars for `usage` (a `Usage`, or a mapping `Usage.parse` reads) at these prices."""
        u = Usage.parse(usage, strict=True)
        cache_read = u.cache_read_tokens
        cache_write = u.cache_write_tokens
        reasoning = u.reasoning_tokens
        plain_input = u.input_tokens - cache_read - cache_write
        plain_output = u.output_tokens - reasoning
        total = (
            plain_input * self.input_per_mtok
            + cache_read * (self.cache_read_per_mtok or self.input_per_mtok)
            + cache_write * (self.cache_write_per_mtok or self.input_per_mtok)
            + plain_output * self.output_per_mtok
            + reasoning * (self.reasoning_per_mtok or self.output_per_mtok)
        )
        return total / _MTOK


def _genai_fields(usage: Usage) -> dict[str, int]:
    """`usage` as genai-prices usage keys (the details only when there are some)."""
    flat = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    for key, value in (
        ("cache_read_tokens", usage.cache_read_tokens),
        ("cache_write_tokens", usage.cache_write_tokens),
        ("cache_write_5m_tokens", usage.cache_write_5m_tokens),
        ("cache_write_1h_tokens", usage.cache_write_1h_tokens),
        ("input_audio_tokens", usage.input_audio_tokens),
        ("output_reasoning_tokens", usage.reasoning_tokens),
        ("output_audio_tokens", usage.output_audio_tokens),
    ):
        if value:
            flat[key] = value
    return flat


def _split_provider(model: str) -> tuple[str | None, str]:
    for sep in (":", "/"):
        head, found, tail = model.partition(sep)
        if found and head.lower() in _PROVIDER_PREFIXES and tail:
            return _PROVIDER_PREFIXES[head.lower()], tail
    return None, model


# Price keys of a genai-prices entry that the dot product below gets right: the usage
# keys they price are either rated below or never sent (a usage with audio, 5m / 1h
# writes, ... goes through calc_price). Any other key (a price per request, per
# message, for reasoning) sends the model through calc_price.
_LINEAR_PRICE_KEYS = frozenset(
    {
        "input_mtok",
        "output_mtok",
        "cache_read_mtok",
        "cache_write_mtok",
        "cache_write_5m_mtok",
        "cache_write_1h_mtok",
        "input_audio_mtok",
        "output_audio_mtok",
        "cache_audio_read_mtok",
        "input_image_mtok",
        "output_image_mtok",
        "cache_image_read_mtok",
        "input_video_mtok",
        "output_video_mtok",
        "web_searches_kcount",
        "storage_searches_kcount",
    }
)


def _snapshot_model(model: str, provider: str | None) -> Any:
    """genai-prices' own entry for `model` (`ModelInfo`), from its internal data snapshot.

    `calc_price` offers no public way to ask "is this model flat-priced?" or "has it a
    batch price?"; see docs/internals.md ("genai-prices"). Raises LookupError for
    unknown models.
    """
    from genai_prices.data_snapshot import get_snapshot

    _provider, info = get_snapshot().find_provider_model(model, None, provider, None)
    return info


def _snapshot_prices(model: str, provider: str | None) -> Any:
    """genai-prices' own price entry for `model` (see `_snapshot_model`)."""
    return _snapshot_model(model, provider).prices


@functools.lru_cache(maxsize=1024)
def _has_batch_rates(model: str, provider: str | None) -> bool:
    """True when genai-prices has a `processing: batch` price variant for `model`.

    False for unknown models and, with one warning, when the snapshot is not laid out
    as expected (`price_variants` of `when` mappings): batch calls are then priced at
    `BATCH_FALLBACK_RATE` of the standard price.
    """
    try:
        variants = _snapshot_model(model, provider).price_variants or ()
        return any(variant.when.get("processing") == "batch" for variant in variants)
    except LookupError:
        return False
    except Exception as exc:  # the internal layout changed: fall back to the 50% rule
        log_once(
            logger,
            "pricing:batch-variants-layout",
            logging.WARNING,
            "genai-prices' price variants are not laid out as expected (%r): pricing "
            "batch calls at %s of the standard price.",
            exc,
            BATCH_FALLBACK_RATE,
        )
        return False


@functools.lru_cache(maxsize=1024)
def _linear_rates(model: str, provider: str | None) -> dict[str, Decimal] | None:
    """Per-million rates of each usage key, when genai-prices prices `model` linearly.

    `calc_price` is 12 to 18 times slower than this (docs/benchmarks.md, "Pricing,
    usage tracking and budgets"); for the common case (flat prices, no tiers, no dated or
    time-of-day variants) the cost is a dot product we do ourselves. Rates are per key
    of the genai-prices usage, so the cached part of the input is moved from the input
    rate to its cache rate. Anything else returns None and goes through `calc_price`,
    and so does every model when the snapshot is not laid out as expected.
    """
    try:
        prices = _snapshot_prices(model, provider)
        from genai_prices.types import ModelPrice as GenaiModelPrice

        if not isinstance(prices, GenaiModelPrice):  # conditional prices vary by time
            return None
        entries = {key: value for key, value in vars(prices).items() if value is not None}
    except LookupError:
        return None
    except Exception as exc:  # the internal layout changed: the public API still works
        log_once(
            logger,
            "pricing:snapshot-layout",
            logging.WARNING,
            "genai-prices' data snapshot is not laid out as expected (%r): pricing every "
            "call with calc_price (slower, same prices).",
            exc,
        )
        return None
    if not entries.keys() <= _LINEAR_PRICE_KEYS:
        return None
    input_rate = entries.get("input_mtok")
    output_rate = entries.get("output_mtok")
    if not isinstance(input_rate, Decimal) or not isinstance(output_rate, Decimal):
        return None
    rates = {
        "input_tokens": input_rate,
        "output_tokens": output_rate,
        # Reasoning is part of output_tokens and, with no price of its own, billed there.
        "output_reasoning_tokens": Decimal(0),
    }
    for usage_key, price_key in (
        ("cache_read_tokens", "cache_read_mtok"),
        ("cache_write_tokens", "cache_write_mtok"),
    ):
        rate = entries.get(price_key)
        if isinstance(rate, Decimal):
            rates[usage_key] = rate - input_rate  # input_tokens already counted them
    return rates


class PriceTable:
    """genai-prices plus your own prices, and an optional default for unknown models.

    Overrides are matched by exact model name first, then by shell-style pattern
    (`"ft:gpt-4o-mini:*"`), before genai-prices is asked. Results are memoized per
    (model, usage, day), because genai-prices takes tens of microseconds per call.

    Example:
        >>> table = PriceTable({"my-llama": {"input_per_mtok": 0.2, "output_per_mtok": 0.2}})
        >>> table.price("my-llama", {"input_tokens": 1_000_000, "output_tokens": 0})
        Decimal('0.2')
        >>> table.price("gpt-4o", {"input_tokens": 1_000_000, "output_tokens": 1_000_000})
        Decimal('12.5')
    """

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        default: ModelPrice | Mapping[str, Any] | None = None,
        provider: str | None = None,
        memo_size: int = 4096,
    ) -> None:
        optional(instance_of, overrides, "overrides", Mapping, "a dict of model name -> price")
        optional(instance_of, provider, "provider", str, "a genai-prices provider id")
        int_in_range(memo_size, "memo_size", minimum=1)
        self._overrides: dict[str, ModelPrice] = {}
        self._patterns: list[tuple[str, ModelPrice]] = []
        for name, value in (overrides or {}).items():
            self.set(name, value)
        self.default = None if default is None else self._as_price(default)
        self.provider = provider
        self._memo: LRUCache[tuple[Any, ...], Decimal] = LRUCache(maxsize=memo_size)
        self._lock = threading.Lock()

    @staticmethod
    def _as_price(value: ModelPrice | Mapping[str, Any]) -> ModelPrice:
        if isinstance(value, ModelPrice):
            return value
        if isinstance(value, Mapping):
            return ModelPrice.from_mapping(value)
        raise ArgumentTypeError(
            f"a price must be a ModelPrice or a mapping, got {type(value).__name__}"
        )

    def set(self, model: str, value: ModelPrice | Mapping[str, Any]) -> None:
        """Add or replace the price of `model` (a name or a shell-style pattern)."""
        if not isinstance(model, str) or not model:
            raise ArgumentTypeError("a model name must be a non-empty string")
        model_price = self._as_price(value)
        if any(ch in model for ch in "*?["):
            self._patterns = [(p, mp) for p, mp in self._patterns if p != model]
            self._patterns.append((model, model_price))
        else:
            self._overrides[model] = model_price
        if hasattr(self, "_memo"):
            with self._lock:
                self._memo.clear()

    def _override(self, model: str) -> ModelPrice | None:
        found = self._overrides.get(model)
        if found is not None:
            return found
        for pattern, model_price in self._patterns:
            if fnmatch.fnmatchcase(model, pattern):
                return model_price
        return None

    def _genai_price(
        self, model: str, flat: dict[str, int], processing: Processing = "standard"
    ) -> Decimal | None:
        provider, name = _split_provider(model)
        provider = self.provider or provider
        if processing == "batch":
            return self._genai_batch_price(model, name, provider, flat)
        linear = _linear_rates(name, provider)
        if linear is not None and flat.keys() <= linear.keys():
            return sum((n * linear[k] for k, n in flat.items()), Decimal(0)) / _MTOK
        from genai_prices import Usage as GenaiUsage  # 60 ms: loaded on first use
        from genai_prices import calc_price

        try:
            calculation = calc_price(GenaiUsage(**flat), name, provider_id=provider)
        except LookupError:
            return None
        return Decimal(calculation.total_price)

    def _genai_batch_price(
        self, model: str, name: str, provider: str | None, flat: dict[str, int]
    ) -> Decimal | None:
        if not _has_batch_rates(name, provider):
            standard = self._genai_price(model, flat)
            return None if standard is None else standard * BATCH_FALLBACK_RATE
        from genai_prices import Usage as GenaiUsage
        from genai_prices import calc_price

        calculation = calc_price(
            GenaiUsage(**flat), name, provider_id=provider, price_context={"processing": "batch"}
        )
        return Decimal(calculation.total_price)

    def price(
        self,
        model: str,
        usage: Usage | Mapping[str, Any],
        *,
        processing: Processing = "standard",
    ) -> Decimal:
        """Dollars for `usage`: a `Usage`, or a mapping `Usage.parse` reads strictly.

        `processing="batch"`: the call went through a provider batch API (see the module
        docstring for the rate applied).
        """
        if not isinstance(model, str) or not model:
            raise ArgumentTypeError(f"model must be a non-empty string, got {shown(model)}")
        if processing not in ("standard", "batch"):
            raise InvalidArgumentError(
                f"processing must be 'standard' or 'batch', got {shown(processing)}"
            )
        checked = Usage.parse(usage, strict=True)
        rate = BATCH_FALLBACK_RATE if processing == "batch" else Decimal(1)
        override = self._override(model)
        if override is not None:
            return override.cost(checked) * rate
        flat = _genai_fields(checked)
        day = _dt.datetime.now(_dt.timezone.utc).date()
        key = (model, day, processing, *sorted(flat.items()))
        with self._lock:
            cached = self._memo.get(key)
        if cached is not None:
            return cached
        result = self._genai_price(model, flat, processing)
        if result is None:
            if self.default is None:
                raise UnknownModelError(model)
            logger.debug("No price known for %r: using the configured default", model)
            result = self.default.cost(checked) * rate
        with self._lock:
            self._memo[key] = result
        return result

    def knows(self, model: str) -> bool:
        """True if `model` has a price (override, genai-prices or default)."""
        if self._override(model) is not None or self.default is not None:
            return True
        return self._genai_price(model, {"input_tokens": 0, "output_tokens": 0}) is not None


_DEFAULT_TABLE = PriceTable()


def price(
    model: str,
    usage: Usage | Mapping[str, Any],
    *,
    table: PriceTable | None = None,
    processing: Processing = "standard",
) -> Decimal:
    """Dollars for `usage` on `model`; raises `UnknownModelError` for unknown models.

    `usage` is a `Usage` or a mapping `Usage.parse` reads strictly (a LangChain
    `UsageMetadata`, such as `AIMessage.usage_metadata`). `processing="batch"` prices a
    call made through a provider batch API.

    Example:
        >>> price("gpt-4o", {"input_tokens": 1_000_000, "output_tokens": 1_000_000})
        Decimal('12.5')
        >>> price("gpt-4o", {"input_tokens": 1_000_000, "output_tokens": 0,
        ...                  "input_token_details": {"cache_read": 500_000}})
        Decimal('1.875')
        >>> price("gpt-4o", Usage(input_tokens=1_000_000, cache_read_tokens=500_000))
        Decimal('1.875')
        >>> price("gpt-4o-mini", Usage(input_tokens=1_000_000), processing="batch")
        Decimal('0.075')
    """
    optional(instance_of, table, "table", PriceTable, "a PriceTable or None")
    return (table or _DEFAULT_TABLE).price(model, usage, processing=processing)
