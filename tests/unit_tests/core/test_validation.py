"""The argument checks every public entry point uses (core/validation.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from langchain_tokenopt.core.validation import (
    MAX_DEPTH,
    TypedValidationModel,
    check_depth,
    finite_number,
    instance_of,
    int_in_range,
    json_too_deep,
    optional,
    positive_number,
    shown,
)
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError, TokenOptError


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -1, 10**400])
def test_finite_number_refuses_what_cannot_be_a_bounded_number(value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="window_ms must be a finite number >= 0"):
        finite_number(value, "window_ms", minimum=0, maximum=1e6)


@pytest.mark.parametrize("value", [None, "1", True, [], b"1"])
def test_numbers_refuse_other_types_with_a_type_error(value: Any) -> None:
    with pytest.raises(ArgumentTypeError, match="ttl_seconds must be a number"):
        positive_number(value, "ttl_seconds")


def test_bounds_are_inclusive_except_above() -> None:
    assert finite_number(1, "x", minimum=1, maximum=1) == 1.0
    with pytest.raises(InvalidArgumentError, match="> 0"):
        finite_number(0, "x", above=0)


def test_int_in_range_refuses_floats_bools_and_values_out_of_range() -> None:
    assert int_in_range(3, "n", minimum=1, maximum=3) == 3
    for bad in (3.0, True, float("nan")):
        with pytest.raises(ArgumentTypeError, match="n must be an int"):
            int_in_range(bad, "n")
    with pytest.raises(InvalidArgumentError, match=r"n must be an int >= 1, got an int of about"):
        int_in_range(-(10**5000), "n", minimum=1)


def test_errors_are_ours_and_the_matching_builtin() -> None:
    assert issubclass(InvalidArgumentError, TokenOptError) and issubclass(
        InvalidArgumentError, ValueError
    )
    assert issubclass(ArgumentTypeError, TokenOptError) and issubclass(ArgumentTypeError, TypeError)


def test_instance_of_and_optional_name_the_argument() -> None:
    assert optional(instance_of, None, "store", dict, "a dict") is None
    with pytest.raises(ArgumentTypeError, match="store must be a Store, got str"):
        optional(instance_of, "x", "store", dict, "a Store")


def test_check_depth_walks_100000_levels_without_recursion() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidArgumentError, match=f"more than {MAX_DEPTH} levels"):
        check_depth(deep, "value")
    shared = [1]
    check_depth([shared] * 1000, "value")  # shared, shallow: fine
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    check_depth(cyclic, "value")  # a cycle is walked once


@pytest.mark.parametrize("innermost", [[], {}, (), ["x"], {"k": None}, set()])
def test_check_depth_limit_is_exact_whatever_the_innermost_container(innermost: Any) -> None:
    # the walk skips empty containers and leaves below the limit; at the limit it must not
    def nested(levels: int) -> Any:
        value = innermost
        for _ in range(levels):
            value = [value]
        return value

    check_depth(nested(MAX_DEPTH), "value")  # innermost at depth MAX_DEPTH: allowed
    with pytest.raises(InvalidArgumentError, match=f"more than {MAX_DEPTH} levels"):
        check_depth(nested(MAX_DEPTH + 1), "value")
    check_depth(nested(MAX_DEPTH + 1), "value", max_depth=MAX_DEPTH + 1)


def test_json_too_deep_skips_brackets_in_strings_and_finds_the_offset() -> None:
    assert json_too_deep('["[[[[", {"a": "]]]"}]', max_depth=2) is None
    assert json_too_deep("[" * 100_000) == MAX_DEPTH


def test_shown_is_bounded_for_huge_and_deep_values() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert len(shown(deep)) < 100
    assert shown(10**5000) == "an int of about 5001 digits"
    assert len(shown("x" * 10_000)) < 80


class _Model(TypedValidationModel, BaseModel):
    level: int = 1


def test_pydantic_fields_raise_our_typed_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="_Model argument 'level'"):
        _Model(level="many")
    assert _Model(level=2).level == 2
