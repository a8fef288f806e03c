"""`UsageEvent`: one model call as the tracker saw it, and its JSON form.

The record the tracker writes and every report, suggestion and efficiency figure reads.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from langchain_tokenopt.core.formatting import decimal_str
from langchain_tokenopt.core.validation import shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["UsageEvent", "checked_events"]

_UTC = _dt.timezone.utc
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
_FLAG_FIELDS = ("estimated", "cache_hit", "streamed")
_OPTIONAL_TEXT_FIELDS = (
    "model",
    "error_type",
    "parent_run_id",
    "task_id",
    "task_type",
    "prompt_hash",
)
#: Bounds past which a logged value cannot be right (a corrupted or hand-edited line).
_MAX_TOKENS = 10**12
_MAX_COST_USD = Decimal(1_000_000)
_MIN_COST_EXPONENT = -30  # smaller non-zero costs would print as hundreds of zeros
_MAX_LATENCY_SECONDS = 365 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One model call as `UsageTracker` saw it.

    Token fields follow LangChain's convention (`input_tokens` includes cache reads and
    writes, `output_tokens` includes reasoning). For a cache hit they hold what the
    cached answer cost originally: nothing was spent, `cost_usd` is 0 and
    `saved_cost_usd` what the call would have cost. `cost_usd` is None when the model
    has no known price; `estimated` is True when the provider reported no usage and
    the tokens were counted with `TokenCounter`.

    Example:
        >>> e = UsageEvent(run_id="r1", agent="writer", model="gpt-4o",
        ...                input_tokens=1000, output_tokens=50)
        >>> UsageEvent.from_dict(e.to_dict()) == e
        True
    """

    run_id: str
    agent: str
    model: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None
    saved_cost_usd: Decimal | None = None
    estimated: bool = False
    cache_hit: bool = False
    status: str = "ok"
    error_type: str | None = None
    latency_seconds: float = 0.0
    started_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_UTC))
    parent_run_id: str | None = None
    task_id: str | None = None
    task_type: str | None = None
    prompt_hash: str | None = None
    tools_count: int = 0
    streamed: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def spent_tokens(self) -> int:
        """Tokens this call was billed for (0 for a cache hit)."""
        return 0 if self.cache_hit else self.total_tokens

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: money as decimal strings, time as ISO 8601."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["cost_usd"] = decimal_str(self.cost_usd)
        data["saved_cost_usd"] = decimal_str(self.saved_cost_usd)
        data["started_at"] = self.started_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageEvent:
        """Rebuild an event from `to_dict()` output; `InvalidArgumentError` (a
        ValueError) names a field whose value cannot be right.

        Refused: token counts that are not whole numbers from 0 to 10**12, costs that
        are not decimal numbers from 0 to $1,000,000 (NaN, infinity, negative), flags
        that are not true / false, times outside years 1-9998.
        """
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(
                f"a usage event must be a JSON object, got {type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for name in ("run_id", "agent"):
            if not isinstance(values.get(name), str):
                raise InvalidArgumentError(f"usage event field {shown(name)} must be a string")
        values.setdefault("model", None)  # a line without a model: an unknown model
        for name in _OPTIONAL_TEXT_FIELDS:
            if values.get(name) is not None and not isinstance(values[name], str):
                raise InvalidArgumentError(
                    f"usage event field {shown(name)} must be a string or null, "
                    f"got {_json_kind(values[name])}"
                )
        if not isinstance(values.get("status", "ok"), str):
            raise InvalidArgumentError("usage event field 'status' must be a string")
        for name in (*_TOKEN_FIELDS, "tools_count"):
            value = values.get(name, 0)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= _MAX_TOKENS
            ):
                raise InvalidArgumentError(
                    f"usage event field {shown(name)} must be a whole number from 0 to 10**12, "
                    f"got {_json_kind(value)}"
                )
        for name in _FLAG_FIELDS:
            if not isinstance(values.get(name, False), bool):
                raise InvalidArgumentError(
                    f"usage event field {shown(name)} must be true or false, "
                    f"got {_json_kind(values[name])}"
                )
        for name in ("cost_usd", "saved_cost_usd"):
            if values.get(name) is not None:
                values[name] = _dollars(values[name], name)
        if "started_at" in values:
            values["started_at"] = _timestamp(values["started_at"])
        latency = values.get("latency_seconds", 0.0)
        if (
            isinstance(latency, bool)
            or not isinstance(latency, (int, float))
            or not 0 <= latency <= _MAX_LATENCY_SECONDS  # also refuses NaN
        ):
            raise InvalidArgumentError(
                "usage event field 'latency_seconds' must be a number of seconds from 0 to "
                f"one year, got {_json_kind(latency)}"
            )
        values["latency_seconds"] = float(latency)
        return cls(**values)


def _json_kind(value: Any) -> str:
    """A short, bounded description of a bad JSON value for error messages."""
    if isinstance(value, int) and value.bit_length() > 128:  # repr() refuses 4,300+ digits
        return "a number with more than 38 digits"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _dollars(value: Any, name: str) -> Decimal:
    """A cost field as Decimal: a number or decimal string from 0 to $1,000,000."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidArgumentError(
            f"usage event field {shown(name)} must be a number of dollars, got {_json_kind(value)}"
        )
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidArgumentError(
            f"usage event field {shown(name)} must be a number of dollars, got {_json_kind(value)}"
        ) from None
    if (
        not amount.is_finite()
        or amount < 0
        or amount > _MAX_COST_USD
        or (amount and amount.adjusted() < _MIN_COST_EXPONENT)
    ):
        raise InvalidArgumentError(
            f"usage event field {shown(name)} must be a finite number of dollars from 0 to "
            f"1,000,000, got {_json_kind(value)}"
        )
    return amount


def _timestamp(value: Any) -> _dt.datetime:
    """`started_at` as an aware datetime, within years 1-9998 in UTC."""
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"usage event field 'started_at' must be an ISO 8601 string, got {_json_kind(value)}"
        )
    try:
        parsed = _dt.datetime.fromisoformat(value)
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
        in_utc = parsed.astimezone(_UTC)  # OverflowError near year 1 and 9999
    except (ValueError, OverflowError):
        raise InvalidArgumentError(
            f"usage event field 'started_at' must be an ISO 8601 time, got {_json_kind(value)}"
        ) from None
    if not 1 < in_utc.year < 9999:  # room for any timezone's day on either side
        raise InvalidArgumentError(
            f"usage event field 'started_at' is out of range, got {_json_kind(value)}"
        )
    return parsed


def checked_events(events: Any) -> tuple[UsageEvent, ...]:
    """`events` as a tuple; `ArgumentTypeError` unless each is a `UsageEvent`."""
    if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Iterable):
        raise ArgumentTypeError(f"events must be a list of UsageEvent, got {type(events).__name__}")
    checked = tuple(events)
    for position, event in enumerate(checked):
        if not isinstance(event, UsageEvent):
            raise ArgumentTypeError(
                f"events[{position}] must be a UsageEvent, got {type(event).__name__}"
            )
    return checked
