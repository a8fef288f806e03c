"""JSON with a depth and size limit, for text that something else may have written.

`json.loads` recurses once per nesting level, so a value nested 100,000 levels deep
raises `RecursionError` (and one just under Python's limit breaks every recursive
consumer after it: langchain-core's `loads`, deep copies). Stores and cache entries
decode through `loads_bounded`, which measures the nesting on the raw text first,
without recursion, and refuses anything deeper than `MAX_JSON_DEPTH` or larger than
`MAX_JSON_BYTES` with a `JSONLimitError` (a `ValueError`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "JSONLimitError",
    "check_json_text",
    "dumps_bounded",
    "loads_bounded",
    "nesting_exceeds",
]

#: Deepest nesting of lists and objects accepted (as serde_json's default, 128): far
#: below Python's recursion limit, far above any state this package writes.
MAX_JSON_DEPTH = 128
#: Largest JSON text accepted, in characters (what this package writes is ASCII, so
#: also bytes): room for long answers with images, not for a runaway value.
MAX_JSON_BYTES = 32 * 1024 * 1024

# A JSON string literal (unrolled loop: linear time, no backtracking blow-up).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JSONLimitError(ValueError):
    """JSON text that is not valid, nests too deep or is too large (the reason says which)."""


def nesting_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON `text` nests lists / objects more than `limit` levels deep.

    Linear and non-recursive: brackets inside string literals do not count. Text
    with fewer than `limit` opening brackets is answered by two `str.count` calls.

    Example:
        >>> nesting_exceeds("[[1]]", 2), nesting_exceeds("[[1]]", 1)
        (False, True)
        >>> nesting_exceeds('{"a": "[[[[[["}', 1)
        False
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth = max(depth - 1, 0)  # a stray closer does not buy extra depth
    return False


def check_json_text(text: str) -> None:
    """Raise `JSONLimitError` if `text` is larger than `MAX_JSON_BYTES` or nests too deep."""
    if len(text) > MAX_JSON_BYTES:
        raise JSONLimitError(f"{len(text):,} characters, over the limit of {MAX_JSON_BYTES:,}")
    if nesting_exceeds(text):
        raise JSONLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels")


def _refuse_constant(name: str) -> Any:
    raise JSONLimitError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONLimitError(f"{text[:40]} overflows a float")
    return value


# One decoder, built once: NaN / Infinity and overflowing floats are not JSON.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def loads_bounded(text: str) -> Any:
    """`json.loads(text)` within the limits; `JSONLimitError` for anything it refuses.

    Refuses invalid JSON, NaN / Infinity, floats that overflow, integers of more
    digits than Python converts, and text that nests too deep or is too large.

    Example:
        >>> loads_bounded('{"a": [1, 2.5]}')
        {'a': [1, 2.5]}
        >>> loads_bounded("[" * 200 + "]" * 200)
        Traceback (most recent call last):
        ...
        langchain_tokenopt.core.boundedjson.JSONLimitError: nested deeper than 128 levels
    """
    check_json_text(text)
    try:
        return _DECODER.decode(text)
    except JSONLimitError:
        raise
    except (ValueError, RecursionError) as exc:
        raise JSONLimitError(str(exc)) from exc


def dumps_bounded(value: Any) -> str:
    """Compact JSON for `value` that `loads_bounded` will read back.

    `TypeError` if `value` is not JSON-serializable (or holds NaN / infinity);
    `JSONLimitError` if it nests too deep or its text is too large.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except RecursionError as exc:
        raise JSONLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:
        if "digits" in str(exc):  # an int longer than Python converts to text
            raise JSONLimitError(str(exc)) from exc
        raise TypeError(str(exc)) from exc  # NaN, infinity, a circular reference
    check_json_text(text)
    return text
