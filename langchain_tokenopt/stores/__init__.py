"""State stores: memory (one process), SQLite (one machine), Redis (many machines).

`MemoryStore(max_entries=None)`, `SQLiteStore(path=":memory:" | str)` and
`RedisStore(url="redis://..." | client=redis.Redis)` all implement `Store`.
`RedisStore` needs redis-py (extra `redis`), imported only when one is built.
"""

from langchain_tokenopt.stores.base import JSON, Number, Store
from langchain_tokenopt.stores.memory import MemoryStore
from langchain_tokenopt.stores.redis import RedisStore
from langchain_tokenopt.stores.sqlite import SQLiteStore

__all__ = ["JSON", "MemoryStore", "Number", "RedisStore", "SQLiteStore", "Store"]
