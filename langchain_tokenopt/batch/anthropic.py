"""Anthropic's Message Batches for a `ChatAnthropic`: the same requests, half price.

Each request's `params` is the body `ChatAnthropic` would send (its own payload
builder), the client is an `anthropic` SDK client built from the model's own settings
(base URL, key, headers, retries), and each answer is read back by the model's own
response parser. Anthropic has no files API for batches: a chunk's requests are sent
with the create call.

Message Batches carry no metadata, so `find` cannot recognize a batch created by a
process that died before saving its id: on restart that chunk is sent again (a warning
names it), and the lost batch can only be cancelled from Anthropic's console.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_tokenopt.batch.endpoint import (
    BatchLabel,
    BatchRef,
    BatchStatus,
    ItemFailure,
    Outcome,
)
from langchain_tokenopt.core.extras import require
from langchain_tokenopt.errors import ArgumentTypeError

logger = logging.getLogger(__name__)

#: Anthropic's limits of one batch: 100,000 requests, 256 MB.
MAX_REQUESTS_PER_BATCH = 100_000
MAX_BYTES_PER_BATCH = 256 * 1024 * 1024
_REASONS = {"errored": "failed", "canceled": "cancelled", "expired": "expired"}


def _fallback_chat_result(message: Mapping[str, Any]) -> ChatResult:
    """A minimal reading of an Anthropic `message` (text, tool uses, usage)."""
    blocks = message.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    tool_calls = [
        {"name": b["name"], "args": b.get("input") or {}, "id": b.get("id"), "type": "tool_call"}
        for b in blocks
        if b.get("type") == "tool_use"
    ]
    usage = message.get("usage") or {}
    inputs = sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )
    outputs = int(usage.get("output_tokens") or 0)
    ai = AIMessage(
        content=text,
        tool_calls=tool_calls,
        usage_metadata=cast(
            UsageMetadata,
            {"input_tokens": inputs, "output_tokens": outputs, "total_tokens": inputs + outputs},
        ),
        response_metadata={"model_name": message.get("model"), "model_provider": "anthropic"},
        id=message.get("id"),
    )
    return ChatResult(generations=[ChatGeneration(message=ai)])


class AnthropicBatchEndpoint:
    """`BatchEndpoint` for `ChatAnthropic` (Message Batches API).

    Example:
        >>> from langchain_anthropic import ChatAnthropic
        >>> llm = ChatAnthropic(model="claude-haiku-4-5", api_key="sk-test", max_tokens=64)
        >>> endpoint = AnthropicBatchEndpoint(llm, {})
        >>> endpoint.request_body([("human", "hi")])["messages"]
        [{'role': 'user', 'content': 'hi'}]
    """

    provider = "anthropic"
    max_requests_per_batch = MAX_REQUESTS_PER_BATCH
    max_bytes_per_batch = MAX_BYTES_PER_BATCH

    def __init__(self, model: BaseChatModel, kwargs: Mapping[str, Any]) -> None:
        anthropic = require("anthropic", "anthropic")
        self.model = model
        self.kwargs = dict(kwargs)
        key = getattr(model, "anthropic_api_key", None)
        settings: dict[str, Any] = {
            "api_key": key.get_secret_value() if key is not None else None,
            "base_url": getattr(model, "anthropic_api_url", None),
            "default_headers": getattr(model, "default_headers", None),
            "max_retries": getattr(model, "max_retries", 2),
        }
        self._client: Any = anthropic.Anthropic(**settings)
        self._aclient: Any = anthropic.AsyncAnthropic(**settings)

    # -- pure --------------------------------------------------------------------------

    def request_body(self, messages: Sequence[BaseMessage] | Any) -> dict[str, Any]:
        """The body `ChatAnthropic` would send for `messages` (stream flag removed)."""
        build = getattr(self.model, "_get_request_payload", None)  # see docs/internals.md
        if build is None:
            raise ArgumentTypeError(
                f"{type(self.model).__name__} has no Anthropic payload builder: "
                "BatchAPIRunnable needs ChatAnthropic (langchain-anthropic) or a subclass"
            )
        body = dict(build(messages, stop=None, **self.kwargs))
        body.pop("stream", None)
        return body

    def encode(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        return json.dumps({"custom_id": custom_id, "params": body}, separators=(",", ":")).encode()

    def chat_result(self, message: Mapping[str, Any]) -> ChatResult:
        """The model's own reading of a `message` (see docs/internals.md)."""
        read = getattr(self.model, "_format_output", None)
        if read is None:
            return _fallback_chat_result(message)
        from anthropic.types import Message

        return read(Message.model_validate(message))  # type: ignore[no-any-return]

    def _outcome(self, entry: Any) -> tuple[str, Outcome]:
        record = entry.model_dump() if hasattr(entry, "model_dump") else dict(entry)
        result = record.get("result") or {}
        kind = result.get("type")
        if kind == "succeeded":
            try:
                return record["custom_id"], self.chat_result(result["message"])
            except (KeyError, ValueError, TypeError) as exc:
                return record["custom_id"], ItemFailure("failed", f"unreadable answer: {exc}")
        error = ((result.get("error") or {}).get("error")) or {}
        message = str(error.get("message") or f"the request {kind}")
        return record["custom_id"], ItemFailure(
            _REASONS.get(str(kind), "failed"), message, None, error.get("type")
        )

    @staticmethod
    def _status(batch: Any) -> BatchStatus:
        return BatchStatus(
            ended=batch.processing_status == "ended",
            status=str(batch.processing_status),
            detail={"message": f"the batch ended ({batch.request_counts})"},
        )

    @staticmethod
    def _requests(requests: Sequence[bytes]) -> list[Any]:
        return [json.loads(r) for r in requests]

    # -- sync I/O ----------------------------------------------------------------------

    def stage(self, requests: Sequence[bytes]) -> BatchRef:
        return {}

    def create(
        self, staged: BatchRef, requests: Sequence[bytes] | None, *, label: BatchLabel
    ) -> BatchRef:
        batch = self._client.messages.batches.create(requests=self._requests(requests or ()))
        return {"batch_id": str(batch.id)}

    def find(self, label: BatchLabel) -> BatchRef | None:
        return None  # no metadata on Message Batches: see the module docstring

    def discard(self, staged: BatchRef) -> None:
        return None

    def poll(self, ref: BatchRef) -> BatchStatus:
        return self._status(self._client.messages.batches.retrieve(ref["batch_id"]))

    def results(self, ref: BatchRef, status: BatchStatus) -> Iterator[tuple[str, Outcome]]:
        return map(self._outcome, self._client.messages.batches.results(ref["batch_id"]))

    def cancel(self, ref: BatchRef) -> None:
        self._client.messages.batches.cancel(ref["batch_id"])

    # -- async I/O ---------------------------------------------------------------------

    async def astage(self, requests: Sequence[bytes]) -> BatchRef:
        return {}

    async def acreate(
        self, staged: BatchRef, requests: Sequence[bytes] | None, *, label: BatchLabel
    ) -> BatchRef:
        batch = await self._aclient.messages.batches.create(requests=self._requests(requests or ()))
        return {"batch_id": str(batch.id)}

    async def afind(self, label: BatchLabel) -> BatchRef | None:
        return None

    async def adiscard(self, staged: BatchRef) -> None:
        return None

    async def apoll(self, ref: BatchRef) -> BatchStatus:
        return self._status(await self._aclient.messages.batches.retrieve(ref["batch_id"]))

    async def aresults(self, ref: BatchRef, status: BatchStatus) -> Iterable[tuple[str, Outcome]]:
        decoder = await self._aclient.messages.batches.results(ref["batch_id"])
        entries = [entry async for entry in decoder]  # one chunk's results, read as iterated
        return map(self._outcome, entries)

    async def acancel(self, ref: BatchRef) -> None:
        await self._aclient.messages.batches.cancel(ref["batch_id"])
