"""Compression lever: every human, system and tool message sent compressed (each distinct
message compressed once, saved again in every request that repeats it)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from langchain_tokenopt.analysis.levers.base import Lever, Step
from langchain_tokenopt.analysis.replay import Message, Sent
from langchain_tokenopt.compression import CompressionLevel, PromptCompressor

__all__ = ["CompressionLever"]

_UNSEEN: Any = object()


class CompressionLever(Lever):
    """`PromptCompressor(level)` on each message (AI messages are left alone)."""

    name = "compression"

    def __init__(self, level: CompressionLevel = "lossless", max_messages: int = 100_000) -> None:
        self.level: CompressionLevel = level
        self._compressor = PromptCompressor(level=level)
        self._smaller: OrderedDict[Hashable, Message | None] = OrderedDict()
        self._max = max_messages
        self.compressed = 0
        # Under --jobs: digests of the compressed messages, so the parent counts each
        # distinct message once whichever workers compressed it.
        self.digests: set[bytes] | None = None

    @property
    def label(self) -> str:
        return f"compression ({self.level})"

    def _compress(self, message: Message) -> Message:
        if message.role == "assistant":
            return message
        found = self._smaller.get(message.key, _UNSEEN)
        if found is not _UNSEEN:
            return message if found is None else found
        smaller = self._compressor.compress_message(message.base)
        result: Message | None = None
        if smaller is not message.base:
            candidate = Message.from_base(smaller)
            if len(candidate.text) < len(message.text):
                result = candidate
                self.compressed += 1
                if self.digests is not None:
                    self.digests.add(hashlib.blake2b(repr(message.key).encode()).digest())
        self._smaller[message.key] = result
        if len(self._smaller) > self._max:
            self._smaller.popitem(last=False)
        return message if result is None else result

    def observe(self, step: Step) -> None:
        # the baseline's messages compressed: `apply` reuses them for every chain that
        # sends the baseline's messages (alone, and combined when no earlier lever changed them)
        step.notes[self.name] = tuple(map(self._compress, step.baseline.messages))

    def apply(self, sent: Sent, step: Step) -> Sent:
        if sent.messages is step.baseline.messages and self.name in step.notes:
            messages: tuple[Message, ...] = step.notes[self.name]
        else:
            messages = tuple(map(self._compress, sent.messages))
        if all(a is b for a, b in zip(messages, sent.messages, strict=True)):
            return sent
        return sent.with_messages(messages)

    def note(self) -> str:
        return (
            f"{self.compressed:,} distinct messages shorter (whitespace, markdown, JSON), "
            "saved again in every request that repeats them"
        )

    def summary(self) -> dict[str, Any]:
        return {"digests": set(self.digests or ())}

    def absorb(self, summary: dict[str, Any]) -> None:
        if self.digests is None:
            self.digests = set()
        self.digests |= summary["digests"]
        self.compressed = len(self.digests)

    def details(self) -> dict[str, Any]:
        return {"level": self.level, "compressed_messages": self.compressed}
