"""`RedisStore` on a real three-master Redis Cluster: the shared contract, scans across
masters, hash-tag scans, and one master stopped mid-test.

The cluster is started once per session (`tests/support/redis_cluster.py`); tests that
stop a master get a cluster of their own (`private_redis_cluster`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from langchain_tokenopt.errors import StoreUnavailableError
from langchain_tokenopt.stores import RedisStore
from tests.integration_tests.stores.test_redis_store import redis_harness
from tests.support.redis_cluster import RedisClusterServers
from tests.unit_tests.stores.test_contract import StoreContract, StoreHarness

pytestmark = pytest.mark.redis


class TestRedisClusterStoreContract(StoreContract):
    """The `Store` contract on `RedisStore(url, cluster=True)` (native async cluster client)."""

    @pytest.fixture
    async def harness(
        self, redis_cluster_url: str, redis_cluster_client: Any
    ) -> AsyncIterator[StoreHarness]:
        store = RedisStore(redis_cluster_url, cluster=True)
        yield redis_harness(store, redis_cluster_client)
        await store.aclose()


@pytest.fixture(scope="module")
def given_cluster_client(redis_cluster_url: str) -> Iterator[Any]:
    """A caller's sync cluster client (str replies), shared by the module's tests."""
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    yield client
    client.close()


class TestRedisClusterStoreOnGivenClients(StoreContract):
    """The contract on `RedisStore(client=RedisCluster, async_client=asyncio RedisCluster)`."""

    @pytest.fixture
    async def harness(
        self, redis_cluster_url: str, redis_cluster_client: Any, given_cluster_client: Any
    ) -> AsyncIterator[StoreHarness]:
        async_client = redis.asyncio.cluster.RedisCluster.from_url(
            redis_cluster_url, max_connections=250
        )
        store = RedisStore(client=given_cluster_client, async_client=async_client)
        yield redis_harness(store, redis_cluster_client)
        await async_client.aclose()


def masters_holding(client: Any, keys: list[str]) -> set[str]:
    return {client.get_node_from_key(key).name for key in keys}


@pytest.fixture
async def cluster_store(redis_cluster_url: str, redis_cluster_client: Any) -> AsyncIterator[Any]:
    """A cluster store on the session's cluster (emptied by `redis_cluster_client`), with
    scan pages of 3 keys so scans take several pages per master; closed after the test."""
    store = RedisStore(redis_cluster_url, cluster=True, scan_batch_size=3)
    yield store
    await store.aclose()


# -- keys on every master ---------------------------------------------------------------


def test_scan_and_clear_reach_the_keys_of_every_master(
    cluster_store: RedisStore, redis_cluster_client: Any
) -> None:
    store = cluster_store
    keys = [f"ns:{i}" for i in range(60)]
    assert len(masters_holding(redis_cluster_client, keys)) == 3
    for i, key in enumerate(keys):
        store.set(key, i)
    store.set("other:1", 1)
    assert dict(store.scan("ns:")) == {key: i for i, key in enumerate(keys)}
    assert store.clear("ns") == 60
    assert list(store.scan("")) == [("other:1", 1)]


async def test_async_scan_and_clear_reach_the_keys_of_every_master(
    cluster_store: RedisStore,
) -> None:
    store = cluster_store
    keys = [f"ns:{i}" for i in range(60)]
    for i, key in enumerate(keys):
        await store.aset(key, i)
    assert dict([item async for item in store.ascan("ns:")]) == {k: i for i, k in enumerate(keys)}
    assert await store.aclear("ns") == 60
    assert [item async for item in store.ascan("")] == []


def test_a_hash_tagged_prefix_keeps_its_keys_on_one_master_and_scans_them_all(
    cluster_store: RedisStore, redis_cluster_client: Any
) -> None:
    store = cluster_store
    keys = [f"budget:{{alice}}:{i}" for i in range(20)]
    assert len(masters_holding(redis_cluster_client, keys)) == 1
    for i, key in enumerate(keys):
        store.set(key, i)
    store.set("budget:{bob}:0", 0)
    assert dict(store.scan("budget:{alice}:")) == {key: i for i, key in enumerate(keys)}
    assert sorted(k for k, _ in store.scan("budget:{")) == sorted([*keys, "budget:{bob}:0"])
    assert store.clear("budget:{alice}") == 20


def test_the_add_script_runs_on_the_master_of_its_key(
    cluster_store: RedisStore, redis_cluster_client: Any
) -> None:
    keys = [f"spent:{i}" for i in range(12)]
    assert len(masters_holding(redis_cluster_client, keys)) == 3
    for key in keys:
        assert cluster_store.add(key, 1.5, max_value=2.0, ttl_seconds=60) == 1.5
        assert cluster_store.add(key, 1.5, max_value=2.0) is None
        assert 0 < redis_cluster_client.pttl(key) <= 60_000


# -- building one ------------------------------------------------------------------------


def test_a_plain_store_on_a_cluster_node_says_to_use_cluster_mode(
    redis_cluster_url: str, redis_cluster_client: Any
) -> None:
    store = RedisStore(redis_cluster_url)
    with pytest.raises(ValueError, match=r"cluster=True"):
        for i in range(30):  # some keys live on the node the url names; not all
            store.set(f"k{i}", i)
    store.close()


def test_the_cluster_flag_and_the_given_clients_must_agree(
    redis_cluster_url: str, redis_cluster_client: Any
) -> None:
    plain = redis.Redis()
    with pytest.raises(ValueError, match="cluster=True needs"):
        RedisStore(client=plain, cluster=True)
    with pytest.raises(ValueError, match="both"):
        RedisStore(client=redis_cluster_client, async_client=redis.asyncio.Redis())
    store = RedisStore(client=redis_cluster_client)
    assert repr(store).startswith("RedisStore('Redis Cluster at 127.0.0.1:")
    store.set("k", 1)
    assert store.get("k") == 1


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:7000/1", "redis://127.0.0.1:7000?db=2", "unix:///tmp/redis.sock"]
)
def test_a_url_a_cluster_cannot_serve_is_refused_when_the_store_is_built(url: str) -> None:
    with pytest.raises(ValueError, match="cluster=True"):
        RedisStore(url, cluster=True)


def test_building_a_cluster_store_does_not_connect() -> None:
    store = RedisStore("redis://127.0.0.1:1", cluster=True, socket_timeout_seconds=0.2)
    with pytest.raises(
        StoreUnavailableError, match=re.escape("Redis Cluster at redis://127.0.0.1:1")
    ):
        store.get("k")


# -- one master stopped mid-test -----------------------------------------------------------


def filled_cluster_store(
    cluster: RedisClusterServers, dead_index: int
) -> tuple[RedisStore, list[str], list[str]]:
    """A store that gives up on a dead or frozen master within a fraction of a second,
    with keys "k:0".."k:29" set to 1, and those keys split into the ones on master
    `dead_index` (to be stopped) and the ones on the others."""
    store = RedisStore(cluster.url, cluster=True, socket_timeout_seconds=0.3, retries=1)
    keys = [f"k:{i}" for i in range(30)]
    for key in keys:
        store.set(key, 1)
    dead = [k for k in keys if cluster.node_of(k) is cluster.nodes[dead_index]]
    alive = [k for k in keys if cluster.node_of(k) is not cluster.nodes[dead_index]]
    assert dead and alive, "the test needs keys on the stopped master and on the others"
    return store, dead, alive


async def test_a_killed_master_fails_its_slots_and_the_others_go_on(
    private_redis_cluster: RedisClusterServers,
) -> None:
    cluster = private_redis_cluster
    store, dead, alive = filled_cluster_store(cluster, dead_index=1)
    for key in dead + alive:
        await store.aset(key, 1)  # the async client knows the cluster before it breaks
    tagged_alive = next(
        f"t:{{{i}}}:" for i in range(100) if cluster.node_of(f"{{{i}}}") is not cluster.nodes[1]
    )
    store.set(tagged_alive + "x", 1)
    cluster.nodes[1].kill()

    for key in dead:
        with pytest.raises(StoreUnavailableError, match="Redis Cluster at"):
            store.get(key)
        with pytest.raises(StoreUnavailableError):
            store.add(key, 1, max_value=5)
        with pytest.raises(StoreUnavailableError):
            await store.aget(key)
        with pytest.raises(StoreUnavailableError):
            await store.aadd(key, 1, max_value=5)
    for key in alive:
        assert store.add(key, 1, max_value=5) == 2
        assert await store.aadd(key, 1, max_value=5) == 3
        assert store.get(key) == 3
    with pytest.raises(StoreUnavailableError):
        list(store.scan("k:"))  # a scan of every master cannot be complete
    with pytest.raises(StoreUnavailableError):
        [item async for item in store.ascan("k:")]
    with pytest.raises(StoreUnavailableError):
        store.clear("k")
    # A hash-tagged prefix lives on one master: its scan needs only that one.
    assert list(store.scan(tagged_alive)) == [(tagged_alive + "x", 1)]
    assert [item async for item in store.ascan(tagged_alive)] == [(tagged_alive + "x", 1)]
    await store.aclose()


def test_a_frozen_master_times_out_and_serves_again_once_it_resumes(
    private_redis_cluster: RedisClusterServers,
) -> None:
    cluster = private_redis_cluster
    store, dead, alive = filled_cluster_store(cluster, dead_index=0)
    cluster.nodes[0].pause()
    try:
        with pytest.raises(StoreUnavailableError):
            store.get(dead[0])
        assert store.get(alive[0]) == 1
    finally:
        cluster.nodes[0].resume()
    assert store.get(dead[0]) == 1


def test_a_cluster_that_requires_full_coverage_refuses_everything_once_a_master_fails(
    tmp_path: Any,
) -> None:
    """Redis's default (cluster-require-full-coverage yes): once the others mark the
    master failed, every node answers CLUSTERDOWN; the store says unavailable."""
    cluster = RedisClusterServers(tmp_path, full_coverage=True, node_timeout_ms=300).start()
    try:
        store, _, alive = filled_cluster_store(cluster, dead_index=2)
        cluster.nodes[2].kill()
        cluster.wait_until_state(cluster.nodes[0], "fail")
        cluster.wait_until_state(cluster.nodes[1], "fail")
        with pytest.raises(StoreUnavailableError, match=r"CLUSTERDOWN|ClusterDown"):
            store.get(alive[0])
        with pytest.raises(StoreUnavailableError):
            store.add(alive[0], 1)
    finally:
        cluster.stop()


# -- redis-py behaviour the store relies on (docs/internals.md) -------------------------


def test_redis_py_answers_a_one_node_cluster_scan_with_that_nodes_cursor(
    redis_cluster_client: Any,
) -> None:
    node = redis_cluster_client.get_primaries()[0]
    cursors, keys = redis_cluster_client.scan(cursor=0, count=10, target_nodes=node)
    assert list(cursors) == [node.name]
    assert isinstance(cursors[node.name], int) and isinstance(keys, list)


def test_a_plain_scan_cursor_is_taken_as_it_is() -> None:
    assert RedisStore._scan_reply((b"17", [b"k"])) == (17, [b"k"])
    assert RedisStore._scan_reply(({"127.0.0.1:7000": 0}, (b"k",))) == (0, [b"k"])
