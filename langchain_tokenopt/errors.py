"""The package's exception types.

Every error a user can meet from langchain-tokenopt is one of these, and each message
says what to do about it.
"""

from __future__ import annotations

import datetime as _dt

__all__ = [
    "ArgumentTypeError",
    "BatchItemError",
    "BudgetExceededError",
    "CorruptStateError",
    "EncodingUnavailableError",
    "InvalidArgumentError",
    "InvalidRecordError",
    "MissingExtraError",
    "NotFittedError",
    "NumberOverflowError",
    "StoreUnavailableError",
    "TokenOptError",
    "UnknownModelError",
    "UnstorableValueError",
]


class TokenOptError(Exception):
    """Base class of every langchain-tokenopt error."""


class InvalidArgumentError(TokenOptError, ValueError):
    """An argument or input has the right type but a value that cannot work.

    NaN or infinite numbers, values out of range, structures nested too deeply, input
    text that cannot be read: the message names the argument (or the file, line and
    field) and says what to give instead.

    Example:
        >>> from langchain_tokenopt.errors import InvalidArgumentError
        >>> isinstance(InvalidArgumentError("window_ms must be finite"), ValueError)
        True
    """


class InvalidRecordError(InvalidArgumentError):
    """A record of a log cannot be read; the message names the file, the line and the field.

    Example:
        >>> str(InvalidRecordError("log.jsonl", 3, "messages[0].role", "unknown role 'robot'"))
        "log.jsonl, line 3: field 'messages[0].role': unknown role 'robot'"
    """

    def __init__(self, source: str, line: int | None, field: str | None, problem: str) -> None:
        where = f"{source}, line {line}" if line is not None else source
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{problem}")
        self.source = source
        self.line = line
        self.field = field


class ArgumentTypeError(TokenOptError, TypeError):
    """An argument has the wrong type; the message names it and the type it needs.

    Example:
        >>> from langchain_tokenopt.errors import ArgumentTypeError
        >>> isinstance(ArgumentTypeError("store must be a Store"), TypeError)
        True
    """


class NumberOverflowError(TokenOptError, OverflowError):
    """A counter in a store would leave what every backend holds (a signed 64-bit
    integer, or a finite float); the message names the key. Use a new key or reset it.
    """


class NotFittedError(TokenOptError, RuntimeError):
    """A learned component was used before it was trained or loaded.

    Example:
        >>> from langchain_tokenopt.errors import NotFittedError
        >>> isinstance(NotFittedError("call fit() first"), RuntimeError)
        True
    """


class UnknownModelError(TokenOptError, KeyError):
    """A model has no known price (or encoding) and no default was configured.

    Example:
        >>> from langchain_tokenopt.errors import UnknownModelError
        >>> str(UnknownModelError("my-model"))  # doctest: +ELLIPSIS
        "No price is known for model 'my-model'..."
    """

    def __init__(self, model: str, detail: str | None = None) -> None:
        self.model = model
        message = detail or (
            f"No price is known for model {model!r}. Give its price with "
            "PriceTable(overrides={...}) or set PriceTable(default=...)."
        )
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class EncodingUnavailableError(TokenOptError, ValueError):
    """A tiktoken encoding cannot be loaded (unknown, or not cached and offline).

    tiktoken downloads an encoding's file the first time it is used; without internet,
    point `TIKTOKEN_CACHE_DIR` at a folder that holds the files.
    """

    def __init__(self, encoding: str, detail: str) -> None:
        self.encoding = encoding
        super().__init__(
            f"Cannot load tiktoken encoding {encoding!r} ({detail}). Offline, set "
            "TIKTOKEN_CACHE_DIR to a folder that holds its file (see the README)."
        )


class StoreUnavailableError(TokenOptError, ConnectionError):
    """A state store (Redis, SQLite) cannot be reached or used right now."""

    def __init__(self, store: str, detail: str) -> None:
        self.store = store
        super().__init__(f"{store} is unavailable: {detail}")


