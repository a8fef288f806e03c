"""`MemoryStore`: state for one process, in a cachetools TLRU cache.

The default store: no setup, per-key TTL, optional LRU bound. Values are kept as JSON
text so what callers get back is always a fresh copy, exactly as with SQLite or Redis.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

from cachetools import TLRUCache

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
from langchain_tokenopt.stores.base import JSON, Number

__all__ = ["MemoryStore"]

# What the cache holds per key: (JSON text, absolute expiry time or None).
_Entry = tuple[str, float | None]


def _time_to_use(_key: str, entry: _Entry, _now: float) -> float:
    expires_at = entry[1]
    return math.inf if expires_at is None else expires_at


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
        self._lock = threading.RLock()
        maxsize: float = math.inf if max_entries is None else max_entries
        self._cache: TLRUCache[str, _Entry] = TLRUCache(
            maxsize=maxsize, ttu=_time_to_use, timer=time_func
        )

    def __repr__(self) -> str:
        return f"MemoryStore(max_entries={self._cache.maxsize!r})"

    # -- internals ---------------------------------------------------------------

    def _expires_at(self, ttl_seconds: float | None) -> float | None:
        return None if ttl_seconds is None else self._time() + ttl_seconds

    def _load(self, key: str) -> tuple[_Entry | None, JSON]:
        """(entry, value) for `key`, entry None when missing; must hold the lock.

        A value that cannot be decoded raises `CorruptStateError` and stays in place.
        """
        entry = self._cache.get(key)
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
            entry = self._cache.get(key)
        return None if entry is None else entry[0]

    def set(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Store `value` at `key`, expiring after `ttl_seconds` when given."""
        check_key(key)
        ttl = check_ttl(ttl_seconds)
        text = encode(value, key)
        with self._lock:
            self._cache[key] = (text, self._expires_at(ttl))

    def delete(self, key: str) -> bool:
        """Remove `key`; True if it existed."""
        check_key(key)
        with self._lock:
            existed = key in self._cache
            self._cache.pop(key, None)
            return existed

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
            expires_at = self._expires_at(ttl) if entry is None else entry[1]
            self._cache[key] = (encode(result, key), expires_at)
            return result

    def scan(self, prefix: str) -> Iterator[tuple[str, JSON]]:
        """Every live (key, value) whose key starts with `prefix`, in key order."""
        check_prefix(prefix)
        with self._lock:
            self._cache.expire()
            snapshot = sorted(
                (key, entry[0]) for key, entry in self._cache.items() if key.startswith(prefix)
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
            self._cache.expire()
            doomed = [key for key in self._cache if key.startswith(prefix)]
            for key in doomed:
                self._cache.pop(key, None)
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
