"""State stores: memory (one process), SQLite (one machine), Redis (many machines).

CONTRACT STUB: `MemoryStore(max_entries=None)`, `SQLiteStore(path=":memory:" | str)`,
`RedisStore(url="redis://..." | client=redis.Redis)` all implement `Store`.
`RedisStore` imports redis-py lazily (extra `redis`).
"""

from langchain_tokenopt.stores.base import JSON, Store

__all__ = ["JSON", "MemoryStore", "RedisStore", "SQLiteStore", "Store"]
