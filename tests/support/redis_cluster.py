"""A real Redis Cluster of three masters on loopback for the tests.

Fixture `redis_cluster_url` (session scope): `REDIS_CLUSTER_URL` when set, else three
`redis-server --cluster-enabled yes` (Debian package) on free 127.0.0.1 ports, the 16384
slots split in three (CLUSTER ADDSLOTSRANGE) and the nodes joined (CLUSTER MEET); it is
ready when every node says `cluster_state:ok` and sees three masters covering every
slot (polled, not slept). Stopped at the end. Skips or fails like `redis_url` without
a redis-server binary.
Fixture `redis_cluster_client` (function scope): a `redis.cluster.RedisCluster` on it
(bytes replies), every master flushed before each test.
Fixture `private_redis_cluster` (function scope): a `RedisClusterServers` of the test's
own, for tests that stop a master (`cluster-require-full-coverage no`, so the other
masters keep serving their slots).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_server import (
    RedisServer,
    _require_binary,
    _require_redis_py,
    free_cluster_port,
)

SLOTS = 16384
MASTERS = 3
_READY_WITHIN_SECONDS = 20.0


class RedisClusterServers:
    """Three redis-server processes in cluster mode, each master of a third of the slots.

    Example::

        cluster = RedisClusterServers(tmp_path, full_coverage=False).start()
        cluster.url                      # 'redis://127.0.0.1:41234'
        cluster.node_of("budget:{a}:x")  # the RedisServer serving that key's slot
        cluster.nodes[0].kill()
        cluster.stop()
    """

    def __init__(
        self,
        workdir: Path,
        binary: str | None = None,
        *,
        full_coverage: bool = False,
        node_timeout_ms: int = 2000,
    ) -> None:
        self.workdir = workdir
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(node_timeout_ms),
            "--cluster-require-full-coverage",
            "yes" if full_coverage else "no",
        ]
        self.nodes: list[RedisServer] = []
        for index in range(MASTERS):
            node_dir = workdir / f"node{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(
                RedisServer(node_dir, binary, extra_args=args, pick_port=free_cluster_port)
            )
        # Slot range [first, last] of each node, in `nodes` order.
        step = SLOTS // MASTERS
        self.ranges = [
            (i * step, SLOTS - 1 if i == MASTERS - 1 else (i + 1) * step - 1)
            for i in range(MASTERS)
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> RedisClusterServers:
        """Start the nodes, assign the slots, join them, and wait until the cluster is ok."""
        redis = _require_redis_py()
        try:
            with ThreadPoolExecutor(MASTERS) as pool:  # each start polls for PING
                list(pool.map(lambda node: node.start(), self.nodes))
            for epoch, (node, (first, last)) in enumerate(
                zip(self.nodes, self.ranges, strict=True), start=1
            ):
                with _client(redis, node.port) as client:
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
                    client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            for node in self.nodes:  # every node meets every other: no wait for gossip
                with _client(redis, node.port) as client:
                    for other in self.nodes:
                        if other is not node:
                            client.execute_command("CLUSTER", "MEET", "127.0.0.1", other.port)
            self.wait_until_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_until_ok(self, nodes: list[RedisServer] | None = None) -> None:
        """Poll `nodes` (default all) until each serves every slot with three masters."""
        redis = _require_redis_py()
        deadline = time.monotonic() + _READY_WITHIN_SECONDS
        for node in nodes or self.nodes:
            with _client(redis, node.port) as client:
                while not _ready(client.execute_command("CLUSTER", "INFO")):
                    if time.monotonic() > deadline:
                        detail = (node.workdir / "redis.log").read_text(errors="replace")
                        raise RuntimeError(f"Redis Cluster never got ready:\n{detail[-2000:]}")
                    time.sleep(0.02)  # readiness poll

    def wait_until_state(self, node: RedisServer, state: str) -> None:
        """Poll `node` until its CLUSTER INFO says `cluster_state:<state>`."""
        redis = _require_redis_py()
        deadline = time.monotonic() + _READY_WITHIN_SECONDS
        with _client(redis, node.port) as client:
            while _info(client.execute_command("CLUSTER", "INFO")).get("cluster_state") != state:
                assert time.monotonic() < deadline, f"cluster_state never became {state}"
                time.sleep(0.02)  # readiness poll

    def node_of(self, key: str) -> RedisServer:
        """The node serving `key`'s hash slot."""
        slot = _require_redis_py().crc.key_slot(key.encode("utf-8"))
        for node, (first, last) in zip(self.nodes, self.ranges, strict=True):
            if first <= slot <= last:
                return node
        raise AssertionError(f"slot {slot} is not assigned")

    def restart(self, node: RedisServer) -> None:
        """Start a stopped `node` again on its port (it rejoins from nodes.conf)."""
        node.start(port=node.port)
        self.wait_until_ok()

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(OSError):
                node.stop()


def _client(redis: Any, port: int) -> Any:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)


def _info(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def _ready(text: str) -> bool:
    info = _info(text)
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_slots_assigned") == str(SLOTS)
        and info.get("cluster_known_nodes") == str(MASTERS)
        and info.get("cluster_size") == str(MASTERS)
    )


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one node of a Redis Cluster: REDIS_CLUSTER_URL, or three masters started here."""
    given = os.environ.get("REDIS_CLUSTER_URL")
    if given:
        yield given
        return
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"), _require_binary())
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def _redis_cluster_session_client(redis_cluster_url: str) -> Iterator[Any]:
    """One cluster client for the session (building one asks the cluster for its layout)."""
    redis = _require_redis_py()
    client = redis.cluster.RedisCluster.from_url(
        redis_cluster_url, socket_timeout=5, socket_connect_timeout=5
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_cluster_client(_redis_cluster_session_client: Any) -> Any:
    """A `redis.cluster.RedisCluster` on `redis_cluster_url`, every master flushed first."""
    client = _redis_cluster_session_client
    client.flushdb(target_nodes=_require_redis_py().cluster.RedisCluster.PRIMARIES)
    return client


@pytest.fixture
def private_redis_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    """A started three-master cluster of this test's own, stopped afterwards."""
    cluster = RedisClusterServers(tmp_path, _require_binary())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
