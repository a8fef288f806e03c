"""What do our stores cost per operation, against LangChain's key-value stores?

Pairs, each measured in the same run on the same machine:
- `MemoryStore` vs langchain-core `InMemoryStore`
- `SQLiteStore` (one file) vs langchain-classic `LocalFileStore` (one file per key)
- `RedisStore` vs langchain-community `RedisStore` (needs a redis-server: REDIS_URL, or
  /usr/bin/redis-server is started on a free port; skipped when neither exists)

Operations: set a small JSON document, get it, and add 1 to a counter. LangChain's
stores have no add, so theirs is a get + set (not atomic; ours is). Values go through
JSON on both sides. Times are wall clock per operation, best of a few short rounds.

Run: python benchmarks/bench_stores.py [--ops 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.stores import InMemoryStore

from langchain_tokenopt.stores import MemoryStore, RedisStore, SQLiteStore

DOC = {"model": "gpt-4o-mini", "input_tokens": 1234, "tags": ["a", "b"], "cost_usd": "0.0012"}


class Ops:
    """set / get / add on one store, under one name."""

    def __init__(
        self,
        name: str,
        set_: Callable[[str, Any], None],
        get: Callable[[str], Any],
        add: Callable[[str, int], Any],
    ) -> None:
        self.name, self.set, self.get, self.add = name, set_, get, add


def ours(store: Any, name: str) -> Ops:
    return Ops(name, store.set, store.get, lambda key, n: store.add(key, n))


def langchain_kv(store: Any, name: str, encode: bool) -> Ops:
    """A LangChain BaseStore driven the way a component would use it."""

    def dump(value: Any) -> Any:
        text = json.dumps(value)
        return text.encode() if encode else text

    def load(raw: Any) -> Any:
        return None if raw is None else json.loads(raw)

    def set_(key: str, value: Any) -> None:
        store.mset([(key, dump(value))])

    def get(key: str) -> Any:
        return load(store.mget([key])[0])

    def add(key: str, amount: int) -> Any:
        total = (get(key) or 0) + amount
        set_(key, total)
        return total

    return Ops(name, set_, get, add)


def per_op_us(action: Callable[[int], None], ops: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(ops):
            action(i)
        best = min(best, time.perf_counter() - start)
    return best / ops * 1e6


def actions(side: Ops) -> dict[str, Callable[[int], None]]:
    """The timed loop body of each operation on one store."""
    side.set("doc_0", DOC)

    def set_doc(i: int) -> None:
        side.set(f"doc_{i % 100}", DOC)

    def get_doc(_i: int) -> None:
        side.get("doc_0")

    def add_one(_i: int) -> None:
        side.add("counter", 1)

    return {"set": set_doc, "get": get_doc, "add": add_one}


def measure(pair: tuple[Ops, Ops], ops: int, rounds: int) -> None:
    ours_actions, their_actions = actions(pair[0]), actions(pair[1])
    for op_name in ("set", "get", "add"):
        mine = per_op_us(ours_actions[op_name], ops, rounds)
        theirs = per_op_us(their_actions[op_name], ops, rounds)
        print(
            f"{pair[0].name:<12} {op_name:<4} {mine:>9.1f} {pair[1].name:<24} "
            f"{theirs:>9.1f} {mine / theirs:>7.2f}x"
        )


def redis_url() -> tuple[str | None, Any]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    from tests.support.redis_server import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        return None, None
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start()
    return server.url, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from langchain_classic.storage import LocalFileStore
    from langchain_community.storage.redis import RedisStore as LangChainRedisStore

    print(f"{'ours':<12} {'op':<4} {'us/op':>9} {'LangChain':<24} {'us/op':>9} {'ratio':>8}")
    measure(
        (ours(MemoryStore(), "Memory"), langchain_kv(InMemoryStore(), "core InMemoryStore", False)),
        args.ops,
        args.rounds,
    )
    with tempfile.TemporaryDirectory() as tmp:
        measure(
            (
                ours(SQLiteStore(Path(tmp) / "bench.db"), "SQLite"),
                langchain_kv(LocalFileStore(Path(tmp) / "files"), "classic LocalFileStore", True),
            ),
            args.ops,
            args.rounds,
        )
    url, server = redis_url()
    if url is None:
        print("Redis: skipped (no REDIS_URL and no redis-server)")
        return
    try:
        theirs = LangChainRedisStore(redis_url=url)
        theirs.client.flushdb()
        measure(
            (ours(RedisStore(url), "Redis"), langchain_kv(theirs, "community RedisStore", True)),
            args.ops,
            args.rounds,
        )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
