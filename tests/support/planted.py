"""Stores with a back door: write raw text under a key, as another program would.

The corrupt-state suites plant values no component of ours writes (a value nested
100,000 levels deep, text that is not JSON) straight into SQLite or Redis, then check
what the cache, the budget and the summarizing history make of them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_tokenopt.stores import SQLiteStore, Store

__all__ = ["DEEP_JSON", "NOT_JSON", "Planted", "redis_planted", "sqlite_planted"]

#: 100,000 levels deep: `json.loads` of it raises RecursionError.
DEEP_JSON = "[" * 100_000 + "]" * 100_000
NOT_JSON = "{not json"


@dataclass
class Planted:
    """A real store plus raw access to what it keeps."""

    store: Store
    plant: Callable[[str, str], None]
    read_raw: Callable[[str], str | None]


def sqlite_planted(path: Path) -> Planted:
    """A `SQLiteStore` file, planted into through a plain sqlite3 connection."""
    store = SQLiteStore(path)

    def plant(key: str, text: str) -> None:
        with sqlite3.connect(path, isolation_level=None, timeout=10) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tokenopt_store (key, value, expires_at) "
                "VALUES (?, ?, NULL)",
                (key, text),
            )

    def read_raw(key: str) -> str | None:
        with sqlite3.connect(path, isolation_level=None, timeout=10) as conn:
            row = conn.execute("SELECT value FROM tokenopt_store WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    return Planted(store=store, plant=plant, read_raw=read_raw)


def redis_planted(url: str, client: Any) -> Planted:
    """A `RedisStore` on `url`, planted into through the plain redis-py `client`."""
    from langchain_tokenopt.stores import RedisStore

    def read_raw(key: str) -> str | None:
        raw = client.get(key)
        return None if raw is None else raw.decode("utf-8")

    return Planted(
        store=RedisStore(url), plant=lambda key, text: client.set(key, text), read_raw=read_raw
    )
