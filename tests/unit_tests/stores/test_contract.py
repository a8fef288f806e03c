"""The `Store` contract, one suite for every backend.

`StoreContract` holds the specification as tests; each backend runs it through a
`harness` fixture that builds the store and gives raw access to its storage (to plant
corrupt data and read TTLs). Memory and SQLite run here with a fake clock; Redis runs
the same class in tests/integration_tests/test_redis_store.py against a real server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from langchain_tokenopt.core import boundedjson
from langchain_tokenopt.core.boundedjson import MAX_JSON_DEPTH
from langchain_tokenopt.errors import (
    CorruptStateError,
    MissingExtraError,
    StoreUnavailableError,
    UnstorableValueError,
)
from langchain_tokenopt.stores import MemoryStore, SQLiteStore, Store

LONG_TTL_SECONDS = 1000.0


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class StoreHarness:
    """A store under test plus raw access to what it keeps."""

    store: Any
    short_ttl_seconds: float
    # Make time pass until `key`, set with `short_ttl_seconds`, has expired.
    expire: Callable[[str], None]
    # Make `seconds` pass (fake clock); a real-time backend lets less pass, which is
    # all the tests using it need (they check a key is still live before its TTL).
    let_time_pass: Callable[[float], None]
    write_raw: Callable[[str, str], None]
    read_raw: Callable[[str], str | None]
    # Seconds until `key` expires, None when it never does.
    ttl_remaining: Callable[[str], float | None]


def memory_harness() -> StoreHarness:
    clock = FakeClock()
    store = MemoryStore(time_func=clock)
    short = 10.0

    def write_raw(key: str, text: str) -> None:
        store._data[key] = (text, None, None)

    def read_raw(key: str) -> str | None:
        entry = store._data.get(key)
        return None if entry is None else entry[0]

    def ttl_remaining(key: str) -> float | None:
        entry = store._data.get(key)
        assert entry is not None, f"{key!r} is not stored"
        return None if entry[1] is None else entry[1] - clock.now

    return StoreHarness(
        store=store,
        short_ttl_seconds=short,
        expire=lambda _key: clock.advance(short + 1),
        let_time_pass=clock.advance,
        write_raw=write_raw,
        read_raw=read_raw,
        ttl_remaining=ttl_remaining,
    )


def sqlite_harness(path: Path) -> StoreHarness:
    clock = FakeClock()
    store = SQLiteStore(path, time_func=clock)
    short = 10.0

    def raw_connection() -> sqlite3.Connection:
        return sqlite3.connect(path, isolation_level=None, timeout=10)

    def write_raw(key: str, text: str) -> None:
        with raw_connection() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tokenopt_store (key, value, expires_at) "
                "VALUES (?, ?, NULL)",
                (key, text),
            )

    def read_raw(key: str) -> str | None:
        with raw_connection() as conn:
            row = conn.execute("SELECT value FROM tokenopt_store WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def ttl_remaining(key: str) -> float | None:
        with raw_connection() as conn:
            row = conn.execute(
                "SELECT expires_at FROM tokenopt_store WHERE key = ?", (key,)
            ).fetchone()
        assert row is not None, f"{key!r} is not stored"
        return None if row[0] is None else float(row[0]) - clock.now

    return StoreHarness(
        store=store,
        short_ttl_seconds=short,
        expire=lambda _key: clock.advance(short + 1),
        let_time_pass=clock.advance,
        write_raw=write_raw,
        read_raw=read_raw,
        ttl_remaining=ttl_remaining,
    )


async def collect(iterator: Any) -> list[tuple[str, Any]]:
    return [item async for item in iterator]


JSON_VALUES = [
    {"a": [1, 2.5, None, True], "nested": {"é": "ünïcødé ✓"}},
    [1, "two", 3.0],
    'text with "quotes" and \\ and \n',
    "",
    0,
    -17,
    2**62,
    3.25,
    True,
    False,
]


def nested_list(depth: int) -> Any:
    """`depth` lists inside each other, built without recursion."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