class CorruptStateError(TokenOptError, ValueError):
    """A value in a state store cannot be read: not JSON, nested too deep, too large.

    Something else wrote it, or it was damaged. The store leaves it in place and names
    the `key`; deleting that key is the fix (the component then starts it afresh).
    Caches treat such an entry as a miss; budgets and summarizing histories raise this.

    Example:
        >>> from langchain_tokenopt.errors import CorruptStateError
        >>> error = CorruptStateError("tokenopt:budget:x", "nested deeper than 128 levels")
        >>> error.key, "delete the key" in str(error)
        ('tokenopt:budget:x', True)
    """

    def __init__(
        self, key: str, detail: str, *, store: str | None = None, remedy: str | None = None
    ) -> None:
        self.key = key
        self.detail = detail
        self.store = store
        where = f" in {store}" if store else ""
        advice = remedy or "It was written by something else or damaged: delete the key."
        super().__init__(f"The value stored at {key!r}{where} cannot be read ({detail}). {advice}")


class UnstorableValueError(InvalidArgumentError):
    """A value given to a `Store` nests too deep or is too large to store (nothing written).

    Example:
        >>> from langchain_tokenopt.errors import UnstorableValueError
        >>> print(UnstorableValueError("k", "nested deeper than 128 levels"))  # doctest: +ELLIPSIS
        Cannot store the value for 'k': nested deeper than 128 levels. Store a flatter ...
    """

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        self.detail = detail
        super().__init__(
            f"Cannot store the value for {key!r}: {detail}. Store a flatter or smaller value "
            "(at most 128 levels of nesting and 32 MiB of JSON)."
        )


class BudgetExceededError(TokenOptError):
    """A call would spend more than its `TokenBudget` allows.

    Raised before the request is sent, carrying what was used, the limit and when the
    window resets (None for a budget without a window).
    """

    def __init__(
        self,
        *,
        used: float,
        limit: float,
        unit: str,
        requested: float = 0,
        resets_at: _dt.datetime | None = None,
        scope: str | None = None,
    ) -> None:
        self.used = used
        self.limit = limit
        self.unit = unit
        self.requested = requested
        self.resets_at = resets_at
        self.scope = scope
        where = f" for {scope!r}" if scope else ""
        when = f"; the window resets at {resets_at.isoformat()}" if resets_at else ""
        super().__init__(
            f"Budget exceeded{where}: used {used:g} of {limit:g} {unit}, this call needs "
            f"{requested:g} more{when}. Raise the limit or wait for the window to reset."
        )


class MissingExtraError(TokenOptError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, extra: str, package: str) -> None:
        self.extra = extra
        super().__init__(
            f"This feature needs {package!r}: install it with "
            f"`pip install 'langchain-tokenopt[{extra}]'`."
        )


class BatchItemError(TokenOptError):
    """One request of a provider batch failed, expired or was cancelled.

    Carries the item's position in the input (`index`), its `custom_id`, the provider's
    `batch_id` and `reason` ("failed", "expired", "cancelled"); `status_code` and
    `code` are the provider's, when it gave them.
    """

    def __init__(
        self,
        *,
        index: int,
        custom_id: str,
        batch_id: str,
        reason: str,
        message: str,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        self.index = index
        self.custom_id = custom_id
        self.batch_id = batch_id
        self.reason = reason
        self.status_code = status_code
        self.code = code
        status = f" (HTTP {status_code})" if status_code else ""
        super().__init__(
            f"Item {index} ({custom_id!r}) of batch {batch_id} {reason}{status}: {message}. "
            "Pass return_exceptions=True to get the other items' results, and resend this "
            "one (interactively or in a new batch)."
        )


class ScorerFileError(TokenOptError, ValueError):
    """A saved router scorer (JSON) is not one, or one of its fields is malformed.

    `field` names the bad field as a path (``"model.members[1].trees[3].left"``).
    """

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        super().__init__(
            f"{source} is not a valid router scorer: field {field!r} {problem}. "
            "Re-create it with `tokenopt router train` or PretrainedScorer.train()."
        )
