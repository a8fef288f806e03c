"""`RedisStore`: state shared by many machines, in Redis or a Redis Cluster.

For deployments that outgrow one machine. Redis does the expiry (native TTL) and the
atomic arithmetic (INCRBY, and a Lua script where a limit check and an add, or a create
and its TTL, must happen as one step). Every atomic step touches one key, so it works
unchanged on a Redis Cluster; scans visit every master (`stores._redis_cluster`).
redis-py is an optional extra (`redis`), imported only when a `RedisStore` is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_tokenopt.core.extras import require
from langchain_tokenopt.core.validation import shown
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    NumberOverflowError,
    StoreUnavailableError,
)
from langchain_tokenopt.stores._common import (
    ClosesOnExit,
    CorruptValue,
    check_add,
    check_key,
    check_prefix,
    check_ttl,
    corrupt_error,
    decode,
    encode,
    warn_skipped,
)
from langchain_tokenopt.stores._redis_cluster import (
    check_cluster_url,
    is_cluster_client,
    new_async_cluster,
    new_sync_cluster,
    prefix_hash_tag,
)
from langchain_tokenopt.stores.base import JSON, Number, Write

__all__ = ["RedisStore"]

logger = logging.getLogger(__name__)

_DEFAULT_URL = "redis://localhost:6379/0"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_POOL_WAIT_TIMEOUTS = 5  # wait for a free pooled connection: 5 socket timeouts at most
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")

# Atomic add. ARGV: amount, "1" if the amount is an int, max_value or "", ttl ms or "".
# Int + int goes through INCRBY (exact 64-bit); anything with a float is added in Lua
# doubles, as Python does, and written with a decimal point so it reads back as a float.
# A value that cannot be decoded is refused and left in place (the caller gets
# CorruptStateError), and so is a JSON non-number (TypeError).
_ADD_LUA = """
local key = KEYS[1]
local amount_text, amount_is_int = ARGV[1], ARGV[2] == '1'
local max_text, ttl_ms = ARGV[3], ARGV[4]
local raw = redis.call('GET', key)
local current, current_is_int = 0, true
if raw then
  if string.match(raw, '^%-?%d+$') then
    local digits = #raw - (string.sub(raw, 1, 1) == '-' and 1 or 0)
    if digits > 4300 then  -- more digits than Python reads back (int_max_str_digits)
      return {'corrupt', 'an integer of more than 4300 digits'}
    end
    current = tonumber(raw)
  else
    local ok, decoded = pcall(cjson.decode, raw)
    if not ok then
      return {'corrupt', tostring(decoded)}
    elseif type(decoded) ~= 'number' then
      return {'not_a_number', type(decoded), raw}
    elseif decoded ~= decoded or decoded == math.huge or decoded == -math.huge then
      return {'corrupt', 'not a finite number'}
    else
      current, current_is_int = decoded, false
    end
  end
end
local result = current + tonumber(amount_text)
if result ~= result or result == math.huge or result == -math.huge then
  return {'overflow', ''}
end
if max_text ~= '' and result > tonumber(max_text) then
  return {'refused', ''}
end
local text
if current_is_int and amount_is_int then
  redis.call('INCRBY', key, amount_text)
  text = redis.call('GET', key)
else
  for precision = 15, 17 do
    text = string.format('%.' .. precision .. 'g', result)
    if tonumber(text) == result then break end
  end
  if not string.find(text, '[%.eE]') then text = text .. '.0' end
  redis.call('SET', key, text, 'KEEPTTL')
end
if not raw and ttl_ms ~= '' then
  redis.call('PEXPIRE', key, ttl_ms)
end
return {'ok', text}
"""


_ADD_SHA = hashlib.sha1(_ADD_LUA.encode("utf-8")).hexdigest()


def _glob_escape(text: str) -> str:
    """`text` with Redis glob characters escaped, for a literal prefix in SCAN MATCH."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _as_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def _ttl_ms(ttl_seconds: float | None) -> int | None:
    return None if ttl_seconds is None else max(1, round(ttl_seconds * 1000))


