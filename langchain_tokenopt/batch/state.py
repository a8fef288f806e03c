"""Where a submitted batch is remembered, so a restarted process collects it.

A `BatchJob` (provider, request count, and for each chunk of the input its index range
and batch reference) is saved in a `Store` under the caller's key as soon as each
batch is created; before each create call, the attempt about to be made is saved too,
so a process that dies between the two can find that batch at the provider. The input
order is the custom ids: request `i` is `item-<i>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_tokenopt.batch.endpoint import BatchRef
from langchain_tokenopt.errors import CorruptStateError
from langchain_tokenopt.stores import Store

_VERSION = 1


def custom_id(index: int) -> str:
    """The custom id of the request at `index` of the input."""
    return f"item-{index}"


def index_of(custom_id: str) -> int | None:
    """The input index a custom id names, or None if it is not one of ours."""
    head, _, tail = custom_id.partition("-")
    return int(tail) if head == "item" and tail.isdigit() else None


@dataclass(frozen=True)
class Chunk:
    """Requests `start` to `end` (exclusive) of the input, sent as one batch."""

    start: int
    end: int
    ref: BatchRef


@dataclass
class BatchJob:
    """What a process needs to collect (or cancel) a batch it did not create."""

    key: str
    provider: str
    count: int
    chunks: list[Chunk] = field(default_factory=list)
    complete: bool = False  # every chunk has its batch
    #: chunk start -> attempt token of a create call whose batch id is not saved yet
    attempts: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "provider": self.provider,
            "count": self.count,
            "complete": self.complete,
            "chunks": [{"start": c.start, "end": c.end, "ref": c.ref} for c in self.chunks],
            "attempts": {str(start): token for start, token in self.attempts.items()},
        }

    @classmethod
    def from_json(cls, key: str, data: Any) -> BatchJob | None:
        """The job saved as `data`; None when nothing (or another version) is saved.

        Saved data of our version that cannot be read raises `CorruptStateError`
        naming the key: reading it as missing could pay for its batches twice.
        """
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            return None
        try:
            return cls(
                key=key,
                provider=str(data["provider"]),
                count=int(data["count"]),
                complete=bool(data["complete"]),
                chunks=[
                    Chunk(int(c["start"]), int(c["end"]), dict(c["ref"])) for c in data["chunks"]
                ],
                attempts={int(k): str(v) for k, v in (data.get("attempts") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptStateError(
                key,
                f"not a batch job ({type(exc).__name__}: {str(exc)[:100]})",
                remedy="Check the provider's console for its batches, then delete the key "
                "from the store or name another batch_key.",
            ) from None

    def starts(self) -> set[int]:
        """The first index of every chunk that has its batch."""
        return {chunk.start for chunk in self.chunks}

    def chunk_of(self, index: int) -> Chunk:
        for chunk in self.chunks:
            if chunk.start <= index < chunk.end:
                return chunk
        raise LookupError(index)


class JobStore:
    """`BatchJob`s in a `Store`, with async twins."""

    def __init__(self, store: Store, ttl_seconds: float | None) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds

    def load(self, key: str) -> BatchJob | None:
        return BatchJob.from_json(key, self.store.get(key))

    def save(self, job: BatchJob) -> None:
        self.store.set(job.key, job.to_json(), ttl_seconds=self.ttl_seconds)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    async def aload(self, key: str) -> BatchJob | None:
        return BatchJob.from_json(key, await self.store.aget(key))

    async def asave(self, job: BatchJob) -> None:
        await self.store.aset(job.key, job.to_json(), ttl_seconds=self.ttl_seconds)

    async def adelete(self, key: str) -> None:
        await self.store.adelete(key)
