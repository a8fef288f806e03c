"""Semantic matching of a cache: which stored entry may answer a prompt it never saw.

Opt-in (`TokenOptCache(semantic=True)`). Each entry with a matchable prompt has a side
key ``{"p": partition, "t": text, "w": wording key}`` in the store. The partition
(`semantic_item`) holds everything that must match exactly: the `llm_string`, the
conversation before the last human message and its exactness features. The wording
key adds the prompt's canonical words (`wording_key`): a pointer from it to the entry
answers a reworded prompt with one store read, whatever the size of the cache. With a
`similarity_threshold`, a TF-IDF `TextIndex` over the texts (`SemanticIndex`) also finds
the closest prompt within one partition, guarded by `differences_allowed`.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

from langchain_tokenopt.cache.exactness import differences_allowed, exactness_features, prompt_text
from langchain_tokenopt.cache.keys import KeyMode, digest, normalize_request
from langchain_tokenopt.cache.wording import canonical_words

__all__ = [
    "SEMANTIC_REFRESH_SECONDS",
    "SemanticIndex",
    "parse_semantic_item",
    "parse_wording_key",
    "semantic_item",
    "wording_key",
]

# How often (at most) a process checks the store for semantic entries written by
# other processes; `TokenOptCache.refresh()` forces it.
SEMANTIC_REFRESH_SECONDS = 1.0
# Tags partitions of normalized requests, so they never equal an exact-key partition.
_NORMALIZED_PARTITION = "semantic-normalized-v1"
# Semantic candidates examined per lookup after the index query.
_SEMANTIC_CANDIDATES = 4


def semantic_item(
    prompt: str, llm_string: str, *, key: KeyMode = "normalized"
) -> tuple[str, str] | None:
    """(partition, text) of a prompt, or None if it cannot match semantically.

    With the default `key="normalized"` the partition is the request as the model sees
    it without its last question (`normalize_request(...).context`: no message ids,
    metadata, hit markers or transport settings), so a conversation replayed from the
    cache still matches; `key="exact"` keeps the raw `llm_string` and earlier JSON.

    Example:
        >>> from langchain_core.load import dumps
        >>> from langchain_core.messages import AIMessage, HumanMessage
        >>> first = [HumanMessage("hi"), AIMessage("hello", id="a"), HumanMessage("Who?")]
        >>> again = [HumanMessage("hi"), AIMessage("hello", id="b"), HumanMessage("who")]
        >>> semantic_item(dumps(first), "llm")[0] == semantic_item(dumps(again), "llm")[0]
        True
    """
    if key == "exact":
        split = prompt_text(prompt)
        if split is None:
            return None
        context, text = split
        features = json.dumps(exactness_features(text), separators=(",", ":"))
        return digest(llm_string, context, features)[:32], text
    request = normalize_request(prompt, llm_string)
    if request.last_human_text is None:
        return None
    text = request.last_human_text
    features = json.dumps(exactness_features(text), separators=(",", ":"))
    return digest(_NORMALIZED_PARTITION, request.context, features)[:32], text


def wording_key(partition: str, text: str) -> str:
    """The key two prompts share when their partition and canonical words are equal.

    Example:
        >>> wording_key("p", "What's the capital of France?") == wording_key(
        ...     "p", "what is the capital of france"
        ... )
        True
    """
    return digest(partition, " ".join(canonical_words(text)))[:32]


class SemanticIndex:
    """This process's view of the semantic side index (one `TextIndex`).

    Keys are entry hashes; each belongs to a partition (llm_string, exact context,
    exactness features), and queries only see their own partition.
    """

    def __init__(self) -> None:
        # Imported here: scikit-learn is only paid for when semantic matching is on.
        from langchain_tokenopt.core.textindex import TextIndex

        self.index = TextIndex(word_ngram_range=(1, 2), char_ngrams=True, sublinear_tf=True)
        self.partition_of: dict[str, str] = {}
        self.seen_version: Any = None
        self.last_check = -math.inf
        self.lock = threading.Lock()

    def add(self, key: str, partition: str, text: str) -> None:
        with self.lock:
            self.partition_of[key] = partition
            self.index.add(key, text)

    def forget(self, key: str) -> None:
        with self.lock:
            if self.partition_of.pop(key, None) is not None:
                self.index.remove(key)

    def reset(self) -> None:
        with self.lock:
            for key in list(self.partition_of):
                self.index.remove(key)
            self.partition_of.clear()
            self.seen_version = None
            self.last_check = -math.inf

    def replace_all(self, items: dict[str, tuple[str, str]]) -> None:
        """Make the index hold exactly `items` (key -> (partition, text))."""
        with self.lock:
            for key in [k for k in self.partition_of if k not in items]:
                del self.partition_of[key]
                self.index.remove(key)
            new = [(key, text) for key, (_, text) in items.items() if key not in self.partition_of]
            for key, (partition, _) in items.items():
                self.partition_of[key] = partition
            if new:
                self.index.add_many(new)

    def candidates(self, partition: str, text: str, threshold: float) -> list[tuple[str, float]]:
        with self.lock:
            if not self.partition_of:
                return []
            found = self.index.query(
                text,
                k=_SEMANTIC_CANDIDATES,
                min_score=threshold,
                where=lambda key: self.partition_of.get(str(key)) == partition,
            )
            return [
                (str(key), score)
                for key, score in found
                if differences_allowed(text, self.index.text(key) or "")
            ]


def parse_semantic_item(value: Any) -> tuple[str, str] | None:
    """(partition, text) of a stored side key, or None if it is not one."""
    if (
        isinstance(value, dict)
        and isinstance(value.get("p"), str)
        and isinstance(value.get("t"), str)
    ):
        return value["p"], value["t"]
    return None


def parse_wording_key(value: Any) -> str | None:
    """The wording key of a stored side key, or None (also for entries written before it)."""
    wording = value.get("w") if isinstance(value, dict) else None
    return wording if isinstance(wording, str) else None
