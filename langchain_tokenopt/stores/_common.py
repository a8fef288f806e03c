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
from typing import Any

from cachetools import LRUCache

from langchain_tokenopt.core.boundedjson import JSONLimitError, dumps_bounded, loads_bounded
from langchain_tokenopt.errors import CorruptStateError, UnstorableValueError
from langchain_tokenopt.stores.base import JSON, Number

logger = logging.getLogger("langchain_tokenopt.stores")

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES_START = 0xD800
_SURROGATES_END = 0xDFFF


# Keys already warned about by `warn_skipped` (bounded: a flood of corrupt keys must
# not grow memory; a key pushed out may be warned about once more).
_WARNED_KEYS: LRUCache[tuple[str, str], None] = LRUCache(maxsize=4096)
_WARNED_LOCK = threading.Lock()


class CorruptValue(Exception):
    """A stored value cannot be decoded (raised and handled inside the stores)."""


def check_key(key: Any) -> str:
    """Return `key` if it is a string, else raise TypeError."""
    if not isinstance(key, str):
        raise TypeError(f"Store keys must be str, got {type(key).__name__}")
    return key


def check_prefix(prefix: Any, what: str = "prefix") -> str:
    """Return `prefix` if it is a string, else raise TypeError."""
    if not isinstance(prefix, str):
        raise TypeError(f"The {what} must be str, got {type(prefix).__name__}")
    return prefix


def check_ttl(ttl_seconds: Any) -> float | None:
    """Return `ttl_seconds` as a float (or None); refuse non-positive or non-finite values."""
    if ttl_seconds is None:
        return None
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)):
        raise TypeError(f"ttl_seconds must be a number, got {type(ttl_seconds).__name__}")
    if not math.isfinite(ttl_seconds) or ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be a positive finite number, got {ttl_seconds!r}")
    return float(ttl_seconds)


def check_number(value: Any, name: str) -> Number:
    """Return `value` if it is a finite int or float (not bool), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be an int or float, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
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

    `TypeError` if it is not JSON-serializable; `UnstorableValueError` if it nests
    deeper or is larger than a store reads back (`core.boundedjson`).
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
        raise TypeError(
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
    """The current number at `key` for an add; TypeError if the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"Cannot add to {key!r}: it holds a {type(value).__name__}, not a number. "
            "Delete the key or use another key for the counter."
        )
    return value


def add_numbers(current: Number, amount: Number) -> Number:
    """`current + amount`; int when both are ints, OverflowError if a float overflows."""
    result = current + amount
    if isinstance(result, float) and not math.isfinite(result):
        raise OverflowError(f"Adding {amount!r} to {current!r} overflows a float")
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
