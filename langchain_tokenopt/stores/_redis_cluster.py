"""Redis Cluster pieces of `RedisStore`: which clients are cluster clients, which nodes a
scan visits, and how the store builds its own cluster clients.

Every command the store sends touches one key (GET, SET, DEL, INCRBY, the add script),
except a scan's MGET and a clear's UNLINK, which redis-py's cluster client splits by
hash slot. A scan visits every master, or only the master of a prefix's hash tag: all
keys starting with "budget:{alice}:" live in the slot of "alice".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from langchain_tokenopt.core.extras import require
from langchain_tokenopt.errors import InvalidArgumentError

__all__ = [
    "check_cluster_url",
    "is_cluster_client",
    "new_async_cluster",
    "new_sync_cluster",
    "prefix_hash_tag",
]


def prefix_hash_tag(prefix: str) -> str | None:
    """The hash tag every key starting with `prefix` has, or None if they may differ.

    Redis hashes only the part between the first "{" and the first "}" after it, when
    that part is not empty; so a prefix holding such a complete tag puts all its keys
    in one slot.

        >>> prefix_hash_tag("budget:{alice}:"), prefix_hash_tag("budget:{ali")
        ('alice', None)
    """
    start = prefix.find("{")
    if start < 0:
        return None
    end = prefix.find("}", start + 1)
    if end <= start + 1:  # no closing brace yet, or "{}" (then the whole key is hashed)
        return None
    return prefix[start + 1 : end]


def check_cluster_url(url: str, shown_url: str) -> None:
    """Refuse a url a Redis Cluster cannot serve (a Unix socket, a database other than 0)
    when the store is built, not as an outage on its first call."""
    parts = urlsplit(url)
    database = parts.path.strip("/") or "0"
    if parts.scheme not in ("redis", "rediss"):
        problem = (
            f"a Redis Cluster is reached over TCP (redis:// or rediss://), not {parts.scheme}://"
        )
    elif database != "0" or "db=" in parts.query:
        problem = "a Redis Cluster has only database 0"
    else:
        return
    raise InvalidArgumentError(f"Cannot use {shown_url} with cluster=True: {problem}.")


def is_cluster_client(client: Any) -> bool:
    """Whether `client` is redis-py's sync or async `RedisCluster`."""
    if client is None:
        return False
    sync_cluster = require("redis.cluster", "redis").RedisCluster
    async_cluster = require("redis.asyncio.cluster", "redis").RedisCluster
    return isinstance(client, (sync_cluster, async_cluster))


def new_sync_cluster(url: str, retries: int, pool_kwargs: dict[str, Any]) -> Any:
    """A `redis.cluster.RedisCluster` from `url`: one blocking pool per node."""
    redis = require("redis", "redis")
    retry = require("redis.retry", "redis").Retry(_no_backoff(), retries)
    return require("redis.cluster", "redis").RedisCluster.from_url(
        url,
        retry=retry,
        connection_pool_class=redis.BlockingConnectionPool,
        **pool_kwargs,
    )


def new_async_cluster(url: str, retries: int, pool_kwargs: dict[str, Any]) -> Any:
    """A `redis.asyncio.cluster.RedisCluster` from `url` (its pools do not block: the store
    queues calls itself)."""
    retry = require("redis.asyncio.retry", "redis").Retry(_no_backoff(), retries)
    kwargs = {k: v for k, v in pool_kwargs.items() if k not in ("timeout", "retry")}
    return require("redis.asyncio.cluster", "redis").RedisCluster.from_url(
        url, retry=retry, **kwargs
    )


def _no_backoff() -> Any:
    return require("redis.backoff", "redis").NoBackoff()
