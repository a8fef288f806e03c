"""The one small interface every provider batch client implements.

`BatchAPIRunnable` speaks only to this interface: turn messages into the model's own
request body, stage a chunk of encoded requests (OpenAI uploads a file; Anthropic keeps
nothing and gets the requests again with the create call), create a batch, find one a
crashed process created, poll it, read its results one by one and cancel it.
Everything a restarted process needs to find a batch again is a JSON `BatchRef`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

#: What identifies one created batch at the provider: JSON, saved in a `Store`.
BatchRef = dict[str, str]


class BatchStatus(NamedTuple):
    """A batch's state as last polled.

    `ended` is True once the provider will not process any more of its requests
    (completed, expired, cancelled or failed); `status` is the provider's own word;
    `detail` carries what `results` needs (file ids, a batch-level error message).
    """

    ended: bool
    status: str
    detail: Mapping[str, Any]


class BatchLabel(NamedTuple):
    """What a created batch is tagged with, so a restarted process can recognize it.

    `key` is the job's store key, `chunk` the item range ("0-999"), `attempt` a random
    token saved in the store before the create call: only a batch of this very attempt
    is adopted, never yesterday's batch under the same key.
    """

    key: str
    chunk: str
    attempt: str


class ItemFailure(NamedTuple):
    """Why one request of a batch produced no answer."""

    reason: str  # "failed", "expired" or "cancelled"
    message: str
    status_code: int | None = None
    code: str | None = None


#: One request's outcome: the model's answer or why there is none.
Outcome = ChatResult | ItemFailure


class BatchEndpoint(Protocol):
    """A provider batch API bound to one chat model (see the module docstring).

    `encode` is pure and fast (it runs once per request); the other methods do I/O and
    have async twins.
    """

    provider: str
    max_requests_per_batch: int
    max_bytes_per_batch: int

    def request_body(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        """The body the model itself would send for `messages` (with its bound arguments)."""

    def encode(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        """One request as the provider's batch input expects it (a JSONL line)."""

    def stage(self, requests: Sequence[bytes]) -> BatchRef:
        """Prepare a chunk of encoded requests for `create` (OpenAI: upload the file).

        An empty reference means nothing was kept: `create` gets the requests again.
        """

    def create(
        self, staged: BatchRef, requests: Sequence[bytes] | None, *, label: BatchLabel
    ) -> BatchRef:
        """Create the batch (the step that costs money), tagged with `label` where the
        provider keeps metadata; return its reference."""

    def find(self, label: BatchLabel) -> BatchRef | None:
        """A recent batch created with `label` (by a process that died before saving
        its id), or None; always None where the provider keeps no metadata."""

    def discard(self, staged: BatchRef) -> None:
        """Forget a staged chunk that will not be used (best effort)."""

    def poll(self, ref: BatchRef) -> BatchStatus: ...

    def results(self, ref: BatchRef, status: BatchStatus) -> Iterable[tuple[str, Outcome]]:
        """Every request's outcome as `(custom_id, outcome)`, decoded as iterated;
        missing ones are absent."""

    def cancel(self, ref: BatchRef) -> None: ...

    async def astage(self, requests: Sequence[bytes]) -> BatchRef: ...

    async def acreate(
        self, staged: BatchRef, requests: Sequence[bytes] | None, *, label: BatchLabel
    ) -> BatchRef: ...

    async def afind(self, label: BatchLabel) -> BatchRef | None: ...

    async def adiscard(self, staged: BatchRef) -> None: ...

    async def apoll(self, ref: BatchRef) -> BatchStatus: ...

    async def aresults(
        self, ref: BatchRef, status: BatchStatus
    ) -> Iterable[tuple[str, Outcome]]: ...

    async def acancel(self, ref: BatchRef) -> None: ...
