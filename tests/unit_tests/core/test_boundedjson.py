"""Bounded JSON: depth measured on the raw text, without recursion; limits enforced."""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import pytest

from langchain_tokenopt.core import boundedjson
from langchain_tokenopt.core.boundedjson import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    JSONLimitError,
    dumps_bounded,
    loads_bounded,
    nesting_exceeds,
)
from langchain_tokenopt.errors import UnstorableValueError


def depth_of(value: Any) -> int:
    """Nesting depth of a decoded value (recursive: test data only)."""
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def random_value(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(['a "[{" b', "]]}}", "\\", 1, 2.5, None, True, "é\\u0000"])
    if rng.random() < 0.5:
        return [random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {f'k{i}[{{"': random_value(rng, depth - 1) for i in range(rng.randint(0, 3))}


def test_nesting_is_measured_as_json_defines_it_with_brackets_in_strings_ignored() -> None:
    rng = random.Random(20)
    for _ in range(400):
        value = random_value(rng, rng.randint(0, 8))
        text = json.dumps(value)
        depth = depth_of(value)
        assert not nesting_exceeds(text, depth)
        assert nesting_exceeds(text, depth - 1) == (depth > 0)


def test_a_value_nested_100000_deep_is_refused_without_recursion() -> None:
    text = "[" * 100_000 + "]" * 100_000
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # a recursive check would fail here
    try:
        assert nesting_exceeds(text)
    finally:
        sys.setrecursionlimit(limit)
    with pytest.raises(JSONLimitError, match="nested deeper than 128"):
        loads_bounded(text)


def test_the_limit_is_inclusive() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert depth_of(loads_bounded(at_limit)) == MAX_JSON_DEPTH
    with pytest.raises(JSONLimitError):
        loads_bounded("[" + at_limit + "]")


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "-Infinity", "1e999", "{", "", "9" * 5000])
def test_what_is_not_finite_json_is_refused(text: str) -> None:
    with pytest.raises(JSONLimitError):
        loads_bounded(text)


def test_text_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boundedjson, "MAX_JSON_BYTES", 10)
    assert loads_bounded('"123456"') == "123456"
    with pytest.raises(JSONLimitError, match="over the limit"):
        loads_bounded('"123456789"')
    with pytest.raises(JSONLimitError, match="over the limit"):
        dumps_bounded("123456789")


def test_dumps_refuses_what_loads_would_refuse() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(JSONLimitError):
        dumps_bounded(deep)
    just_over: Any = []
    for _ in range(MAX_JSON_DEPTH):
        just_over = [just_over]  # 129 levels: json.dumps writes it, loads_bounded would not
    with pytest.raises(JSONLimitError, match="nested deeper"):
        dumps_bounded(just_over)
    with pytest.raises(JSONLimitError, match="digits"):
        dumps_bounded(10**5000)
    with pytest.raises(TypeError):
        dumps_bounded(float("nan"))
    assert loads_bounded(dumps_bounded({"a": [1, 2.5]})) == {"a": [1, 2.5]}


def test_the_store_error_message_states_the_limits_in_force() -> None:
    message = str(UnstorableValueError("k", "x"))
    assert f"{MAX_JSON_DEPTH} levels" in message
    assert f"{MAX_JSON_BYTES // 2**20} MiB" in message
