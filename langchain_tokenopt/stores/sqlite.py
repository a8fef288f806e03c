"""`SQLiteStore`: state shared by the processes of one machine, in one SQLite file.

The embedded default when state must survive restarts or be shared between workers
without running a server. Standard library only: WAL journal so readers never block the
writer, a busy timeout so writers queue instead of failing, and `BEGIN IMMEDIATE`
transactions so an add (with its limit check) is atomic across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_tokenopt.core.validation import MAX_TTL_SECONDS, finite_number, instance_of, shown
from langchain_tokenopt.errors import ArgumentTypeError, StoreUnavailableError
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
    prefix_upper_bound,
    stored_number,
    warn_skipped,
)
from langchain_tokenopt.stores.base import JSON, Number, Write

__all__ = ["SQLiteStore"]

_TABLE = "tokenopt_store"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
    "key TEXT PRIMARY KEY NOT NULL, value TEXT, expires_at REAL) WITHOUT ROWID",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_expires_at ON {_TABLE}(expires_at) "
    "WHERE expires_at IS NOT NULL",
)
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_PURGE_EVERY_WRITES = 1000
_SCAN_PAGE_ROWS = 500


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C type cannot)."""


class _Local(threading.local):
    connection: sqlite3.Connection | None = None
    generation: int = -1
    pid: int = -1


