"""`RedisStore` against a real redis-server: the shared contract, plus what only Redis does.

The contract is `StoreContract` from the unit tests, here with real (short) TTLs; the
rest covers native expiry, clients given by the caller, and a Redis that dies or
stalls mid-run (it must raise `StoreUnavailableError`, not hang).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio

from langchain_tokenopt.errors import StoreUnavailableError
from langchain_tokenopt.stores import RedisStore, Store
from tests.support.redis_server import RedisServer
from tests.unit_tests.stores.test_contract import StoreContract, StoreHarness

pytestmark = pytest.mark.redis

SHORT_TTL_SECONDS = 0.05
EXPIRY_POLL_LIMIT_SECONDS = 10.0


def redis_harness(store: RedisStore, client: Any) -> StoreHarness:
    def expire(key: str) -> None:
        # Readiness poll for Redis's own expiry: PTTL -2 means the key is gone.
        deadline = time.monotonic() + EXPIRY_POLL_LIMIT_SECONDS
        while client.pttl(key) != -2:
            assert time.monotonic() < deadline, f"{key!r} never expired"
            time.sleep(0.01)

    def read_raw(key: str) -> str | None:
        raw = client.get(key)
        return None if raw is None else raw.decode("utf-8")

    def ttl_remaining(key: str) -> float | None:
        pttl = int(client.pttl(key))
        assert pttl != -2, f"{key!r} is not stored"
        return None if pttl == -1 else pttl / 1000

    return StoreHarness(
        store=store,
        short_ttl_seconds=SHORT_TTL_SECONDS,
        expire=expire,
        let_time_pass=lambda _seconds: None,
        write_raw=lambda key, text: client.set(key, text),
        read_raw=read_raw,
        ttl_remaining=ttl_remaining,
    )


class TestRedisStoreContract(StoreContract):
    """The `Store` contract on `RedisStore` built from a URL (native async client)."""

    @pytest.fixture
    async def harness(self, redis_url: str, redis_client: Any) -> AsyncIterator[StoreHarness]:
        store = RedisStore(redis_url)
        yield redis_harness(store, redis_client)
        await store.aclose()


class TestRedisStoreOnGivenClients(StoreContract):
    """The contract on `RedisStore(client=..., async_client=...)` given by the caller."""

    @pytest.fixture
    async def harness(self, redis_url: str, redis_client: Any) -> AsyncIterator[StoreHarness]:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        # A blocking pool, as the store builds for itself: bursts queue for a connection.
        pool = redis.asyncio.BlockingConnectionPool.from_url(redis_url, max_connections=20)
        async_client = redis.asyncio.Redis.from_pool(pool)
        yield redis_harness(RedisStore(client=client, async_client=async_client), redis_client)
        client.close()
        await async_client.aclose()


# -- native behaviour ------------------------------------------------------------


def test_ttl_is_redis_native_expiry(redis_url: str, redis_client: Any) -> None:
    store = RedisStore(redis_url)
    store.set("k", {"v": 1}, ttl_seconds=30)
    assert 0 < redis_client.pttl("k") <= 30_000
    store.add("n", 1, ttl_seconds=1.5)
    assert 0 < redis_client.pttl("n") <= 1_500
    store.set("forever", 1)
    assert redis_client.pttl("forever") == -1


def test_values_are_plain_json_that_other_clients_can_read(
    redis_url: str, redis_client: Any
) -> None:
    store = RedisStore(redis_url)
    store.set("k", {"list": [1, 2.5, "x"], "none": None})
    assert json.loads(redis_client.get("k")) == {"list": [1, 2.5, "x"], "none": None}
    store.add("n", 41)
    assert redis_client.incr("n") == 42  # an int counter is a Redis integer
    assert store.get("n") == 42


def test_add_beyond_a_64_bit_integer_raises_overflow(redis_url: str, redis_client: Any) -> None:
    store = RedisStore(redis_url)
    store.set("n", 2**63 - 1)
    with pytest.raises(OverflowError):
        store.add("n", 1)
    assert store.get("n") == 2**63 - 1


async def test_sync_client_alone_serves_async_calls_through_a_thread(
    redis_url: str, redis_client: Any
) -> None:
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client=client)
    await store.aset("k", [1])
    assert await store.aget("k") == [1]
    assert await store.aadd("n", 2, max_value=1) is None
    assert [k async for k, _ in store.ascan("")] == ["k"]
    assert await store.aclear("nothing") == 0
    client.close()


async def test_async_client_alone_refuses_sync_calls(redis_url: str, redis_client: Any) -> None:
    async_client = redis.asyncio.Redis.from_url(redis_url)
    store = RedisStore(async_client=async_client)
    await store.aset("k", 1)
    assert await store.aget("k") == 1
    with pytest.raises(TypeError, match="async_client"):
        store.get("k")
    await async_client.aclose()


async def test_one_store_serves_several_event_loops(redis_url: str, redis_client: Any) -> None:
    store = RedisStore(redis_url)
    await store.aset("k", 1)

    async def add_then_close() -> Any:
        result = await store.aadd("k", 1)
        await store.aclose()  # closes this loop's connections; other loops keep theirs
        return result

    def in_a_fresh_loop() -> Any:
        return asyncio.run(add_then_close())

    assert await asyncio.to_thread(in_a_fresh_loop) == 2
    assert await store.aget("k") == 2
    await store.aclose()


def test_store_can_be_used_as_a_context_manager(redis_url: str, redis_client: Any) -> None:
    with RedisStore(redis_url) as store:
        assert isinstance(store, Store)
        store.set("k", 1)
    assert redis_client.get("k") == b"1"


def test_url_and_client_together_are_refused(redis_url: str, redis_client: Any) -> None:
    with pytest.raises(ValueError, match="either url or client"):
        RedisStore(redis_url, client=redis_client)


# -- a Redis that is gone or stalled ------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_raises_store_unavailable() -> None:
    store = RedisStore(f"redis://:secret@127.0.0.1:{_closed_port()}/0", socket_timeout_seconds=0.5)
    with pytest.raises(StoreUnavailableError, match="Redis at") as raised:
        store.get("k")
    assert "secret" not in str(raised.value)


async def test_unreachable_redis_raises_store_unavailable_async() -> None:
    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", socket_timeout_seconds=0.5)
    with pytest.raises(StoreUnavailableError):
        await store.aset("k", 1)


@pytest.fixture
async def doomed_store(private_redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    """A store on a private server, already used once (so it holds a live connection)."""
    store = RedisStore(private_redis_server.url, socket_timeout_seconds=0.3, retries=1)
    store.set("k", 1)
    yield store
    await store.aclose()


def test_killed_redis_raises_store_unavailable(
    private_redis_server: RedisServer, doomed_store: RedisStore
) -> None:
    private_redis_server.kill()
    with pytest.raises(StoreUnavailableError):
        doomed_store.get("k")
    with pytest.raises(StoreUnavailableError):
        doomed_store.add("n", 1, max_value=5)
    with pytest.raises(StoreUnavailableError):
        list(doomed_store.scan(""))
    with pytest.raises(StoreUnavailableError):
        doomed_store.clear("ns")


async def test_killed_redis_raises_store_unavailable_async(
    private_redis_server: RedisServer, doomed_store: RedisStore
) -> None:
    assert await doomed_store.aget("k") == 1  # the async client is connected too
    private_redis_server.kill()
    with pytest.raises(StoreUnavailableError):
        await doomed_store.aget("k")
    with pytest.raises(StoreUnavailableError):
        await doomed_store.aadd("n", 1)
    with pytest.raises(StoreUnavailableError):
        [item async for item in doomed_store.ascan("")]


def test_stalled_redis_raises_store_unavailable_instead_of_hanging(
    private_redis_server: RedisServer, doomed_store: RedisStore
) -> None:
    private_redis_server.pause()
    try:
        with pytest.raises(StoreUnavailableError, match="Timeout"):
            doomed_store.get("k")
    finally:
        private_redis_server.resume()
    assert doomed_store.get("k") == 1  # and it recovers once Redis answers again


async def test_stalled_redis_raises_store_unavailable_async(
    private_redis_server: RedisServer, doomed_store: RedisStore
) -> None:
    assert await doomed_store.aget("k") == 1
    private_redis_server.pause()
    try:
        with pytest.raises(StoreUnavailableError):
            await doomed_store.aadd("n", 1)
    finally:
        private_redis_server.resume()
    assert await doomed_store.aget("k") == 1
