"""Checks and JSON coding shared by every store backend.

Each backend validates its inputs and (de)serializes values through these helpers, so
the three stores accept and refuse exactly the same things.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from langchain_tokenopt.core.validation import (
    MAX_TTL_SECONDS,
    check_depth,
    optional,
    positive_number,
    shown,
)
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError, NumberOverflowError
from langchain_tokenopt.stores.base import JSON, Number

logger = logging.getLogger("langchain_tokenopt.stores")

_MAX_CODE_POINT = 0x10FFFF
_INT64 = 2**63
_SURROGATES_START = 0xD800
_SURROGATES_END = 0xDFFF


class CorruptValue(Exception):
    """A stored value is not valid JSON (raised and handled inside the stores)."""


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


def encode(value: JSON) -> str:
    """`value` as compact JSON text; `ArgumentTypeError` (a `TypeError`) if it is not
    JSON-serializable, `InvalidArgumentError` if it nests deeper than `MAX_DEPTH`."""
    kind = type(value)
    if kind is int:  # counters: the hot path of every add
        return repr(value)
    if kind is float and math.isfinite(value):
        return repr(value)  # what json.dumps writes for a float
    if kind is dict or kind is list:  # what decoding accepts back: no deeper than MAX_DEPTH
        check_depth(value, "a store value")
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(
            f"Store values must be JSON-serializable (dict, list, str, int, float, bool, "
            f"None; no NaN or infinity): {exc}"
        ) from exc


def decode(text: Any) -> JSON:
    """The value stored as JSON `text`; CorruptValue if it is not valid JSON."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptValue(str(exc)) from exc
    if not isinstance(text, str):
        raise CorruptValue(f"expected JSON text, found {type(text).__name__}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CorruptValue(str(exc)) from exc


def warn_corrupt(store: str, key: str, reason: str) -> None:
    """Log that a corrupt value was found at `key` and dropped."""
    logger.warning(
        "%s: the value at %r is not valid JSON (%s); it was deleted and treated as missing.",
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
