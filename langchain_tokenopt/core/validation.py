"""Checks of public arguments at the edge, with errors that name the argument.

Every constructor and public method checks what it is given here, once, where it
enters: numbers are finite and in range, types are what the signature says, nested
structures are no deeper than `MAX_DEPTH`. A failed check raises `InvalidArgumentError`
(a `ValueError`) or `ArgumentTypeError` (a `TypeError`), never a bare builtin.

Example:
    >>> from langchain_tokenopt.core.validation import finite_number, int_in_range
    >>> finite_number(2, "window_ms", minimum=0)
    2.0
    >>> finite_number(float("nan"), "window_ms", minimum=0)
    Traceback (most recent call last):
    ...
    langchain_tokenopt.errors.InvalidArgumentError: window_ms must be a finite number >= 0, got nan
    >>> int_in_range(True, "chunk_size", minimum=1)
    Traceback (most recent call last):
    ...
    langchain_tokenopt.errors.ArgumentTypeError: chunk_size must be an int, got bool
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import ValidationError

from langchain_tokenopt.core.boundedjson import nesting_exceeds
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError, TokenOptError

__all__ = [
    "MAX_DEPTH",
    "MAX_TTL_SECONDS",
    "TypedValidationModel",
    "check_depth",
    "finite_number",
    "instance_of",
    "int_in_range",
    "json_too_deep",
    "optional",
    "positive_number",
    "shown",
    "typed_validation",
]

T = TypeVar("T")

#: Deepest nesting of lists and objects accepted in messages, tools and JSON input.
#: Real chat payloads and tool schemas stay far below it; Python's own recursion
#: limit (about 1,000 frames) is what it keeps well clear of.
MAX_DEPTH = 100

#: Longest time to live any store accepts (ten years): every backend (memory, SQLite,
#: Redis) can represent it, so a TTL accepted by one is accepted by all.
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600.0


_SHORT = reprlib.Repr()
_SHORT.maxlevel = 3
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlong = 40


def shown(value: Any) -> str:
    """A short repr of `value` for error messages: bounded in length and depth, so a
    huge number or a structure nested 100,000 levels deep cannot break the message.

    Example:
        >>> shown("x" * 500)[:12], shown(10**5000), shown([[[[[1]]]]])
        ("'xxxxxxxxxxx", 'an int of about 5001 digits', '[[[[...]]]]')
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an int of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        return _SHORT.repr(value)
    except Exception:  # a repr that fails is still not a reason to lose the real error
        return f"a {type(value).__name__}"


def _hint(hint: str | None) -> str:
    return f"; {hint}" if hint else ""


def _bound_text(minimum: float | None, maximum: float | None, above: float | None) -> str:
    def number(value: float) -> str:
        return f"{value:g}" if isinstance(value, float) else shown(value)

    parts = []
    if above is not None:
        parts.append(f"> {number(above)}")
    if minimum is not None:
        parts.append(f">= {number(minimum)}")
    if maximum is not None:
        parts.append(f"<= {number(maximum)}")
    return " and ".join(parts)