def _safe_url(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


@dataclass
class _AsyncParts:
    client: Any
    # Queues calls beyond max_connections (redis.asyncio's cluster pools refuse them).
    gate: asyncio.Semaphore | None = None
    # A redis.asyncio cluster client learns the cluster once, before concurrent calls.
    initialized: bool = False
    initializing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Hold one of the store's connections for a call (no wait without a gate)."""
        return self.gate if self.gate is not None else contextlib.nullcontext()


class RedisStore(ClosesOnExit):
    """A `Store` in Redis: native TTL, server-side atomic adds, JSON values.

    Give a `url` ("redis://host:6379/0", default localhost) or a ready `client`
    (`redis.Redis`, with `async_client` a `redis.asyncio.Redis` for native async;
    without one, async calls run the sync client on a worker thread; a given client's
    connection pool decides how many calls may run at once). Clients built
    from a url use `socket_timeout_seconds` for connecting and for each reply, retry
    a failed command `retries` times, and share at most `max_connections` connections
    (more concurrent calls queue), so an unreachable or stalled Redis raises
    `StoreUnavailableError` within about (retries + 1) x socket_timeout_seconds.
    `scan` and `clear` walk the keyspace with SCAN (cost grows with the database).

    Redis Cluster: `RedisStore("redis://any-node:7000", cluster=True)`, or clients of
    `redis.cluster.RedisCluster` / `redis.asyncio.cluster.RedisCluster` (recognized
    without `cluster=True`). Each command touches one key, so each lands on one master;
    a master that is down makes the calls on its slots raise `StoreUnavailableError`
    while the others go on. `scan` and `clear` visit every master (and fail while one
    is down), unless the prefix holds a hash tag ("budget:{alice}:"): then only the
    master of that tag's slot. The masters need `cluster-require-full-coverage no` for
    the others to go on (docs/robustness.md). A cache on a cluster:
    `TokenOptCache.redis(url, store_options={"cluster": True})`.

    Example (building one does not connect; the first call does)::

        store.set("cache:q1", {"answer": 42}, ttl_seconds=60)
        store.add("spent:alice", 0.25, max_value=10.0)  # 0.25

        >>> RedisStore("redis://:secret@localhost:6379/0")
        RedisStore('Redis at redis://:***@localhost:6379/0')
        >>> RedisStore("redis://localhost:7000", cluster=True)
        RedisStore('Redis Cluster at redis://localhost:7000')
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        cluster: bool = False,
        socket_timeout_seconds: float = 2.0,
        retries: int = 1,
        scan_batch_size: int = 500,
        max_connections: int = 50,
    ) -> None:
        self._redis = require("redis", "redis")
        if url is not None and (client is not None or async_client is not None):
            raise InvalidArgumentError("Give either url or client/async_client, not both")
        if socket_timeout_seconds <= 0:
            raise InvalidArgumentError(
                f"socket_timeout_seconds must be positive, got {shown(socket_timeout_seconds)}"
            )
        if retries < 0:
            raise InvalidArgumentError(f"retries must be >= 0, got {shown(retries)}")
        if scan_batch_size < 1:
            raise InvalidArgumentError(
                f"scan_batch_size must be >= 1, got {shown(scan_batch_size)}"
            )
        self._socket_timeout_seconds = float(socket_timeout_seconds)
        self._retries = retries
        self._batch = scan_batch_size
        if max_connections < 1:
            raise InvalidArgumentError(
                f"max_connections must be >= 1, got {shown(max_connections)}"
            )
        self._max_connections = max_connections
        exceptions = self._redis.exceptions
        self._unavailable: tuple[type[BaseException], ...] = (
            exceptions.ConnectionError,
            exceptions.TimeoutError,
            TimeoutError,
            asyncio.TimeoutError,  # a distinct class before Python 3.11
            # Redis Cluster: a master marked failed (CLUSTERDOWN, MASTERDOWN), a slot
            # being moved (TRYAGAIN), no node reachable or covering a slot.
            exceptions.ClusterDownError,
            exceptions.TryAgainError,
            exceptions.RedisClusterException,
        )
        self._response_error: type[BaseException] = exceptions.ResponseError
        self._moved_error: type[BaseException] = exceptions.MovedError
        self._no_script_error: type[BaseException] = exceptions.NoScriptError
        self._url: str | None = None
        self._owns_clients = client is None and async_client is None
        if self._owns_clients:
            self._cluster = bool(cluster)
            self._url = url or _DEFAULT_URL
            if self._cluster:
                check_cluster_url(self._url, _safe_url(self._url))
            kind = "Redis Cluster" if self._cluster else "Redis"
            self._name = f"{kind} at {_safe_url(self._url)}"
            # A sync cluster client connects as it is built: it is built on first use.
            self._client: Any = None if self._cluster else self._new_sync_client()
        else:
            self._cluster = self._given_cluster(client, async_client, cluster)
            self._client = client
            kind = "Redis Cluster" if self._cluster else "Redis"
            self._name = f"{kind} at {self._describe(client or async_client)}"
        self._client_lock = threading.Lock()
        self._fixed_async = async_client
        self._fixed_parts: _AsyncParts | None = None
        # redis.asyncio connections belong to the event loop that made them.
        self._async_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncParts]
        self._async_by_loop = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"RedisStore({self._name!r})"

    @staticmethod
    def _no_backoff() -> Any:
        return require("redis.backoff", "redis").NoBackoff()

    def _pool_kwargs(self) -> dict[str, Any]:
        # A blocking pool makes a burst of concurrent calls queue for a connection
        # instead of failing with "Too many connections"; the wait is bounded too.
        return {
            "max_connections": self._max_connections,
            "timeout": self._socket_timeout_seconds * _POOL_WAIT_TIMEOUTS,
            "socket_timeout": self._socket_timeout_seconds,
            "socket_connect_timeout": self._socket_timeout_seconds,
        }

    def _new_sync_client(self) -> Any:
        assert self._url is not None
        if self._cluster:
            return new_sync_cluster(self._url, self._retries, self._pool_kwargs())
        retry = require("redis.retry", "redis").Retry(self._no_backoff(), self._retries)
        pool = self._redis.BlockingConnectionPool.from_url(
            self._url, retry=retry, **self._pool_kwargs()
        )
        return self._redis.Redis.from_pool(pool)

    @staticmethod
    def _given_cluster(client: Any, async_client: Any, cluster: bool) -> bool:
        """Whether the given clients are cluster clients (both, or neither)."""
        kinds = {is_cluster_client(c) for c in (client, async_client) if c is not None}
        if len(kinds) > 1:
            raise InvalidArgumentError(
                "client and async_client must both be Redis Cluster clients or both not"
            )
        given_cluster = kinds == {True}
        if cluster and not given_cluster:
            raise InvalidArgumentError(
                "cluster=True needs a url, or clients of redis.cluster.RedisCluster / "
                "redis.asyncio.cluster.RedisCluster"
            )
        return given_cluster

    @staticmethod
    def _describe(client: Any) -> str:
        try:
            kwargs = client.connection_pool.connection_kwargs
            return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
        except AttributeError:
            pass
        try:  # a cluster client: the node it asks first
            node = client.get_default_node()
            return f"{node.host}:{node.port}"
        except AttributeError:
            return type(client).__name__

    # -- errors ------------------------------------------------------------------

    def _unavailable_error(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(
            self._name,
            f"{type(exc).__name__}: {exc}. Check that Redis is running and reachable "
            "(or raise socket_timeout_seconds).",
        )

    def _response_problem(self, exc: BaseException) -> BaseException:
        message = str(exc)
        if "overflow" in message or "out of range" in message:
            return NumberOverflowError(f"Redis refused the add on a 64-bit integer: {message}")
        if isinstance(exc, self._moved_error) and not self._cluster:
            return InvalidArgumentError(
                f"{self._name} is a node of a Redis Cluster (it answered {message!r}): "
                "build the store with RedisStore(url, cluster=True) or a RedisCluster client."
            )
        return exc

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._unavailable as exc:
            raise self._unavailable_error(exc) from exc
        except self._response_error as exc:
            problem = self._response_problem(exc)
            if problem is exc:
                raise
            raise problem from exc

    def _sync_client(self) -> Any:
        if self._client is not None:
            return self._client
        if not self._owns_clients:
            raise ArgumentTypeError(
                "This RedisStore was given only an async_client; use the async methods "
                "or also pass client=redis.Redis(...)."
            )
        with self._client_lock:
            if self._client is None:
                with self._errors():
                    self._client = self._new_sync_client()
        return self._client

    # -- shared decoding ---------------------------------------------------------

    def _finish_add(self, key: str, reply: Any) -> Number | None:
        status = _as_text(reply[0])
        if status == "not_a_number":
            try:  # cjson reads some values the stores refuse (NaN, 1e999 in a list, ...)
                decode(reply[2])
            except CorruptValue as exc:
                raise corrupt_error(self._name, key, str(exc)) from None
            raise ArgumentTypeError(
                f"Cannot add to {shown(key)}: it holds a JSON {_as_text(reply[1])}, not a number. "
                "Delete the key or use another key for the counter."
            )
        if status == "overflow":
            raise NumberOverflowError(f"Adding to {key!r} overflows a float")
        if status == "corrupt":
            raise corrupt_error(self._name, key, _as_text(reply[1]))
        if status == "refused":
            return None
        result: Number = json.loads(_as_text(reply[1]))
        return result

    @staticmethod
    def _add_args(amount: Number, max_value: Number | None, ttl_seconds: float | None) -> list[str]:
        ttl_ms = _ttl_ms(ttl_seconds)
        return [
            str(amount) if isinstance(amount, int) else repr(float(amount)),
            "1" if isinstance(amount, int) else "0",
            "" if max_value is None else repr(max_value),
            "" if ttl_ms is None else str(ttl_ms),
        ]

    @staticmethod
    def _plain_increment(amount: Number, ttl: float | None, max_value: Number | None) -> bool:
        """Whether a bare INCRBY does the add (one round trip, no script)."""
        return (
            isinstance(amount, int)
            and ttl is None
            and max_value is None
            and _INT64_MIN <= amount <= _INT64_MAX
        )

    def _run_add(self, client: Any, key: str, args: list[str]) -> Any:
        """Run the add script on the node of `key` (EVAL loads it there when missing).

        Not redis-py's `register_script`: on a cluster its SCRIPT LOAD goes to every
        master, so one master down would stop the adds on all the others.
        """
        try:
            return client.evalsha(_ADD_SHA, 1, key, *args)
        except self._no_script_error:
            return client.eval(_ADD_LUA, 1, key, *args)

    async def _arun_add(self, client: Any, key: str, args: list[str]) -> Any:
        """Async `_run_add`."""
        try:
            return await client.evalsha(_ADD_SHA, 1, key, *args)
        except self._no_script_error:
            return await client.eval(_ADD_LUA, 1, key, *args)

    @staticmethod
    def _key_text(raw_key: Any) -> str | None:
        try:
            return _as_text(raw_key)
        except UnicodeDecodeError:
            logger.warning("Skipping Redis key %r: it is not UTF-8 text", raw_key)
            return None

    # -- sync API ----------------------------------------------------------------

    def get(self, key: str) -> JSON | None:
        """The value at `key`, or None if absent or expired."""
        text = self.get_text(key)
        return None if text is None else self._decoded(key, text)

    def get_text(self, key: str) -> str | None:
        """The JSON text stored at `key`, undecoded (one GET), or None if absent or expired.

        A caller that keeps what it decoded from a value can tell, by comparing
        texts, whether it is still the same, and skip decoding it again (the cache's
        hit path). `CorruptStateError` if the stored bytes are not UTF-8 text; whether
        the text is JSON is the caller's to check.

        Example (with a server running)::

            store.set("k", {"a": 1})
            store.get_text("k")  # '{"a":1}'
        """
        check_key(key)
        client = self._sync_client()
        with self._errors():
            raw = client.get(key)
        return None if raw is None else self._text(key, raw)

    def _text(self, key: str, raw: Any) -> str:
        try:
            return _as_text(raw)
        except UnicodeDecodeError as exc:
            raise corrupt_error(self._name, key, f"not UTF-8 text: {exc}") from None

    def _decoded(self, key: str, text: str) -> JSON:
        try:
            return decode(text)
        except CorruptValue as exc:
            raise corrupt_error(self._name, key, str(exc)) from None

    def set(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Store `value` at `key`, expiring after `ttl_seconds` when given."""
        check_key(key)
        ttl_ms = _ttl_ms(check_ttl(ttl_seconds))
        text = encode(value, key)
        client = self._sync_client()
        with self._errors():
            client.set(key, text, px=ttl_ms)

    def set_many(self, writes: Sequence[Write]) -> None:
        """`set` for each (key, value, ttl_seconds) in one pipeline (one round trip per
        master on a cluster), all checked before any is sent; not atomic."""
        checked = self._checked_writes(writes)
        if not checked:
            return
        client = self._sync_client()
        with self._errors():
            pipe = client.pipeline(transaction=False)
            for key, text, ttl_ms in checked:
                pipe.set(key, text, px=ttl_ms)
            pipe.execute()

    @staticmethod
    def _checked_writes(writes: Sequence[Write]) -> list[tuple[str, str, int | None]]:
        return [
            (check_key(key), encode(value, key), _ttl_ms(check_ttl(ttl)))
            for key, value, ttl in writes
        ]

    def delete(self, key: str) -> bool:
        """Remove `key`; True if it existed."""
        check_key(key)
        client = self._sync_client()
        with self._errors():
            return int(client.delete(key)) > 0

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
        client = self._sync_client()
        with self._errors():
            if self._plain_increment(amount, ttl, max_value):
                try:
                    return int(client.incrby(key, amount))
                except self._response_error as exc:
                    if isinstance(exc, (*self._unavailable, self._moved_error)):
                        raise
                    # not a 64-bit integer there: the script sorts it out
            reply = self._run_add(client, key, self._add_args(amount, max_value, ttl))
        return self._finish_add(key, reply)

    def scan(self, prefix: str) -> Iterator[tuple[str, JSON]]:
        """Every live (key, value) whose key starts with `prefix` (order unspecified)."""
        check_prefix(prefix)
        return self._scan(self._sync_client(), prefix)

    def _scan(self, client: Any, prefix: str) -> Iterator[tuple[str, JSON]]:
        read = client.mget_nonatomic if self._cluster else client.mget
        seen: set[Any] = set()
        for keys in self._key_pages(client, prefix):
            fresh = [k for k in dict.fromkeys(keys) if k not in seen]
            if not fresh:
                continue
            with self._errors():
                values = read(fresh)
            seen.update(fresh)
            for raw_key, raw in zip(fresh, values, strict=True):
                item = self._scanned(raw_key, raw)
                if item is not None:
                    yield item

    def _key_pages(self, client: Any, prefix: str) -> Iterator[list[Any]]:
        """The keys starting with `prefix`, a SCAN page at a time, node after node."""
        match = _glob_escape(prefix) + "*"
        with self._errors():
            nodes = self._scan_nodes(client, prefix)
        for node in nodes:
            cursor = 0
            while True:
                with self._errors():
                    reply = client.scan(cursor=cursor, match=match, count=self._batch, **node)
                cursor, keys = self._scan_reply(reply)
                yield keys
                if cursor == 0:
                    break

    def _scan_nodes(self, client: Any, prefix: str) -> list[dict[str, Any]]:
        """SCAN's target per node to visit: the one node, the tag's master, or every master."""
        if not self._cluster:
            return [{}]
        if prefix_hash_tag(prefix) is not None:
            return [{"target_nodes": client.get_node_from_key(prefix)}]
        return [{"target_nodes": node} for node in client.get_primaries()]

    @staticmethod
    def _scan_reply(reply: Any) -> tuple[int, list[Any]]:
        """(next cursor, keys) of a SCAN reply of one node.

        redis-py's cluster client answers ({node name: cursor}, keys) (docs/internals.md);
        a plain cursor is taken as it is.
        """
        cursor, keys = reply
        if isinstance(cursor, dict):
            (cursor,) = cursor.values()
        return int(cursor), list(keys)

    def _scanned(self, raw_key: Any, raw: Any) -> tuple[str, JSON] | None:
        """One scanned key's (key, value); None if gone, not text, or unreadable (logged)."""
        if raw is None:  # expired or deleted since SCAN saw it
            return None
        key = self._key_text(raw_key)
        if key is None:
            return None
        try:
            return key, decode(raw)
        except CorruptValue as exc:
            warn_skipped(self._name, key, str(exc))
            return None

    def clear(self, namespace: str) -> int:
        """Delete every key starting with `namespace + ":"`; return how many."""
        prefix = check_prefix(namespace, "namespace") + ":"
        client = self._sync_client()
        deleted = 0
        for keys in self._key_pages(client, prefix):
            if keys:
                with self._errors():
                    deleted += int(client.unlink(*keys))
        return deleted

    def close(self) -> None:
        """Close the connections of a client this store created (not one it was given)."""
        if self._owns_clients and self._client is not None:
            self._client.close()

    # -- async API: redis.asyncio natively --------------------------------------

    def _async_parts(self) -> _AsyncParts | None:
        """The async client for the running loop; None when only a sync client exists."""
        if self._fixed_async is not None:
            if self._fixed_parts is None:
                self._fixed_parts = self._parts_for(self._fixed_async)
            return self._fixed_parts
        if not self._owns_clients:
            return None
        loop = asyncio.get_running_loop()
        parts = self._async_by_loop.get(loop)
        if parts is None:
            parts = self._async_by_loop[loop] = self._parts_for(self._new_async_client())
        return parts

    async def _aparts(self) -> _AsyncParts | None:
        """`_async_parts`, with a cluster client's nodes known before any call.

        redis.asyncio's `RedisCluster` asks for the cluster layout on its first command;
        concurrent first commands race on it (their connections break), so the layout
        is fetched once, under a lock, first (its `initialize()`, as redis-py advises).
        """
        parts = self._async_parts()
        if parts is None or not self._cluster or parts.initialized:
            return parts
        async with parts.initializing:
            if not parts.initialized:
                with self._errors():
                    await parts.client.initialize()
                parts.initialized = True
        return parts

    def _parts_for(self, client: Any) -> _AsyncParts:
        owned_cluster = self._cluster and client is not self._fixed_async
        return _AsyncParts(
            client=client,
            gate=asyncio.Semaphore(self._max_connections) if owned_cluster else None,
        )

    def _new_async_client(self) -> Any:
        assert self._url is not None
        if self._cluster:
            return new_async_cluster(self._url, self._retries, self._pool_kwargs())
        asyncio_redis = require("redis.asyncio", "redis")
        retry = require("redis.asyncio.retry", "redis").Retry(self._no_backoff(), self._retries)
        pool = asyncio_redis.BlockingConnectionPool.from_url(
            self._url, retry=retry, **self._pool_kwargs()
        )
        return asyncio_redis.Redis.from_pool(pool)

    async def aget(self, key: str) -> JSON | None:
        """Async `get`."""
        text = await self.aget_text(key)
        return None if text is None else self._decoded(key, text)

    async def aget_text(self, key: str) -> str | None:
        """Async `get_text`."""
        parts = await self._aparts()
        if parts is None:
            return await asyncio.to_thread(self.get_text, key)
        check_key(key)
        with self._errors():
            async with parts.turn():
                raw = await parts.client.get(key)
        return None if raw is None else self._text(key, raw)

    async def aset(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        """Async `set`."""
        parts = await self._aparts()
        if parts is None:
            return await asyncio.to_thread(self.set, key, value, ttl_seconds)
        check_key(key)
        ttl_ms = _ttl_ms(check_ttl(ttl_seconds))
        text = encode(value, key)
        with self._errors():
            async with parts.turn():
                await parts.client.set(key, text, px=ttl_ms)
        return None

    async def aset_many(self, writes: Sequence[Write]) -> None:
        """Async `set_many`."""
        parts = await self._aparts()
        if parts is None:
            return await asyncio.to_thread(self.set_many, writes)
        checked = self._checked_writes(writes)
        if not checked:
            return None
        with self._errors():
            async with parts.turn():
                pipe = parts.client.pipeline(transaction=False)
                for key, text, ttl_ms in checked:
                    pipe.set(key, text, px=ttl_ms)
                await pipe.execute()
        return None

    async def adelete(self, key: str) -> bool:
        """Async `delete`."""
        parts = await self._aparts()
        if parts is None:
            return await asyncio.to_thread(self.delete, key)
        check_key(key)
        with self._errors():
            async with parts.turn():
                return int(await parts.client.delete(key)) > 0

    async def aadd(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        """Async `add`."""
        parts = await self._aparts()
        if parts is None:
            return await asyncio.to_thread(
                lambda: self.add(key, amount, ttl_seconds=ttl_seconds, max_value=max_value)
            )
        ttl = check_add(key, amount, ttl_seconds, max_value)
        with self._errors():
            if self._plain_increment(amount, ttl, max_value):
                try:
                    async with parts.turn():
                        return int(await parts.client.incrby(key, amount))
                except self._response_error as exc:
                    if isinstance(exc, (*self._unavailable, self._moved_error)):
                        raise
                    # not a 64-bit integer there: the script sorts it out
            async with parts.turn():
                reply = await self._arun_add(
                    parts.client, key, self._add_args(amount, max_value, ttl)
                )
        return self._finish_add(key, reply)

    async def ascan(self, prefix: str) -> AsyncIterator[tuple[str, JSON]]:
        """Async `scan`."""
        check_prefix(prefix)
        parts = await self._aparts()
        if parts is None:
            for pair in await asyncio.to_thread(lambda: list(self.scan(prefix))):
                yield pair
            return
        read = parts.client.mget_nonatomic if self._cluster else parts.client.mget
        seen: set[Any] = set()
        async for keys in self._akey_pages(parts, prefix):
            fresh = [k for k in dict.fromkeys(keys) if k not in seen]
            if not fresh:
                continue
            with self._errors():
                async with parts.turn():
                    values = await read(fresh)
            seen.update(fresh)
            for raw_key, raw in zip(fresh, values, strict=True):
                item = self._scanned(raw_key, raw)
                if item is not None:
                    yield item

    async def _akey_pages(self, parts: _AsyncParts, prefix: str) -> AsyncIterator[list[Any]]:
        """Async `_key_pages`."""
        match = _glob_escape(prefix) + "*"
        with self._errors():
            nodes = self._scan_nodes(parts.client, prefix)
        for node in nodes:
            cursor = 0
            while True:
                with self._errors():
                    async with parts.turn():
                        reply = await parts.client.scan(
                            cursor=cursor, match=match, count=self._batch, **node
                        )
                cursor, keys = self._scan_reply(reply)
                yield keys
                if cursor == 0:
                    break

    async def aclear(self, namespace: str) -> int:
        """Async `clear`."""
        parts = await self._aparts()
        if parts is None:
            return await asyncio.to_thread(self.clear, namespace)
        prefix = check_prefix(namespace, "namespace") + ":"
        deleted = 0
        async for keys in self._akey_pages(parts, prefix):
            if keys:
                with self._errors():
                    async with parts.turn():
                        deleted += int(await parts.client.unlink(*keys))
        return deleted

    async def aclose(self) -> None:
        """Close this store's connections, the running loop's async client included."""
        parts = self._async_by_loop.pop(asyncio.get_running_loop(), None)
        if parts is not None:
            await parts.client.aclose()
        self.close()
