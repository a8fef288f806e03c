"""The `Store` protocol: where every component keeps its state.

Budgets, caches, usage records and summaries all live behind this one small interface,
so a user moves from one process (`MemoryStore`) to one machine (`SQLiteStore`) to many
machines (`RedisStore`) by changing a constructor argument, not the components.

Values are JSON-compatible (dict, list, str, int, float, bool, None), stored as JSON,
never pickled; they round-trip as JSON does (tuples come back as lists). Keys are plain
strings; a namespace is a key prefix followed by ":".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

JSON = Any  # a JSON-serializable value
Number = int | float
# (key, value, ttl_seconds) of one write in `set_many`.
Write = tuple[str, JSON, float | None]


@runtime_checkable
class Store(Protocol):
    """Get / set with TTL / delete / atomic add / scan by prefix / clear a namespace.

    Guarantees every implementation keeps:
    - `set` refuses a value that is not JSON-serializable with `ArgumentTypeError` (a
      `TypeError`), and one nested deeper than 128 levels or larger than 32 MiB of JSON with
      `UnstorableValueError`, before anything is written; `get` returns a fresh copy,
      so callers cannot change stored state by mutating what they got.
    - A stored value that cannot be decoded within those limits (written by
      something else, or damaged: not JSON, too deep, too large, NaN) is never
      deleted by the store: `get` and `add` raise `CorruptStateError` naming the key,
      `scan` skips it and logs a warning once per key. Each component decides what
      an unreadable value means (a cache miss; a budget or history error).
    - `add` is atomic, also across threads and (SQLite, Redis) processes.
    - A backend that cannot be reached raises `StoreUnavailableError` promptly.
    - `scan` order is unspecified; each live key is yielded once.
    - Every method has an async twin (`aget`, `aset`, ...; `ascan` is an async iterator).

    Example:
        >>> from langchain_tokenopt.stores import MemoryStore
        >>> store = MemoryStore()
        >>> store.set("budget:alice", {"limit": 100}, ttl_seconds=3600)
        >>> store.add("spent:alice", 30, max_value=100)
        30
        >>> store.add("spent:alice", 80, max_value=100) is None  # would exceed the limit
        True
        >>> sorted(k for k, _ in store.scan("spent:"))
        ['spent:alice']
    """

    def get(self, key: str) -> JSON | None:
        """The value at `key`, or None if absent or expired."""

    def set(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Store `value` at `key`, expiring after `ttl_seconds` when given."""

    def delete(self, key: str) -> bool:
        """Remove `key`; True if it existed."""

    def add(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        """Atomically add `amount` to the number at `key` (missing = 0); return the new value.

        With `max_value`, the add happens only if the result stays <= `max_value`
        (atomic check-and-add); otherwise nothing changes and None is returned.
        `ttl_seconds` applies only when the key is created by this call.
        Ints stay ints when both are ints; a float amount makes a float.
        """

    def scan(self, prefix: str) -> Iterator[tuple[str, JSON]]:
        """Every live (key, value) whose key starts with `prefix`."""

    def clear(self, namespace: str) -> int:
        """Delete every key starting with `namespace + ":"`; return how many."""

    async def aget(self, key: str) -> JSON | None: ...
    async def aset(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None: ...
    async def adelete(self, key: str) -> bool: ...
    async def aadd(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None: ...
    def ascan(self, prefix: str) -> AsyncIterator[tuple[str, JSON]]: ...
    async def aclear(self, namespace: str) -> int: ...


def set_many(store: Store, writes: Sequence[Write]) -> None:
    """`store.set(key, value, ttl_seconds)` for each write, through the store's own
    `set_many` when it has one (the built-in stores: one lock, one transaction, one
    Redis round trip). Not atomic: a failure may leave some of the writes done.

    Example:
        >>> from langchain_tokenopt.stores import MemoryStore
        >>> store = MemoryStore()
        >>> set_many(store, [("a", 1, None), ("b", 2, 60.0)])
        >>> store.get("a"), store.get("b")
        (1, 2)
    """
    native = getattr(store, "set_many", None)
    if native is not None:
        native(writes)
        return
    for key, value, ttl_seconds in writes:
        store.set(key, value, ttl_seconds)


async def aset_many(store: Store, writes: Sequence[Write]) -> None:
    """Async `set_many`."""
    native = getattr(store, "aset_many", None)
    if native is not None:
        await native(writes)
        return
    for key, value, ttl_seconds in writes:
        await store.aset(key, value, ttl_seconds)
