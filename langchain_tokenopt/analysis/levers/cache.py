"""Cache lever: a request identical to (or, semantically, like) an earlier one is answered
from the cache, sending nothing; measured across the whole log."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import replace
from typing import Any

from langchain_tokenopt.analysis.levers.base import Lever, Step
from langchain_tokenopt.analysis.replay import Sent
from langchain_tokenopt.cache.exactness import exactness_features
from langchain_tokenopt.cache.keys import digest
from langchain_tokenopt.cache.semantic import SemanticIndex

__all__ = ["CacheLever", "identical_request_key"]


def identical_request_key(sent: Sent) -> Hashable:
    """Equal for requests a cache must treat as the same one (model, tools, messages).

    The one place the analysis decides "identical request"; the cache's own key
    (cache/keys.py) is the reference it follows.
    """
    return hash((sent.model, sent.tools_key, tuple(message.key for message in sent.messages)))


class _Entry:
    """A user turn remembered by the semantic cache: its context, text and (once
    settled) partition."""

    __slots__ = ("context", "index", "partition", "text")

    def __init__(self, index: int, context: tuple[str, str, str], text: str) -> None:
        self.index = index
        self.context = context
        self.text = text
        self.partition = ""

    @property
    def name(self) -> str:
        """Its key in the semantic index."""
        return f"{self.partition}:{self.index}"


def _partition(context: tuple[str, str, str], text: str) -> str:
    """The semantic cache's partition of a user turn `text` after `context`: what a
    match must share exactly (cache/keys.py)."""
    model, tools, messages = context
    features = json.dumps(exactness_features(text), default=str)
    return digest(model, tools, messages, features)[:32]


class CacheLever(Lever):
    """Exact cache, plus semantic matching at `similarity` (None: exact only), across the log.

    Remembers at most `max_entries` requests (the oldest forgotten), like a cache with a
    size limit, so memory does not grow with the log.
    """

    name = "cache"

    def __init__(
        self,
        similarity: float | None = 0.9,
        max_entries: int = 200_000,
        max_semantic_entries: int = 5_000,
    ) -> None:
        self.similarity = similarity
        self._exact: OrderedDict[Hashable, None] = OrderedDict()
        self._max = max_entries
        self._semantic = SemanticIndex() if similarity is not None else None
        self._semantic_keys: OrderedDict[int, _Entry] = OrderedDict()
        # Adds not yet made to the index, in order: made just before the index is next
        # queried or forgets an entry, so it sees the same operations in the same order,
        # and a log whose partitions never repeat (most) never indexes a text.
        self._unindexed: list[_Entry] = []
        # A partition is the context (model, tools, earlier messages) and the user
        # turn's exactness features; the features are only worked out once the context
        # comes again (`_settle`), so a log whose contexts never repeat never computes them.
        self._contexts: dict[tuple[str, str, str], int] = {}  # live entries per context
        self._unsettled: dict[tuple[str, str, str], list[_Entry]] = {}
        self._partitions: dict[str, int] = {}  # live entries per settled partition
        self._max_semantic = max_semantic_entries
        self.exact_hits = 0
        self.semantic_hits = 0
        self.requests = 0

    @property
    def label(self) -> str:
        similar = f" or similar (>= {self.similarity:g})" if self.similarity is not None else ""
        return f"cache (identical{similar} requests)"

    def observe(self, step: Step) -> None:
        self.requests += 1
        key = identical_request_key(step.baseline)
        if key in self._exact:
            self._exact.move_to_end(key)
            self.exact_hits += 1
            step.notes[self.name] = True
            return
        self._exact[key] = None
        if len(self._exact) > self._max:
            self._exact.popitem(last=False)
        if self._semantic is not None and self._semantic_match(step):
            self.semantic_hits += 1
            step.notes[self.name] = True

    def _semantic_match(self, step: Step) -> bool:
        assert self._semantic is not None and self.similarity is not None
        messages = step.baseline.messages
        if not messages or messages[-1].role != "user" or not messages[-1].text.strip():
            return False
        text = messages[-1].text
        # Only this process's index sees the partition: the messages' hash stands for them.
        context = (
            str(step.baseline.model),
            str(step.baseline.tools_key),
            str(hash(tuple(m.key for m in messages[:-1]))),
        )
        entry = _Entry(step.index, context, text)
        # A query only sees its own partition: skip it when the partition is empty.
        if self._contexts.get(context):
            self._settle(context)
            entry.partition = _partition(context, text)
            if self._partitions.get(entry.partition):
                self._index_pending()
                if self._semantic.candidates(entry.partition, text, self.similarity):
                    return True
            self._partitions[entry.partition] = self._partitions.get(entry.partition, 0) + 1
        else:
            self._unsettled.setdefault(context, []).append(entry)
        self._unindexed.append(entry)
        self._semantic_keys[step.index] = entry
        self._contexts[context] = self._contexts.get(context, 0) + 1
        if len(self._semantic_keys) > self._max_semantic:
            _, oldest = self._semantic_keys.popitem(last=False)
            self._index_pending()
            self._semantic.forget(oldest.name)
            self._contexts[oldest.context] -= 1
            if not self._contexts[oldest.context]:
                del self._contexts[oldest.context]
            self._partitions[oldest.partition] -= 1
            if not self._partitions[oldest.partition]:
                del self._partitions[oldest.partition]
        return False

    def _settle(self, context: tuple[str, str, str]) -> None:
        """Work out the partitions of the live entries of `context` not counted yet."""
        for entry in self._unsettled.pop(context, ()):
            entry.partition = _partition(context, entry.text)
            self._partitions[entry.partition] = self._partitions.get(entry.partition, 0) + 1

    def _index_pending(self) -> None:
        assert self._semantic is not None
        for entry in self._unindexed:
            self._settle(entry.context)
            self._semantic.add(entry.name, entry.partition, entry.text)
        self._unindexed.clear()

    def apply(self, sent: Sent, step: Step) -> Sent:
        if step.notes.get(self.name):
            return replace(sent, answered=True, output_tokens=0)
        return sent

    def note(self) -> str:
        hits = self.exact_hits + self.semantic_hits
        similar = f", {self.semantic_hits:,} of them similar" if self._semantic else ""
        return f"{hits:,} of {self.requests:,} requests repeat an earlier one{similar}"

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "exact_hits": self.exact_hits,
            "semantic_hits": self.semantic_hits,
        }

    def absorb(self, summary: dict[str, Any]) -> None:
        self.requests += summary["requests"]
        self.exact_hits += summary["exact_hits"]
        self.semantic_hits += summary["semantic_hits"]

    def details(self) -> dict[str, Any]:
        return {"exact_hits": self.exact_hits, "semantic_hits": self.semantic_hits}