def finite_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    hint: str | None = None,
) -> float:
    """`value` as a float if it is a finite int or float within the bounds.

    `minimum` and `maximum` are inclusive, `above` is exclusive. Booleans are refused
    (`True` is not a duration).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} must be a number, got {type(value).__name__}{_hint(hint)}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise _out_of_bounds(value, name, minimum, above, maximum, hint) from None
    if (
        not math.isfinite(number)
        or (minimum is not None and number < minimum)
        or (above is not None and number <= above)
        or (maximum is not None and number > maximum)
    ):
        raise _out_of_bounds(value, name, minimum, above, maximum, hint)
    return number


def _out_of_bounds(
    value: Any,
    name: str,
    minimum: float | None,
    above: float | None,
    maximum: float | None,
    hint: str | None,
) -> InvalidArgumentError:
    """The error for a number outside the bounds (its text is built only when raised:
    stores check every TTL they are given)."""
    bounds = _bound_text(minimum, maximum, above)
    wanted = f"a finite number {bounds}" if bounds else "a finite number"
    return InvalidArgumentError(f"{name} must be {wanted}, got {shown(value)}{_hint(hint)}")


def positive_number(
    value: Any, name: str, *, maximum: float | None = None, hint: str | None = None
) -> float:
    """`value` as a float if it is finite and greater than 0 (and at most `maximum`)."""
    return finite_number(value, name, above=0, maximum=maximum, hint=hint)


def int_in_range(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    hint: str | None = None,
) -> int:
    """`value` if it is an int (not a bool) within `minimum`..`maximum`, inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}{_hint(hint)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = _bound_text(minimum, maximum, None)
        raise InvalidArgumentError(
            f"{name} must be an int {bounds}, got {shown(value)}{_hint(hint)}"
        )
    return value


def instance_of(value: Any, name: str, kind: type[T] | tuple[type, ...], what: str) -> T:
    """`value` if it is an instance of `kind`; `what` names the type for the message.

    Example:
        >>> instance_of("x", "store", dict, "a Store (MemoryStore, SQLiteStore, RedisStore)")
        Traceback (most recent call last):
        ...
        langchain_tokenopt.errors.ArgumentTypeError: store must be a Store (MemoryStore, \
SQLiteStore, RedisStore), got str
    """
    if not isinstance(value, kind):
        raise ArgumentTypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value  # type: ignore[return-value]


def optional(check: Callable[..., T], value: Any, name: str, *args: Any, **bounds: Any) -> T | None:
    """None if `value` is None, else `check(value, name, *args, **bounds)`.

    Example:
        >>> optional(positive_number, None, "ttl_seconds") is None
        True
    """
    if value is None:
        return None
    return check(value, name, *args, **bounds)


# what `check_depth` never walks into (bool is an int)
_LEAVES = (str, bytes, int, float, type(None))
_PLAIN_CONTAINERS = frozenset({dict, list, tuple})


def _children(value: Any) -> Any:
    kind = type(value)
    if kind is dict:  # the usual cases first: an ABC check costs more than the walk
        return value.values()
    if kind in _PLAIN_CONTAINERS:
        return value
    if isinstance(value, Mapping):
        return value.values()
    if isinstance(value, (list, tuple, set, frozenset)):
        return value
    fields = getattr(value, "__pydantic_fields__", None)  # a message or another model
    if fields is not None and not isinstance(value, type):
        return [getattr(value, field, None) for field in fields]
    return ()


def check_depth(value: Any, name: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse `value` if its lists, tuples, dicts and models nest deeper than `max_depth`.

    Walks without recursion, so a structure nested 100,000 levels deep is refused with
    `InvalidArgumentError` instead of overflowing the stack somewhere later.

    Example:
        >>> deep: list = []
        >>> for _ in range(1000):
        ...     deep = [deep]
        >>> check_depth(deep, "messages")
        Traceback (most recent call last):
        ...
        langchain_tokenopt.errors.InvalidArgumentError: messages is nested more than 100 \
levels deep; flatten it (real messages and tool schemas are far shallower)
    """
    if isinstance(value, _LEAVES):
        return
    # only containers are stacked: a message's many str and None fields cost one check each
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise InvalidArgumentError(
                f"{name} is nested more than {max_depth} levels deep; flatten it (real "
                "messages and tool schemas are far shallower)"
            )
        if id(item) in seen:  # a shared or self-referencing object: walk it once
            continue
        seen.add(id(item))
        for child in _children(item):
            if isinstance(child, _LEAVES) or (
                type(child) in _PLAIN_CONTAINERS and not child and depth < max_depth
            ):
                continue  # nothing below it, and not too deep itself
            stack.append((child, depth + 1))


@contextmanager
def typed_validation(owner: str) -> Iterator[None]:
    """Turn a pydantic `ValidationError` raised inside into our typed errors.

    The first refused field is named, with what pydantic expected; a wrong type raises
    `ArgumentTypeError`, a wrong value `InvalidArgumentError`, and one of our own errors
    raised by a validator comes out as it was.
    """
    try:
        yield
    except ValidationError as exc:
        raise _typed(exc, owner) from None
    except TypeError as exc:  # pydantic building a field's type from a wrong value
        if isinstance(exc, TokenOptError):
            raise
        raise ArgumentTypeError(f"{owner}: {str(exc)[:300]}") from None


def _typed(exc: ValidationError, owner: str) -> Exception:
    errors = exc.errors(include_url=False)
    if not errors:
        return InvalidArgumentError(f"{owner}: {exc}")
    first = errors[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, TokenOptError):
        return original
    field = ".".join(str(part) for part in first.get("loc", ())) or "argument"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = (
        f"{owner} argument {field!r}: {first.get('msg', 'invalid')}, "
        f"got {shown(first.get('input'))}{more}"
    )
    kind = str(first.get("type", ""))
    if kind.endswith("_type") or kind in ("is_instance_of", "is_subclass_of", "callable_type"):
        return ArgumentTypeError(message)
    return InvalidArgumentError(message)


class TypedValidationModel:
    """Mixin for public pydantic models (put it first among the bases): a field that
    pydantic refuses raises our typed errors, not a bare `ValidationError`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with typed_validation(type(self).__name__):
            super().__init__(*args, **kwargs)


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def json_too_deep(text: str, max_depth: int = MAX_DEPTH) -> int | None:
    """Offset of the first bracket of JSON `text` that opens level `max_depth + 1`.

    None when the text nests no deeper than `max_depth` (brackets inside strings do
    not count). Scans without parsing, so it is safe on text that would overflow the
    JSON parser.

    Example:
        >>> json_too_deep('{"a": [[1], "]]]"]}', max_depth=2)
        7
        >>> json_too_deep('{"a": [[1], "[[["]}', max_depth=3) is None
        True
    """
    if not nesting_exceeds(text, max_depth):  # the common answer, without a Python loop
        return None
    depth = 0  # too deep: find where, for the error message
    for match in _JSON_TOKEN.finditer(text):
        char = match.group()[0]
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif char in "]}":
            depth = max(depth - 1, 0)
    return None


def dollars(value: Any, name: str, *, positive: bool = False) -> Decimal:
    """`value` (Decimal, int, float or numeric str) as a finite `Decimal` of dollars.

    At least 0, or above 0 when `positive`. Floats go through `str`, so 0.1 is 0.1.

    Example:
        >>> dollars("2.50", "max_cost_usd", positive=True)
        Decimal('2.50')
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise ArgumentTypeError(
            f"{name} must be a number of dollars (Decimal, int, float or str), "
            f"got {type(value).__name__}"
        )
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidArgumentError(
            f"{name} must be a number of dollars, got {shown(value)}"
        ) from exc
    if not result.is_finite() or result < 0 or (positive and result == 0):  # NaN first
        kind = "a positive" if positive else "a finite, non-negative"
        raise InvalidArgumentError(f"{name} must be {kind} number of dollars, got {shown(value)}")
    return result
