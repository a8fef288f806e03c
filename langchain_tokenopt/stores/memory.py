"""`MemoryStore`: state for one process, in an ordered dict with per-key expiry.

The default store: no setup, per-key TTL, optional LRU bound. Values are kept as JSON
text so what callers get back is always a fresh copy, exactly as with SQLite or Redis.
Keys live in an `OrderedDict` (least recently used first when bounded) and TTLs in a
heap of expiry times that each write drains, so a read is one dict lookup and at most
one clock read, and expired keys free their memory without being read again.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from langchain_tokenopt.core.validation import shown
from langchain_tokenopt.errors import InvalidArgumentError
from langchain_tokenopt.stores._common import (
    ClosesOnExit,
    CorruptValue,
    add_numbers,
    check_add,
    check_key,
    check_prefix,
    check_ttl,
    corrupt_error,
    decode,
    encode,
    stored_number,
    warn_skipped,
)
from langchain_tokenopt.stores.base import JSON, Number, Write

__all__ = ["MemoryStore"]

_T = TypeVar("_T")

# What the store holds per key: (JSON text, absolute expiry time or None, what
# `get_decoded` made of the text as (decode function, result), or None).
_Entry = tuple[str, float | None, tuple[Any, Any] | None]


class MemoryStore(ClosesOnExit):
    """A thread-safe in-process `Store` with per-key TTL and an optional size bound.

    `max_entries` bounds the number of keys; beyond it the least recently used key is
    evicted (expired keys go first). `time_func` is the clock TTLs are measured with
    (seconds, monotonic by default; tests inject a fake one).

    Example:
        >>> store = MemoryStore(max_entries=10_000)
        >>> store.set("cache:q1", {"answer": 42}, ttl_seconds=60)
        >>> store.get("cache:q1")
        {'answer': 42}
        >>> store.add("hits", 1), store.add("hits", 1)
        (1, 2)
    """

    def __init__(
        self,
        max_entries: int | None = None,
        *,
        time_func: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1
        ):
            raise InvalidArgumentError(
                f"max_entries must be a positive int or None, got {shown(max_entries)}"
            )
        self._time = time_func
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._data: OrderedDict[str, _Entry] = OrderedDict()
        # (expiry time, key) of every write with a TTL; an item whose key was
        # rewritten or deleted since is skipped when it comes out.
        self._expiries: list[tuple[float, str]] = []

    def __repr__(self) -> str:
        shown_max = math.inf if self._max_entries is None else self._max_entries
        return f"MemoryStore(max_entries={shown_max!r})"

    # -- internals (each must hold the lock) ---------------------------------------

    def _live(self, key: str) -> _Entry | None:
        """The entry at `key` unless absent or expired (then dropped); marks it used."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self._time():
            del self._data[key]
            return None
        if self._max_entries is not None:
            self._data.move_to_end(key)
        return entry

    def _put(self, key: str, text: str, expires_at: float | None, now: float) -> None:
        """Write an entry (without a memo), drop expired keys, then the least recently
        used beyond `max_entries`."""
        data = self._data
        data[key] = (text, expires_at, None)
        if self._max_entries is not None:
            data.move_to_end(key)
        expiries = self._expiries
        if expires_at is not None:
            heapq.heappush(expiries, (expires_at, key))
        self._expire(now)
        if len(expiries) > 2 * len(data) + 64:  # mostly rewritten keys: rebuild
            expiries[:] = [(e[1], k) for k, e in data.items() if e[1] is not None]
            heapq.heapify(expiries)
        if self._max_entries is not None:
            while len(data) > self._max_entries:
                data.popitem(last=False)

    def _expire(self, now: float) -> None:
        """Drop every key whose expiry time has come."""
        expiries, data = self._expiries, self._data
        while expiries and expiries[0][0] <= now:
            expires_at, key = heapq.heappop(expiries)
            entry = data.get(key)
            if entry is not None and entry[1] == expires_at:  # not rewritten since
                del data[key]

    def _load(self, key: str) -> tuple[_Entry | None, JSON]:
        """(entry, value) for `key`, entry None when missing.

        A value that cannot be decoded raises `CorruptStateError` and stays in place.
        """
        entry = self._live(key)
        if entry is None:
            return None, None
        try:
            return entry, decode(entry[0])
        except CorruptValue as exc:
            raise corrupt_error(repr(self), key, str(exc)) from None

    # -- sync API ----------------------------------------------------------------

    def get(self, key: str) -> JSON | None:
        """The value at `key`, or None if absent or expired."""
        check_key(key)
        with self._lock:
            return self._load(key)[1]

    def get_text(self, key: str) -> str | None:
        """The JSON text stored at `key`, undecoded, or None if absent or expired.

        It is the very object `set` stored, so a caller that keeps what it decoded
        from it can tell, by comparing texts, whether the value is still the same.

        Example:
            >>> store = MemoryStore()
            >>> store.set("k", {"a": 1})
            >>> store.get_text("k")
            '{"a":1}'
        """
        check_key(key)
        with self._lock:
            entry = self._live(key)
        return None if entry is None else entry[0]

    def get_decoded(self, key: str, decode_text: Callable[[str], _T]) -> _T | None:
        """`decode_text(text)` of the JSON text at `key`, decoded once per stored value.

        The result is kept with the value until the key is written, deleted, expired
        or evicted, and returned as is by later calls with an equal `decode_text`:
        the caller must not mutate it (copy what it hands out). None if the key is
        absent or expired; what `decode_text` raises propagates and nothing is kept.

        Example:
            >>> import json
            >>> store = MemoryStore()
            >>> store.set("k", {"a": 1})
            >>> first = store.get_decoded("k", json.loads)
            >>> first, store.get_decoded("k", json.loads) is first
            ({'a': 1}, True)
        """
        if type(key) is not str:
            check_key(key)
        # The cache's hit path: one dict read (a single C call, atomic under the GIL)
        # needs no lock; dropping an expired entry or marking one used does.
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._max_entries is not None or (entry[1] is not None and entry[1] <= self._time()):
            with self._lock:
                entry = self._live(key)
            if entry is None:
                return None
        memo = entry[2]
        if memo is not None and (memo[0] is decode_text or memo[0] == decode_text):
            kept: _T = memo[1]
            return kept
        value = decode_text(entry[0])
        with self._lock:
            if self._data.get(key) is entry:  # not rewritten meanwhile
                self._data[key] = (entry[0], entry[1], (decode_text, value))
        return value

    def set(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Store `value` at `key`, expiring after `ttl_seconds` when given."""
        check_key(key)
        ttl = check_ttl(ttl_seconds)
        text = encode(value, key)
        with self._lock:
            now = self._time()
            self._put(key, text, None if ttl is None else now + ttl, now)

    def set_many(self, writes: Sequence[Write]) -> None:
        """`set` for each (key, value, ttl_seconds), all checked before any is written."""
        checked = [
            (check_key(key), encode(value, key), check_ttl(ttl)) for key, value, ttl in writes
        ]
        with self._lock:
            now = self._time()
            for key, text, ttl in checked:
                self._put(key, text, None if ttl is None else now + ttl, now)

    def delete(self, key: str) -> bool:
        """Remove `key`; True if it existed."""
        check_key(key)
        with self._lock:
            entry = self._data.pop(key, None)
            return entry is not None and (entry[1] is None or entry[1] > self._time())

    def add(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        """Atomically add `amount` to the number at `key` (missing = 0); see `Store.add`."""
        ttl = check_add(key, amount, ttl_seconds, max_value)
        with self._lock:
            entry, value = self._load(key)
            current = 0 if entry is None else stored_number(key, value)
            result = add_numbers(current, amount)
            if max_value is not None and result > max_value:
                return None
            # An existing key keeps its expiry; only a new key gets `ttl_seconds`.
            now = self._time()
            if entry is None:
                self._put(key, encode(result, key), None if ttl is None else now + ttl, now)
            else:  # its expiry is already in the heap
                self._data[key] = (encode(result, key), entry[1], None)
            return result

    def scan(self, prefix: str) -> Iterator[tuple[str, JSON]]:
        """Every live (key, value) whose key starts with `prefix`, in key order."""
        check_prefix(prefix)
        with self._lock:
            self._expire(self._time())
            snapshot = sorted(
                (key, entry[0]) for key, entry in self._data.items() if key.startswith(prefix)
            )
        return self._decode_snapshot(snapshot)

    def _decode_snapshot(self, snapshot: list[tuple[str, str]]) -> Iterator[tuple[str, JSON]]:
        for key, text in snapshot:
            try:
                value = decode(text)
            except CorruptValue as exc:
                warn_skipped(repr(self), key, str(exc))
                continue
            yield key, value

    def clear(self, namespace: str) -> int:
        """Delete every key starting with `namespace + ":"`; return how many."""
        prefix = check_prefix(namespace, "namespace") + ":"
        with self._lock:
            self._expire(self._time())
            doomed = [key for key in self._data if key.startswith(prefix)]
            for key in doomed:
                del self._data[key]
            return len(doomed)

    def close(self) -> None:
        """Nothing to release; present so every store can be closed the same way."""

    # -- async API: every operation is in-memory and brief, so it runs inline ----

    async def aget(self, key: str) -> JSON | None:
        """Async `get`."""
        return self.get(key)

    async def aset(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Async `set`."""
        self.set(key, value, ttl_seconds)

    async def aset_many(self, writes: Sequence[Write]) -> None:
        """Async `set_many`."""
        self.set_many(writes)

    async def adelete(self, key: str) -> bool:
        """Async `delete`."""
        return self.delete(key)

    async def aadd(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        """Async `add`."""
        return self.add(key, amount, ttl_seconds=ttl_seconds, max_value=max_value)

    async def ascan(self, prefix: str) -> AsyncIterator[tuple[str, JSON]]:
        """Async `scan`."""
        for item in self.scan(prefix):
            yield item

    async def aclear(self, namespace: str) -> int:
        """Async `clear`."""
        return self.clear(namespace)

    async def aclose(self) -> None:
        """Async `close`."""
        self.close()