# Written into a store by something else: 100,000 levels deep (json.loads would raise
# RecursionError), not JSON, NaN, a float that overflows, an int of 5,000 digits.
DEEP_RAW = "[" * 100_000 + "]" * 100_000
UNREADABLE_VALUES = [
    DEEP_RAW,
    '{"a":' * 100_000 + "1" + "}" * 100_000,
    "not json {",
    "{{{",
    "NaN",
    "[1e999]",
    "9" * 5000,
    "-" + "9" * 4301,
]


def unreadable_id(raw: Any) -> str:
    return f"{raw[:8]}..{len(raw)}"


NOT_JSON_VALUES = [object(), {1, 2}, float("nan"), float("inf"), b"bytes", {"k": object()}]

GLOB_PREFIXES = ["p*", "p?", "p[x]", "p[", "p]", "p\\", "p^"]
GLOB_KEYS = ["p*:1", "p?:1", "p[x]:1", "p[:1", "p]:1", "p\\:1", "p^:1", "px:1", "pa:1", "p:1"]


class StoreContract:
    """What every `Store` guarantees. Subclasses provide a `harness` fixture."""

    # -- get / set / delete ------------------------------------------------------

    def test_store_satisfies_the_protocol(self, harness: StoreHarness) -> None:
        assert isinstance(harness.store, Store)

    def test_get_of_a_missing_key_is_none(self, harness: StoreHarness) -> None:
        assert harness.store.get("nothing:here") is None

    @pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
    def test_set_then_get_round_trips_json_values(self, harness: StoreHarness, value: Any) -> None:
        harness.store.set("k", value)
        got = harness.store.get("k")
        assert got == value
        assert type(got) is type(value)

    def test_values_are_stored_as_json_text(self, harness: StoreHarness) -> None:
        harness.store.set("k", {"b": [1, 2.5]})
        raw = harness.read_raw("k")
        assert raw is not None
        assert json.loads(raw) == {"b": [1, 2.5]}

    def test_tuples_come_back_as_lists_as_json_does(self, harness: StoreHarness) -> None:
        harness.store.set("k", (1, 2))
        assert harness.store.get("k") == [1, 2]

    def test_mutating_a_got_value_does_not_change_the_stored_one(
        self, harness: StoreHarness
    ) -> None:
        harness.store.set("k", {"items": [1]})
        got = harness.store.get("k")
        got["items"].append(2)
        assert harness.store.get("k") == {"items": [1]}

    def test_mutating_a_value_after_set_does_not_change_the_stored_one(
        self, harness: StoreHarness
    ) -> None:
        value = {"items": [1]}
        harness.store.set("k", value)
        value["items"].append(2)
        assert harness.store.get("k") == {"items": [1]}

    @pytest.mark.parametrize("value", NOT_JSON_VALUES, ids=repr)
    def test_set_refuses_a_non_json_value_and_keeps_the_old_one(
        self, harness: StoreHarness, value: Any
    ) -> None:
        harness.store.set("k", "old")
        with pytest.raises(TypeError, match="JSON"):
            harness.store.set("k", value)
        assert harness.store.get("k") == "old"

    @pytest.mark.parametrize("key", [1, b"k", None])
    def test_keys_must_be_strings(self, harness: StoreHarness, key: Any) -> None:
        with pytest.raises(TypeError, match="keys must be str"):
            harness.store.set(key, 1)
        with pytest.raises(TypeError, match="keys must be str"):
            harness.store.get(key)

    def test_set_overwrites_the_value_and_its_ttl(self, harness: StoreHarness) -> None:
        harness.store.set("k", 1, ttl_seconds=LONG_TTL_SECONDS)
        harness.store.set("k", 2)
        assert harness.store.get("k") == 2
        assert harness.ttl_remaining("k") is None

    def test_value_with_ttl_is_live_before_it_expires(self, harness: StoreHarness) -> None:
        harness.store.set("k", "v", ttl_seconds=LONG_TTL_SECONDS)
        harness.let_time_pass(LONG_TTL_SECONDS - 1)
        assert harness.store.get("k") == "v"
        remaining = harness.ttl_remaining("k")
        assert remaining is not None and 0 < remaining <= LONG_TTL_SECONDS

    def test_value_with_ttl_is_gone_after_it_expires(self, harness: StoreHarness) -> None:
        harness.store.set("k", "v", ttl_seconds=harness.short_ttl_seconds)
        harness.store.set("keep", "v")
        harness.expire("k")
        assert harness.store.get("k") is None
        assert harness.store.get("keep") == "v"

    @pytest.mark.parametrize(
        ("ttl", "error"),
        [(0, ValueError), (-1, ValueError), (float("nan"), ValueError), ("10", TypeError)],
    )
    def test_ttl_must_be_a_positive_number(
        self, harness: StoreHarness, ttl: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="ttl_seconds"):
            harness.store.set("k", 1, ttl_seconds=ttl)
        with pytest.raises(error, match="ttl_seconds"):
            harness.store.add("k", 1, ttl_seconds=ttl)
        assert harness.store.get("k") is None

    def test_delete_reports_whether_the_key_existed(self, harness: StoreHarness) -> None:
        harness.store.set("k", 1)
        assert harness.store.delete("k") is True
        assert harness.store.get("k") is None
        assert harness.store.delete("k") is False

    def test_delete_of_an_expired_key_reports_false(self, harness: StoreHarness) -> None:
        harness.store.set("k", 1, ttl_seconds=harness.short_ttl_seconds)
        harness.expire("k")
        assert harness.store.delete("k") is False

    # -- add ---------------------------------------------------------------------

    def test_add_to_a_missing_key_starts_from_zero(self, harness: StoreHarness) -> None:
        assert harness.store.add("n", 5) == 5
        assert harness.store.get("n") == 5

    def test_add_keeps_ints_as_ints(self, harness: StoreHarness) -> None:
        harness.store.add("n", 2)
        result = harness.store.add("n", 3)
        assert result == 5 and type(result) is int
        assert type(harness.store.get("n")) is int

    def test_add_handles_ints_beyond_float_precision_exactly(self, harness: StoreHarness) -> None:
        harness.store.set("n", 2**62)
        assert harness.store.add("n", 1) == 2**62 + 1

    @pytest.mark.parametrize(("start", "amount"), [(2, 0.5), (2.5, 1), (2.0, 1.0), (2, 1.0)])
    def test_add_with_a_float_on_either_side_makes_a_float(
        self, harness: StoreHarness, start: float, amount: float
    ) -> None:
        harness.store.set("n", start)
        result = harness.store.add("n", amount)
        assert result == start + amount and type(result) is float
        stored = harness.store.get("n")
        assert stored == start + amount and type(stored) is float

    def test_add_matches_python_float_arithmetic(self, harness: StoreHarness) -> None:
        harness.store.add("n", 0.1)
        assert harness.store.add("n", 0.2) == 0.1 + 0.2
        assert harness.store.get("n") == 0.1 + 0.2

    def test_add_accepts_negative_amounts(self, harness: StoreHarness) -> None:
        harness.store.add("n", 10)
        assert harness.store.add("n", -15) == -5

    def test_add_sets_the_ttl_only_when_it_creates_the_key(self, harness: StoreHarness) -> None:
        harness.store.add("n", 1, ttl_seconds=100)
        first = harness.ttl_remaining("n")
        assert first is not None and 90 < first <= 100
        harness.store.add("n", 1, ttl_seconds=LONG_TTL_SECONDS)
        again = harness.ttl_remaining("n")
        assert again is not None and again <= 100
        assert harness.store.get("n") == 2

    def test_add_without_ttl_keeps_an_existing_expiry(self, harness: StoreHarness) -> None:
        harness.store.set("n", 5, ttl_seconds=100)
        harness.store.add("n", 1)
        remaining = harness.ttl_remaining("n")
        assert remaining is not None and remaining <= 100

    def test_key_created_by_add_with_ttl_expires_and_restarts_from_zero(
        self, harness: StoreHarness
    ) -> None:
        harness.store.add("n", 7, ttl_seconds=harness.short_ttl_seconds)
        harness.expire("n")
        assert harness.store.get("n") is None
        assert harness.store.add("n", 1) == 1

    def test_max_value_refuses_an_add_that_would_exceed_it(self, harness: StoreHarness) -> None:
        harness.store.add("n", 8)
        assert harness.store.add("n", 3, max_value=10) is None
        assert harness.store.get("n") == 8

    def test_max_value_allows_reaching_the_limit_exactly(self, harness: StoreHarness) -> None:
        harness.store.add("n", 8)
        assert harness.store.add("n", 2, max_value=10) == 10
        assert harness.store.add("n", 0.5, max_value=10.25) is None
        assert harness.store.get("n") == 10

    def test_max_value_works_with_floats(self, harness: StoreHarness) -> None:
        assert harness.store.add("usd", 0.75, max_value=1.0) == 0.75
        assert harness.store.add("usd", 0.3, max_value=1.0) is None
        assert harness.store.add("usd", 0.25, max_value=1.0) == 1.0

    def test_refused_add_on_a_missing_key_creates_nothing(self, harness: StoreHarness) -> None:
        assert harness.store.add("n", 5, max_value=4, ttl_seconds=100) is None
        assert harness.store.get("n") is None
        assert harness.read_raw("n") is None

    def test_a_refund_is_allowed_under_the_limit(self, harness: StoreHarness) -> None:
        harness.store.add("n", 10)
        assert harness.store.add("n", -3, max_value=10) == 7

    @pytest.mark.parametrize("value", ["abc", [1], {"a": 1}, True, None], ids=repr)
    def test_add_to_a_non_number_raises_and_keeps_the_value(
        self, harness: StoreHarness, value: Any
    ) -> None:
        harness.store.set("n", value)
        with pytest.raises(TypeError, match="not a number"):
            harness.store.add("n", 1)
        assert harness.store.get("n") == value

    @pytest.mark.parametrize(
        ("amount", "max_value", "error"),
        [
            (True, None, TypeError),
            ("1", None, TypeError),
            (None, None, TypeError),
            (float("nan"), None, ValueError),
            (float("inf"), None, ValueError),
            (1, float("nan"), ValueError),
            (1, "10", TypeError),
        ],
    )
    def test_add_refuses_bad_amounts_and_limits(
        self, harness: StoreHarness, amount: Any, max_value: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            harness.store.add("n", amount, max_value=max_value)
        assert harness.store.get("n") is None

    def test_adds_from_many_threads_give_the_exact_total(self, harness: StoreHarness) -> None:
        def worker() -> None:
            for _ in range(100):
                harness.store.add("n", 1)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert harness.store.get("n") == 400

    def test_capped_adds_from_many_threads_never_exceed_the_limit(
        self, harness: StoreHarness
    ) -> None:
        accepted = [0] * 4

        def worker(index: int) -> None:
            for _ in range(50):
                if harness.store.add("n", 1, max_value=120) is not None:
                    accepted[index] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert harness.store.get("n") == 120
        assert sum(accepted) == 120

    # -- scan / clear ------------------------------------------------------------

    def test_scan_yields_exactly_the_live_keys_under_the_prefix(
        self, harness: StoreHarness
    ) -> None:
        for key in ["a:1", "a:2", "a:", "ab:1", "b:a:1", "A:1"]:
            harness.store.set(key, key.upper())
        assert dict(harness.store.scan("a:")) == {"a:1": "A:1", "a:2": "A:2", "a:": "A:"}
        assert sorted(k for k, _ in harness.store.scan("a")) == ["a:", "a:1", "a:2", "ab:1"]

    def test_scan_with_an_empty_prefix_yields_everything(self, harness: StoreHarness) -> None:
        for key in ["x", "y:1", "z:2"]:
            harness.store.set(key, 1)
        assert sorted(k for k, _ in harness.store.scan("")) == ["x", "y:1", "z:2"]

    @pytest.mark.parametrize("prefix", GLOB_PREFIXES)
    def test_scan_treats_glob_characters_in_the_prefix_literally(
        self, harness: StoreHarness, prefix: str
    ) -> None:
        for key in GLOB_KEYS:
            harness.store.set(key, key)
        expected = sorted(k for k in GLOB_KEYS if k.startswith(prefix))
        assert expected, "the test needs a key under every prefix"
        assert sorted(k for k, _ in harness.store.scan(prefix)) == expected

    def test_scan_skips_expired_keys(self, harness: StoreHarness) -> None:
        harness.store.set("s:old", 1, ttl_seconds=harness.short_ttl_seconds)
        harness.store.set("s:new", 2)
        harness.expire("s:old")
        assert list(harness.store.scan("s:")) == [("s:new", 2)]

    def test_scan_yields_each_key_once_across_many_pages(self, harness: StoreHarness) -> None:
        keys = {f"many:{i:04d}": i for i in range(1200)}
        for key, value in keys.items():
            harness.store.set(key, value)
        harness.store.set("other:1", 1)
        scanned = list(harness.store.scan("many:"))
        assert len(scanned) == len(keys)
        assert dict(scanned) == keys

    def test_scan_prefix_ending_in_the_highest_code_point(self, harness: StoreHarness) -> None:
        top = chr(0x10FFFF)
        harness.store.set(f"u{top}", 1)
        harness.store.set(f"u{top}{top}x", 2)
        harness.store.set("v", 3)
        assert sorted(k for k, _ in harness.store.scan(f"u{top}")) == [f"u{top}", f"u{top}{top}x"]

    def test_clear_removes_only_that_namespace(self, harness: StoreHarness) -> None:
        for key in ["ns:a", "ns:b", "ns:sub:c", "ns", "ns2:a", "nsx", "other:ns:a"]:
            harness.store.set(key, 1)
        assert harness.store.clear("ns") == 3
        assert sorted(k for k, _ in harness.store.scan("")) == [
            "ns",
            "ns2:a",
            "nsx",
            "other:ns:a",
        ]
        assert harness.store.clear("ns") == 0

    @pytest.mark.parametrize("namespace", GLOB_PREFIXES)
    def test_clear_treats_glob_characters_literally(
        self, harness: StoreHarness, namespace: str
    ) -> None:
        for key in GLOB_KEYS:
            harness.store.set(key, 1)
        assert harness.store.clear(namespace) == 1
        remaining = sorted(k for k, _ in harness.store.scan(""))
        assert remaining == sorted(k for k in GLOB_KEYS if k != namespace + ":1")

    def test_clear_does_not_count_expired_keys(self, harness: StoreHarness) -> None:
        harness.store.set("ns:old", 1, ttl_seconds=harness.short_ttl_seconds)
        harness.store.set("ns:new", 1)
        harness.expire("ns:old")
        assert harness.store.clear("ns") == 1
        assert harness.read_raw("ns:old") is None

    # -- corrupt data: left in place, named, never a RecursionError ----------------

    @pytest.mark.parametrize("raw", UNREADABLE_VALUES, ids=unreadable_id)
    def test_get_of_a_value_that_cannot_be_decoded_raises_corrupt_state_error(
        self, harness: StoreHarness, raw: str
    ) -> None:
        harness.write_raw("k", raw)
        with pytest.raises(CorruptStateError) as caught:
            harness.store.get("k")
        assert caught.value.key == "k"
        assert "delete the key" in str(caught.value)
        assert harness.read_raw("k") == raw  # the store deletes nothing it cannot read

    @pytest.mark.parametrize("raw", UNREADABLE_VALUES, ids=unreadable_id)
    def test_scan_skips_a_value_that_cannot_be_decoded_and_warns_once(
        self, harness: StoreHarness, raw: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        key = f"c:bad-{uuid.uuid4().hex}"  # a fresh key: the warning is once per key
        harness.write_raw(key, raw)
        harness.store.set("c:good", 1)
        with caplog.at_level(logging.WARNING):
            assert list(harness.store.scan("c:")) == [("c:good", 1)]
            assert list(harness.store.scan("c:")) == [("c:good", 1)]
        assert harness.read_raw(key) == raw
        assert caplog.text.count(f"{key!r} cannot be read") == 1

    @pytest.mark.parametrize("raw", UNREADABLE_VALUES, ids=unreadable_id)
    def test_add_to_a_value_that_cannot_be_decoded_raises_and_changes_nothing(
        self, harness: StoreHarness, raw: str
    ) -> None:
        harness.write_raw("n", raw)
        for max_value in (None, 10):
            with pytest.raises(CorruptStateError, match="'n'"):
                harness.store.add("n", 2, max_value=max_value)
        assert harness.read_raw("n") == raw

    def test_a_value_too_large_to_read_is_corrupt(
        self, harness: StoreHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(boundedjson, "MAX_JSON_BYTES", 1000)
        harness.write_raw("big", json.dumps("x" * 1000))
        with pytest.raises(CorruptStateError, match="over the limit"):
            harness.store.get("big")

    def test_set_refuses_a_value_too_large_to_read_back(
        self, harness: StoreHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(boundedjson, "MAX_JSON_BYTES", 1000)
        with pytest.raises(UnstorableValueError, match="over the limit"):
            harness.store.set("big", "x" * 1000)
        assert harness.read_raw("big") is None

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
    def test_set_refuses_a_value_nested_too_deep_before_writing(
        self, harness: StoreHarness, depth: int
    ) -> None:
        harness.store.set("k", "old")
        with pytest.raises(UnstorableValueError, match="nested deeper than 128"):
            harness.store.set("k", nested_list(depth))
        assert harness.store.get("k") == "old"

    def test_a_value_nested_to_the_limit_round_trips(self, harness: StoreHarness) -> None:
        value = nested_list(MAX_JSON_DEPTH)
        harness.store.set("k", value)
        assert harness.store.get("k") == value

    # -- several writes at once (what a cache flush sends) -------------------------

    def test_set_many_writes_each_value_with_its_own_ttl(self, harness: StoreHarness) -> None:
        store, short = harness.store, harness.short_ttl_seconds
        store.set("kept", "old")
        store.set_many([("kept", {"v": 1}, None), ("brief", [2], short), ("third", 3.5, None)])
        assert (store.get("kept"), store.get("brief"), store.get("third")) == ({"v": 1}, [2], 3.5)
        assert harness.ttl_remaining("kept") is None
        remaining = harness.ttl_remaining("brief")
        assert remaining is not None and 0 < remaining <= short
        harness.expire("brief")
        assert store.get("brief") is None and store.get("kept") == {"v": 1}

    def test_set_many_refuses_a_bad_value_before_writing_any(self, harness: StoreHarness) -> None:
        with pytest.raises(TypeError, match="JSON"):
            harness.store.set_many([("a", 1, None), ("b", object(), None)])
        with pytest.raises(ValueError, match="ttl_seconds"):
            harness.store.set_many([("a", 1, None), ("b", 2, -1.0)])
        assert harness.store.get("a") is None

    def test_set_many_of_nothing_writes_nothing(self, harness: StoreHarness) -> None:
        harness.store.set_many([])
        assert list(harness.store.scan("")) == []

    async def test_async_set_many(self, harness: StoreHarness) -> None:
        await harness.store.aset_many([("a", 1, None), ("b", {"x": [2]}, None)])
        assert await harness.store.aget("a") == 1
        assert await harness.store.aget("b") == {"x": [2]}

    # -- async twins -------------------------------------------------------------

    async def test_async_set_get_delete(self, harness: StoreHarness) -> None:
        store = harness.store
        assert await store.aget("k") is None
        await store.aset("k", {"v": [1, 2]})
        assert await store.aget("k") == {"v": [1, 2]}
        assert store.get("k") == {"v": [1, 2]}
        assert await store.adelete("k") is True
        assert await store.adelete("k") is False
        assert await store.aget("k") is None

    async def test_async_set_refuses_a_non_json_value(self, harness: StoreHarness) -> None:
        with pytest.raises(TypeError, match="JSON"):
            await harness.store.aset("k", object())
        assert await harness.store.aget("k") is None

    async def test_async_value_with_ttl_expires(self, harness: StoreHarness) -> None:
        await harness.store.aset("k", 1, ttl_seconds=harness.short_ttl_seconds)
        harness.expire("k")
        assert await harness.store.aget("k") is None

    async def test_async_add_semantics(self, harness: StoreHarness) -> None:
        store = harness.store
        assert await store.aadd("n", 2, ttl_seconds=100) == 2
        result = await store.aadd("n", 3)
        assert result == 5 and type(result) is int
        assert await store.aadd("n", 6, max_value=10) is None
        float_result = await store.aadd("n", 0.5, max_value=10)
        assert float_result == 5.5 and type(float_result) is float
        remaining = harness.ttl_remaining("n")
        assert remaining is not None and remaining <= 100

    async def test_async_adds_running_concurrently_give_the_exact_total(
        self, harness: StoreHarness
    ) -> None:
        results = await asyncio.gather(
            *(harness.store.aadd("n", 1, max_value=150) for _ in range(200))
        )
        assert harness.store.get("n") == 150
        assert sorted(r for r in results if r is not None) == list(range(1, 151))

    async def test_async_scan_and_clear(self, harness: StoreHarness) -> None:
        store = harness.store
        for key in GLOB_KEYS:
            await store.aset(key, key)
        assert await collect(store.ascan("p[x]")) == [("p[x]:1", "p[x]:1")]
        assert sorted(k for k, _ in await collect(store.ascan("p"))) == sorted(GLOB_KEYS)
        assert await store.aclear("p*") == 1
        assert await store.aget("p*:1") is None
        assert await store.aget("px:1") == "px:1"

    async def test_async_scan_skips_a_corrupt_value(self, harness: StoreHarness) -> None:
        harness.write_raw("c:bad", DEEP_RAW)
        await harness.store.aset("c:good", True)
        assert await collect(harness.store.ascan("c:")) == [("c:good", True)]
        assert harness.read_raw("c:bad") == DEEP_RAW

    async def test_async_get_and_add_of_a_corrupt_value_raise(self, harness: StoreHarness) -> None:
        harness.write_raw("k", DEEP_RAW)
        with pytest.raises(CorruptStateError, match="nested deeper"):
            await harness.store.aget("k")
        with pytest.raises(CorruptStateError):
            await harness.store.aadd("k", 1, max_value=5)
        assert harness.read_raw("k") == DEEP_RAW

    async def test_async_set_refuses_a_deep_value(self, harness: StoreHarness) -> None:
        with pytest.raises(UnstorableValueError):
            await harness.store.aset("k", nested_list(100_000))
        assert await harness.store.aget("k") is None


class TestMemoryAndSQLiteStores(StoreContract):
    """The contract on `MemoryStore` and on `SQLiteStore` over a file."""

    @pytest.fixture(params=["memory", "sqlite"])
    def harness(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreHarness]:
        if request.param == "memory":
            built = memory_harness()
        else:
            built = sqlite_harness(tmp_path / "store.db")
        yield built
        built.store.close()


# -- backend specifics ---------------------------------------------------------


def test_memory_store_evicts_the_least_recently_used_key_beyond_max_entries() -> None:
    store = MemoryStore(max_entries=2)
    store.set("a", 1)
    store.set("b", 2)
    assert store.get("a") == 1  # "b" is now the least recently used
    store.set("c", 3)
    assert store.get("b") is None
    assert store.get("a") == 1 and store.get("c") == 3


def test_memory_store_evicts_expired_keys_before_the_least_recently_used() -> None:
    clock = FakeClock()
    store = MemoryStore(max_entries=2, time_func=clock)
    store.set("old", 1)
    store.set("short", 2, ttl_seconds=5)
    clock.advance(6)
    store.set("new", 3)
    assert store.get("old") == 1 and store.get("new") == 3


def test_memory_store_frees_expired_keys_that_are_never_read_again() -> None:
    clock = FakeClock()
    store = MemoryStore(time_func=clock)
    for i in range(100):
        store.set(f"k{i}", i, ttl_seconds=5)
    for _ in range(100):  # rewrites leave stale expiry records behind
        store.set("k0", 0, ttl_seconds=5)
    clock.advance(6)
    store.set("live", 1)
    assert list(store._data) == ["live"]
    assert len(store._expiries) <= 2 * len(store._data) + 64


def test_memory_store_decodes_a_value_once_until_it_changes() -> None:
    clock = FakeClock()
    store = MemoryStore(max_entries=10, time_func=clock)
    calls: list[str] = []

    def decode_text(text: str) -> Any:
        calls.append(text)
        return json.loads(text)

    assert store.get_decoded("k", decode_text) is None
    store.set("k", {"a": 1}, ttl_seconds=5)
    first = store.get_decoded("k", decode_text)
    assert first == {"a": 1} and store.get_decoded("k", decode_text) is first
    assert calls == ['{"a":1}']
    assert store.get_decoded("k", json.loads) == first  # another decoder: its own result
    store.set("k", {"a": 2}, ttl_seconds=5)
    assert store.get_decoded("k", decode_text) == {"a": 2}
    store.add("n", 1)
    store.add("n", 1)
    assert store.get_decoded("n", decode_text) == 2
    store.add("n", 1)
    assert store.get_decoded("n", decode_text) == 3  # an add is a new value too
    clock.advance(6)
    assert store.get_decoded("k", decode_text) is None
    assert len(calls) == 4


@pytest.mark.parametrize("max_entries", [None, 2])
def test_memory_store_get_decoded_expires_and_marks_used_like_get(
    max_entries: int | None,
) -> None:
    clock = FakeClock()
    store = MemoryStore(max_entries=max_entries, time_func=clock)
    store.set("old", 1, ttl_seconds=5)
    store.set("new", 2)
    assert store.get_decoded("old", json.loads) == 1  # now the most recently used
    store.set("third", 3)  # bounded: evicts "new", the least recently used
    assert (store.get("new") is None) == (max_entries == 2)
    clock.advance(6)
    assert store.get_decoded("old", json.loads) is None
    assert "old" not in store._data  # dropped on read, as `get` drops it


def test_memory_store_keeps_nothing_when_decoding_fails() -> None:
    store = MemoryStore()
    store.set("k", [1])

    def refuse(text: str) -> Any:
        raise ValueError("unreadable")

    with pytest.raises(ValueError, match="unreadable"):
        store.get_decoded("k", refuse)
    assert store.get_decoded("k", json.loads) == [1]


@pytest.mark.parametrize("max_entries", [0, -1, 1.5, True])
def test_memory_store_refuses_a_bad_max_entries(max_entries: Any) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=max_entries)


def test_sqlite_in_memory_database_is_shared_by_the_threads_of_its_store() -> None:
    store = SQLiteStore(":memory:")

    def worker() -> None:
        for _ in range(50):
            store.add("n", 1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("n") == 200
    assert SQLiteStore(":memory:").get("n") is None  # each ":memory:" store is private


def test_sqlite_state_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        store.set("k", {"kept": True})
        store.add("n", 3)
    with SQLiteStore(path) as reopened:
        assert reopened.get("k") == {"kept": True}
        assert reopened.add("n", 1) == 4


def test_sqlite_store_is_usable_again_after_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    store.set("k", 1)
    store.close()
    assert store.get("k") == 1


def test_two_sqlite_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "shared.db")
    second = SQLiteStore(tmp_path / "shared.db")
    first.set("k", "from first")
    assert second.get("k") == "from first"
    assert second.add("n", 1) == 1
    assert first.add("n", 1) == 2


def test_sqlite_file_uses_the_wal_journal(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "wal.db").set("k", 1)
    with sqlite3.connect(tmp_path / "wal.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_purges_expired_rows_as_it_writes(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "purge.db"
    store = SQLiteStore(path, time_func=clock)
    store.set("old", 1, ttl_seconds=5)
    clock.advance(10)
    for i in range(1000):
        store.set(f"k{i % 10}", i)
    with sqlite3.connect(path) as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM tokenopt_store WHERE key = 'old'").fetchone()[0] == 0
        )


def test_sqlite_locked_database_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, busy_timeout_seconds=0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailableError, match="locked"):
            store.add("n", 1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.add("n", 1) == 1


def test_sqlite_unopenable_path_raises_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="SQLite store"):
        SQLiteStore(tmp_path / "no" / "such" / "dir" / "x.db")


def test_sqlite_file_that_is_not_a_database_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "text.db"
    path.write_text("this is not a database, " * 100)
    with pytest.raises(StoreUnavailableError, match="not a"):
        SQLiteStore(path)


def test_redis_store_without_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_tokenopt.stores import RedisStore

    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` fail
    with pytest.raises(MissingExtraError, match=r"langchain-tokenopt\[redis\]"):
        RedisStore("redis://127.0.0.1:1/0")