class SQLiteStore(ClosesOnExit):
    """A `Store` in one SQLite file, safe for many threads and processes of one machine.

    `path` is a file path (created with its table when missing; its directory must
    exist) or ":memory:" for a private in-process database. TTLs are wall-clock
    (`time_func`, `time.time` by default, shared by every process using the file);
    expired rows read as missing and are purged now and then. A database that stays
    locked longer than `busy_timeout_seconds`, or cannot be opened, raises
    `StoreUnavailableError`.

    Example:
        >>> store = SQLiteStore(":memory:")  # or SQLiteStore("/var/lib/app/state.db")
        >>> store.set("history:s1", ["hi", "hello"])
        >>> store.get("history:s1")
        ['hi', 'hello']
        >>> store.add("tokens:s1", 120, max_value=100) is None
        True
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        busy_timeout_seconds: float = 10.0,
        time_func: Callable[[], float] = time.time,
    ) -> None:
        instance_of(path, "path", (str, os.PathLike), "a str or os.PathLike[str]")
        self._path = os.fspath(path)
        if not isinstance(self._path, str):
            raise ArgumentTypeError(f"path must be a str or os.PathLike[str], got {shown(path)}")
        self._busy_timeout_seconds = finite_number(
            busy_timeout_seconds, "busy_timeout_seconds", minimum=0, maximum=MAX_TTL_SECONDS
        )
        self._time = time_func
        self._in_memory = self._path == ":memory:" or self._path == ""
        # ":memory:" is one database per connection, so it gets one shared connection
        # guarded by this lock; a file gets one connection per thread and lets SQLite lock.
        self._lock = threading.RLock()
        self._local = _Local()
        self._shared: sqlite3.Connection | None = None
        self._generation = 0
        # Weak: a thread's connection closes when the thread ends; close() closes the rest.
        self._opened: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._writes = 0
        self._name = f"SQLite store at {self._path!r}"
        with self._errors(), self._connection() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r})"

    # -- connections and errors --------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_seconds,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,  # so close() can close other threads' connections
            factory=_Connection,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_seconds * 1000)}")
            if not self._in_memory:
                # Read first: switching the mode takes a lock, and it is set once per file.
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._opened.add(conn)
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._in_memory:
            with self._lock:
                if self._shared is None:
                    self._shared = self._open()
                yield self._shared
            return
        local = self._local
        pid = os.getpid()
        if local.connection is None or local.generation != self._generation or local.pid != pid:
            # A connection must not cross a fork; a close() invalidates all of them.
            local.connection = self._open()
            local.generation = self._generation
            local.pid = pid
        yield local.connection

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(
                self._name,
                f"{exc}. Check that the file is writable and not held by another program "
                "(or raise busy_timeout_seconds).",
            ) from exc
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:
                raise
            raise StoreUnavailableError(
                self._name, f"{exc}. The file is not a usable SQLite database."
            ) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: the write lock is taken before the first read."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _maybe_purge(self, conn: sqlite3.Connection) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY_WRITES == 0:
            conn.execute(
                f"DELETE FROM {_TABLE} WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (self._time(),),
            )

    @staticmethod
    def _range(prefix: str) -> tuple[str, list[Any]]:
        upper = prefix_upper_bound(prefix)
        if upper is None:
            return "key >= ?", [prefix]
        return "key >= ? AND key < ?", [prefix, upper]

    # -- sync API ----------------------------------------------------------------

    def get(self, key: str) -> JSON | None:
        """The value at `key`, or None if absent or expired."""
        check_key(key)
        with self._errors(), self._connection() as conn:
            row = conn.execute(
                f"SELECT value FROM {_TABLE} WHERE key = ? AND {_LIVE}", (key, self._time())
            ).fetchone()
        if row is None:
            return None
        try:
            return decode(row[0])
        except CorruptValue as exc:
            raise corrupt_error(self._name, key, str(exc)) from None

    def set(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Store `value` at `key`, expiring after `ttl_seconds` when given."""
        check_key(key)
        ttl = check_ttl(ttl_seconds)
        text = encode(value, key)
        with self._errors(), self._connection() as conn:
            expires_at = None if ttl is None else self._time() + ttl
            conn.execute(
                f"INSERT OR REPLACE INTO {_TABLE} (key, value, expires_at) VALUES (?, ?, ?)",
                (key, text, expires_at),
            )
            self._maybe_purge(conn)

    def set_many(self, writes: Sequence[Write]) -> None:
        """`set` for each (key, value, ttl_seconds) in one transaction, all checked first."""
        checked = [
            (check_key(key), encode(value, key), check_ttl(ttl)) for key, value, ttl in writes
        ]
        with self._errors(), self._connection() as conn:
            now = self._time()
            conn.executemany(
                f"INSERT OR REPLACE INTO {_TABLE} (key, value, expires_at) VALUES (?, ?, ?)",
                [(key, text, None if ttl is None else now + ttl) for key, text, ttl in checked],
            )
            self._maybe_purge(conn)

    def delete(self, key: str) -> bool:
        """Remove `key`; True if it existed."""
        check_key(key)
        with self._errors(), self._connection() as conn:
            now = self._time()
            live = conn.execute(f"DELETE FROM {_TABLE} WHERE key = ? AND {_LIVE}", (key, now))
            conn.execute(f"DELETE FROM {_TABLE} WHERE key = ? AND expires_at <= ?", (key, now))
            return live.rowcount > 0

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
        with self._errors(), self._transaction() as conn:
            now = self._time()
            row = conn.execute(
                f"SELECT value, expires_at FROM {_TABLE} WHERE key = ? AND {_LIVE}", (key, now)
            ).fetchone()
            current: Number = 0
            expires_at = None if ttl is None else now + ttl
            if row is not None:
                try:
                    current = stored_number(key, decode(row[0]))
                except CorruptValue as exc:
                    raise corrupt_error(self._name, key, str(exc)) from None
                expires_at = row[1]  # an existing key keeps its expiry
            result = add_numbers(current, amount)
            if max_value is not None and result > max_value:
                return None
            conn.execute(
                f"INSERT OR REPLACE INTO {_TABLE} (key, value, expires_at) VALUES (?, ?, ?)",
                (key, encode(result, key), expires_at),
            )
            self._maybe_purge(conn)
            return result

    def _page(self, prefix: str, after: str | None) -> list[tuple[str, Any]]:
        """Up to one page of live (key, raw value) rows under `prefix`, after key `after`."""
        where, params = self._range(prefix)
        if after is not None:
            where += " AND key > ?"
            params.append(after)
        params.append(self._time())
        with self._errors(), self._connection() as conn:
            rows = conn.execute(
                f"SELECT key, value FROM {_TABLE} WHERE {where} AND {_LIVE} "
                f"ORDER BY key LIMIT {_SCAN_PAGE_ROWS}",
                params,
            ).fetchall()
        return [(str(row[0]), row[1]) for row in rows]

    def _decode_page(self, rows: list[tuple[str, Any]]) -> list[tuple[str, JSON]]:
        decoded: list[tuple[str, JSON]] = []
        for key, raw in rows:
            try:
                decoded.append((key, decode(raw)))
            except CorruptValue as exc:
                warn_skipped(self._name, key, str(exc))
        return decoded

    def scan(self, prefix: str) -> Iterator[tuple[str, JSON]]:
        """Every live (key, value) whose key starts with `prefix`, in key order.

        Rows are read a page at a time, so the store may be changed while scanning.
        """
        check_prefix(prefix)
        return self._scan(prefix)

    def _scan(self, prefix: str) -> Iterator[tuple[str, JSON]]:
        after: str | None = None
        while True:
            rows = self._page(prefix, after)
            yield from self._decode_page(rows)
            if len(rows) < _SCAN_PAGE_ROWS:
                return
            after = rows[-1][0]

    def clear(self, namespace: str) -> int:
        """Delete every key starting with `namespace + ":"`; return how many."""
        prefix = check_prefix(namespace, "namespace") + ":"
        where, params = self._range(prefix)
        with self._errors(), self._transaction() as conn:
            now = self._time()
            live = conn.execute(f"DELETE FROM {_TABLE} WHERE {where} AND {_LIVE}", [*params, now])
            conn.execute(f"DELETE FROM {_TABLE} WHERE {where}", params)
            return live.rowcount

    def close(self) -> None:
        """Close every connection this store opened (it reopens if used again)."""
        with self._lock:
            opened, self._opened = list(self._opened), weakref.WeakSet()
            self._shared = None
            self._generation += 1
        for conn in opened:
            conn.close()

    # -- async API: the same work on a worker thread, so the event loop never blocks

    async def aget(self, key: str) -> JSON | None:
        """Async `get`."""
        return await asyncio.to_thread(self.get, key)

    async def aset(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Async `set`."""
        await asyncio.to_thread(self.set, key, value, ttl_seconds)

    async def aset_many(self, writes: Sequence[Write]) -> None:
        """Async `set_many`, on a worker thread."""
        await asyncio.to_thread(self.set_many, writes)

    async def adelete(self, key: str) -> bool:
        """Async `delete`."""
        return await asyncio.to_thread(self.delete, key)

    async def aadd(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        """Async `add`."""
        return await asyncio.to_thread(
            lambda: self.add(key, amount, ttl_seconds=ttl_seconds, max_value=max_value)
        )

    async def ascan(self, prefix: str) -> AsyncIterator[tuple[str, JSON]]:
        """Async `scan`: each page is read on a worker thread."""
        check_prefix(prefix)
        after: str | None = None
        while True:
            rows = await asyncio.to_thread(self._page, prefix, after)
            decoded = await asyncio.to_thread(self._decode_page, rows)
            for item in decoded:
                yield item
            if len(rows) < _SCAN_PAGE_ROWS:
                return
            after = rows[-1][0]

    async def aclear(self, namespace: str) -> int:
        """Async `clear`."""
        return await asyncio.to_thread(self.clear, namespace)

    async def aclose(self) -> None:
        """Async `close`."""
        await asyncio.to_thread(self.close)
