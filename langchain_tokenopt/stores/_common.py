"""Checks and JSON coding shared by every store backend.

Each backend validates its inputs and (de)serializes values through these helpers, so
the three stores accept and refuse exactly the same things. Values are decoded with
the depth and size limits of `core.boundedjson`, and `encode` refuses what `decode`
would refuse, so a store never holds a value of its own that it cannot read back.
"""

from __future__ import annotations

import logging
import math
import threading
from types import TracebackType
from typing import Any

from cachetools import LRUCache
from typing_extensions import Self

from langchain_tokenopt.core.boundedjson import JSONLimitError, dumps_bounded, loads_bounded
from langchain_tokenopt.core.validation import (
    MAX_TTL_SECONDS,
    optional,
    positive_number,
    shown,
)
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    CorruptStateError,
    InvalidArgumentError,
    NumberOverflowError,
    UnstorableValueError,
)
from langchain_tokenopt.stores.base import JSON, Number

logger = logging.getLogger("langchain_tokenopt.stores")

_MAX_CODE_POINT = 0x10FFFF
_INT64 = 2**63
_SURROGATES_START = 0xD800
_SURROGATES_END = 0xDFFF


# Keys already warned about by `warn_skipped` (bounded: a flood of corrupt keys must
# not grow memory; a key pushed out may be warned about once more).
_WARNED_KEYS: LRUCache[tuple[str, str], None] = LRUCache(maxsize=4096)
_WARNED_LOCK = threading.Lock()


class CorruptValue(Exception):
    """A stored value cannot be decoded (raised and handled inside the stores)."""


def check_key(key: Any) -> str:
    """Return `key` if it is a string, else raise `ArgumentTypeError` (a `TypeError`)."""
    if not isinstance(key, str):
        raise ArgumentTypeError(f"Store keys must be str, got {type(key).__name__}")
    return key


def check_prefix(prefix: Any, what: str = "prefix") -> str:
    """Return `prefix` if it is a string, else raise `ArgumentTypeError` (a `TypeError`)."""
    if not isinstance(prefix, str):
        raise ArgumentTypeError(f"The {what} must be str, got {type(prefix).__name__}")
    return prefix


def check_ttl(ttl_seconds: Any) -> float | None:
    """`ttl_seconds` as a float (or None): positive, finite and at most `MAX_TTL_SECONDS`.

    One bound for every backend, so a TTL that one store accepts none refuses.
    """
    return optional(
        positive_number,
        ttl_seconds,
        "ttl_seconds",
        maximum=MAX_TTL_SECONDS,
        hint="give seconds up to ten years, or None to keep the value until deleted",
    )


def check_number(value: Any, name: str) -> Number:
    """Return `value` if it is a finite int or float (not bool) within a signed 64-bit
    integer; else `ArgumentTypeError` (not a number) or `InvalidArgumentError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} must be an int or float, got {type(value).__name__}")
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise InvalidArgumentError(
            f"{name} must fit in a signed 64-bit integer (what SQLite and Redis store), "
            f"got {shown(value)}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be finite, got {shown(value)}")
    return value


def check_add(key: Any, amount: Any, ttl_seconds: Any, max_value: Any) -> float | None:
    """Check the arguments of `Store.add` (key, amount, ttl, max_value); return the ttl."""
    check_key(key)
    check_number(amount, "amount")
    ttl = check_ttl(ttl_seconds)
    if max_value is not None:
        check_number(max_value, "max_value")
    return ttl


def encode(value: JSON, key: str) -> str:
    """`value` as compact JSON text, checked before anything is written.

    `ArgumentTypeError` (a `TypeError`) if it is not JSON-serializable;
    `UnstorableValueError` if it nests deeper or is larger than a store reads back
    (`core.boundedjson`).
    """
    kind = type(value)
    if kind is float and math.isfinite(value):
        return repr(value)  # counters: the hot path of every add; what json.dumps writes
    if kind is int and -(10**18) < value < 10**18:
        return repr(value)
    try:
        return dumps_bounded(value)
    except JSONLimitError as exc:
        raise UnstorableValueError(key, str(exc)) from exc
    except TypeError as exc:
        raise ArgumentTypeError(
            f"Store values must be JSON-serializable (dict, list, str, int, float, bool, "
            f"None; no NaN or infinity): {exc}"
        ) from exc


def decode(text: Any) -> JSON:
    """The value stored as JSON `text`; CorruptValue if it cannot be read within the limits."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptValue(f"not UTF-8 text: {exc}") from exc
    if not isinstance(text, str):
        raise CorruptValue(f"expected JSON text, found {type(text).__name__}")
    try:
        return loads_bounded(text)
    except JSONLimitError as exc:
        raise CorruptValue(str(exc)) from exc


def corrupt_error(store: str, key: str, reason: str) -> CorruptStateError:
    """The error `get` and `add` raise for a value they cannot read (left in place)."""
    return CorruptStateError(key, reason, store=store)


def warn_skipped(store: str, key: str, reason: str) -> None:
    """Log, once per key, that `scan` skipped a value it cannot read (left in place)."""
    with _WARNED_LOCK:
        if (store, key) in _WARNED_KEYS:
            return
        _WARNED_KEYS[(store, key)] = None
    logger.warning(
        "%s: the value at %r cannot be read (%s); scans skip it. Delete the key to clear it.",
        store,
        key,
        reason,
    )


def stored_number(key: str, value: JSON) -> Number:
    """The current number at `key` for an add; `ArgumentTypeError` (a `TypeError`) if
    the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(
            f"Cannot add to {shown(key)}: it holds a {type(value).__name__}, not a number. "
            "Delete the key or use another key for the counter."
        )
    return value


def add_numbers(current: Number, amount: Number) -> Number:
    """`current + amount`; int when both are ints. `NumberOverflowError` when the sum
    leaves a signed 64-bit int or a finite float, the same bound on every backend."""
    try:
        result = current + amount
    except OverflowError:  # a huge stored int plus a float
        raise NumberOverflowError(f"Adding {amount!r} to {current!r} overflows a float") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise NumberOverflowError(f"Adding {amount!r} to {current!r} overflows a float")
    if isinstance(result, int) and not -_INT64 <= result < _INT64:
        raise NumberOverflowError(
            f"Adding {amount!r} to {current!r} leaves a signed 64-bit integer"
        )
    return result


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`.

    None when no such bound exists (empty prefix, or only U+10FFFF characters). Strings
    compare by code point, which is also how SQLite compares UTF-8 text (memcmp), so
    `prefix <= key < bound` selects exactly the keys starting with `prefix`.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < _MAX_CODE_POINT:
            nxt = last + 1
            if _SURROGATES_START <= nxt <= _SURROGATES_END:
                nxt = _SURROGATES_END + 1
            return "".join(chars) + chr(nxt)
    return None


class ClosesOnExit:
    """`with store:` closes the store when the block ends (the stores' shared mixin)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
