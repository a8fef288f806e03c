"""`UsageEvent`: one model call as the tracker saw it, and its JSON form.

The record the tracker writes and every report, suggestion and efficiency figure reads.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from langchain_tokenopt.core.formatting import decimal_str
from langchain_tokenopt.errors import InvalidArgumentError

__all__ = ["UsageEvent"]

_UTC = _dt.timezone.utc
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


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
        """Rebuild an event from `to_dict()` output; raises ValueError naming a bad field."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(
                f"a usage event must be a JSON object, got {type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for name in ("run_id", "agent"):
            if not isinstance(values.get(name), str):
                raise InvalidArgumentError(f"usage event field {name!r} must be a string")
        for name in (*_TOKEN_FIELDS, "tools_count"):
            value = values.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(
                    f"usage event field {name!r} must be a non-negative integer"
                )
        for name in ("cost_usd", "saved_cost_usd"):
            value = values.get(name)
            if value is not None:
                try:
                    values[name] = Decimal(str(value))
                except InvalidOperation as exc:
                    raise InvalidArgumentError(
                        f"usage event field {name!r} must be a number"
                    ) from exc
        started = values.get("started_at")
        if started is not None:
            try:
                parsed = _dt.datetime.fromisoformat(str(started))
            except ValueError as exc:
                raise InvalidArgumentError(
                    "usage event field 'started_at' must be ISO 8601"
                ) from exc
            values["started_at"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
        latency = values.get("latency_seconds", 0.0)
        if isinstance(latency, bool) or not isinstance(latency, (int, float)):
            raise InvalidArgumentError("usage event field 'latency_seconds' must be a number")
        values["latency_seconds"] = float(latency)
        return cls(**values)
