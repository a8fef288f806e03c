"""The one small interface every provider batch client implements.

`BatchAPIRunnable` speaks only to this interface: turn messages into the model's own
request body, stage a chunk of encoded requests (OpenAI uploads a file; Anthropic keeps
them for the create call), create a batch, poll it, read its results and cancel it.
Everything a restarted process needs to find a batch again is a JSON `BatchRef`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        """Prepare a chunk of encoded requests for `create` (OpenAI: upload the file)."""

    def create(self, staged: BatchRef, requests: Sequence[bytes], *, key: str) -> BatchRef:
        """Create the batch (the step that costs money); return its reference."""

    def discard(self, staged: BatchRef) -> None:
        """Forget a staged chunk that will not be used (best effort)."""

    def poll(self, ref: BatchRef) -> BatchStatus: ...

    def results(self, ref: BatchRef, status: BatchStatus) -> list[tuple[str, Outcome]]:
        """Every request's outcome as `(custom_id, outcome)`; missing ones are absent."""

    def cancel(self, ref: BatchRef) -> None: ...

    async def astage(self, requests: Sequence[bytes]) -> BatchRef: ...

    async def acreate(
        self, staged: BatchRef, requests: Sequence[bytes], *, key: str
    ) -> BatchRef: ...

    async def adiscard(self, staged: BatchRef) -> None: ...

    async def apoll(self, ref: BatchRef) -> BatchStatus: ...

    async def aresults(self, ref: BatchRef, status: BatchStatus) -> list[tuple[str, Outcome]]: ...

    async def acancel(self, ref: BatchRef) -> None: ...
