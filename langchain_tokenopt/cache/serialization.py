"""Cache entries as stored: langchain-core JSON (`langchain_core.load`), never pickle.

An entry is ``{"v": 1, "g": dumps(generations), "m": model, "i": input tokens,
"o": output tokens, "u": dollars in 1e-12 units or None, "c": created (epoch
seconds)}``. Reading one revives generations and messages only, checked before each
object is built, so a tampered or foreign store value cannot run code, and the
serialized generations are measured first (`core.boundedjson`: at most 128 levels
deep), so none can exhaust the stack: either is a `CorruptEntryError`, which the cache
treats as a miss.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langchain_core.load import dumps, loads
from langchain_core.load.load import default_init_validator
from langchain_core.outputs import Generation

from langchain_tokenopt.cache.savings import Saving
from langchain_tokenopt.core.boundedjson import JSONLimitError, check_json_text

__all__ = [
    "ENTRY_VERSION",
    "CorruptEntryError",
    "decode_generations",
    "entry_payload",
    "fresh_copies",
    "new_entry",
    "serialize",
]

ENTRY_VERSION = 1

# Classes a cache entry may contain: generations and messages, nothing that runs
# logic on construction. Checked before each object is built.
_ALLOWED_CLASS_NAMES = frozenset(
    {
        "Generation",
        "GenerationChunk",
        "ChatGeneration",
        "ChatGenerationChunk",
        "AIMessage",
        "AIMessageChunk",
        "HumanMessage",
        "HumanMessageChunk",
        "SystemMessage",
        "SystemMessageChunk",
        "ToolMessage",
        "ToolMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
    }
)

# What `dumps` writes in place of a value it cannot serialize.
_NOT_SERIALIZABLE = '"type": "not_implemented"'


class CorruptEntryError(ValueError):
    """A stored value is not a readable TokenOptCache entry.

    Internal: every caller in the cache catches it and treats the entry as a miss.
    """


def serialize(generations: Sequence[Generation]) -> str | None:
    """`dumps(generations)`; None when a field is not JSON-serializable or the result
    could not be read back (nested too deep, too large)."""
    try:
        payload = dumps(list(generations))
        check_json_text(payload)
    except (JSONLimitError, RecursionError):
        return None
    return None if _NOT_SERIALIZABLE in payload else payload


def new_entry(payload: str, saving: Saving) -> dict[str, Any]:
    """The stored entry for a serialized response and what a hit on it saves."""
    return {
        "v": ENTRY_VERSION,
        "g": payload,
        "m": saving.model,
        "i": saving.input_tokens,
        "o": saving.output_tokens,
        "u": saving.usd_pico,
        "c": time.time(),
    }


def entry_payload(entry: Any) -> str | None:
    """The serialized generations of a stored entry; None if it is not one."""
    if not isinstance(entry, dict) or entry.get("v") != ENTRY_VERSION:
        return None
    payload = entry.get("g")
    return payload if isinstance(payload, str) else None


def _only_generations_and_messages(class_path: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    """`init_validator` for `loads`: refuse every class but generations and messages.

    Its `ValueError` never leaves the package: `loads` raises it inside
    `decode_generations`, which turns it into `CorruptEntryError`, and the cache reads
    that as a miss (logged). Only langchain-core's `loads` sees the builtin.
    """
    if class_path[0] not in ("langchain", "langchain_core") or (
        class_path[-1] not in _ALLOWED_CLASS_NAMES
    ):
        raise ValueError(f"{'.'.join(class_path)} may not appear in a cache entry")
    default_init_validator(class_path, kwargs)


def decode_generations(entry: Any) -> list[Generation]:
    """The generations of a stored entry; `CorruptEntryError` if it is not one."""
    if not isinstance(entry, dict) or entry.get("v") != ENTRY_VERSION:
        raise CorruptEntryError("not a TokenOptCache entry")
    payload = entry_payload(entry)
    if payload is None:
        raise CorruptEntryError("entry has no serialized generations")
    try:
        check_json_text(payload)
    except JSONLimitError as exc:
        raise CorruptEntryError(f"serialized generations: {exc}") from None
    try:
        # "core" keeps langchain-core's cached allowlist of class paths (fast); the
        # validator narrows it to generations and messages before anything is built.
        value = loads(
            payload, allowed_objects="core", init_validator=_only_generations_and_messages
        )
    except Exception as exc:  # any failure to revive means the entry is unusable
        raise CorruptEntryError(f"cannot deserialize: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(g, Generation) for g in value):
        raise CorruptEntryError("entry does not hold a list of Generation")
    return value


def fresh_copies(generations: Sequence[Generation]) -> list[Generation]:
    """Deep copies that share nothing with `generations` (pydantic's `model_copy`)."""
    return [generation.model_copy(deep=True) for generation in generations]
