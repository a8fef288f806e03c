"""Store doubles for tests: real stores with an off switch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence

from langchain_tokenopt.errors import StoreUnavailableError
from langchain_tokenopt.stores import MemoryStore
from langchain_tokenopt.stores.base import JSON, Number, Write

__all__ = ["SwitchableStore"]


class SwitchableStore(MemoryStore):
    """A MemoryStore that raises `StoreUnavailableError` while `down` (sync and async).

    The error is the one `RedisStore` raises when Redis is unreachable.
    `adds_until_down` takes it down after that many more successful `add` calls, to
    cut a flush in the middle; `sets_until_failure` makes the `set` after that many
    more successful ones raise once (a process dying between two writes).
    """

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.adds_until_down: int | None = None
        self.sets_until_failure: int | None = None

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("SwitchableStore", "switched off by the test")

    def get(self, key: str) -> JSON | None:
        self._check()
        return super().get(key)

    def set(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        self._check()
        if self.sets_until_failure is not None:
            self.sets_until_failure -= 1
            if self.sets_until_failure < 0:
                self.sets_until_failure = None
                raise StoreUnavailableError("SwitchableStore", "one write failed for the test")
        super().set(key, value, ttl_seconds)

    def set_many(self, writes: Sequence[Write]) -> None:
        for key, value, ttl_seconds in writes:  # each write can fail, as with `set`
            self.set(key, value, ttl_seconds)

    def delete(self, key: str) -> bool:
        self._check()
        return super().delete(key)

    def add(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        if self.adds_until_down is not None:
            if self.adds_until_down == 0:
                self.down = True
            self.adds_until_down -= 1
        self._check()
        return super().add(key, amount, ttl_seconds=ttl_seconds, max_value=max_value)

    def scan(self, prefix: str) -> Iterator[tuple[str, JSON]]:
        self._check()
        return super().scan(prefix)

    def clear(self, namespace: str) -> int:
        self._check()
        return super().clear(namespace)

    async def aget(self, key: str) -> JSON | None:
        return self.get(key)

    async def aset(self, key: str, value: JSON, ttl_seconds: float | None = None) -> None:
        self.set(key, value, ttl_seconds)

    async def aset_many(self, writes: Sequence[Write]) -> None:
        self.set_many(writes)

    async def adelete(self, key: str) -> bool:
        return self.delete(key)

    async def aadd(
        self,
        key: str,
        amount: Number,
        *,
        ttl_seconds: float | None = None,
        max_value: Number | None = None,
    ) -> Number | None:
        return self.add(key, amount, ttl_seconds=ttl_seconds, max_value=max_value)

    async def ascan(self, prefix: str) -> AsyncIterator[tuple[str, JSON]]:
        for pair in self.scan(prefix):
            yield pair

    async def aclear(self, namespace: str) -> int:
        return self.clear(namespace)
