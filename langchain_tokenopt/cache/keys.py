"""Store keys of the cache: what a model sees of a request decides its key.

`TokenOptCache(key="normalized")` (the default) keys an entry by `normalize_request`:
the messages as a model sees them (role, content, names, tool calls and results, with
tool-call ids renumbered by first appearance) and the model settings that decide the
answer (model class and settings, tools, response format, stop), without message
ids, response and usage metadata, hit markers or transport settings. The rules are
`langchain_tokenopt.core.requestkey`'s, which `UsageTracker` shares to recognise
repeated calls. `key="exact"` hashes LangChain's `(llm_string, prompt)` as they are
(the key of earlier releases; entries written with it stay readable).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from langchain_tokenopt.core.requestkey import (
    canonical_json,
    canonical_messages_from_prompt,
    normalized_llm_string,
)

__all__ = ["KeyMode", "NormalizedRequest", "digest", "normalize_request", "request_key"]

#: How `TokenOptCache` keys entries: "normalized" (what the model sees) or "exact".
KeyMode = Literal["normalized", "exact"]

# Bumped when the normalization changes, so old keys are not read under new rules.
_NORMALIZATION_VERSION = "n1"


def digest(*parts: str) -> str:
    """Hex SHA-256 of `parts`, each followed by a separator so ("ab", "c") != ("a", "bc").

    Example:
        >>> digest("llm", "prompt") == digest("llm", "prompt") != digest("llmp", "rompt")
        True
    """
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\x1f")
    return hasher.hexdigest()


@dataclass(frozen=True)
class NormalizedRequest:
    """A cache request as a model sees it (see the module docstring for the rules).

    - `settings`: the normalized `llm_string` (canonical JSON).
    - `messages`: the whole normalized prompt (canonical JSON of the message list,
      or the prompt itself when it is not a chat prompt).
    - `context`: everything but the last human message's text: the messages before
      it and its other fields, plus `settings` (canonical JSON). Two prompts that
      differ only in that text share it; semantic matching compares within it.
    - `last_human_text`: the text of the last message when it is a human message
      with text content; None otherwise (images, a tool result last, ...). A plain
      text LLM prompt is its own last human text with an empty message list.

    Example:
        >>> from langchain_core.load import dumps
        >>> from langchain_core.messages import HumanMessage
        >>> request = normalize_request(dumps([HumanMessage("What is 2+2?")]), "llm")
        >>> request.last_human_text
        'What is 2+2?'
        >>> request.key == normalize_request(
        ...     dumps([HumanMessage("What is 2+2?", id="x")]), "llm").key
        True
    """

    settings: str
    messages: str
    context: str
    last_human_text: str | None

    @property
    def key(self) -> str:
        """The store key of the request (hex SHA-256), as `request_key` computes it."""
        return digest(_NORMALIZATION_VERSION, self.settings, self.messages)


def _last_human_split(messages: list[Any]) -> tuple[list[Any], str | None]:
    """(messages with the last human text blanked, that text) of a canonical list."""
    if not messages:
        return messages, None
    last = messages[-1]
    if not (isinstance(last, dict) and last.get("kind") == "human"):
        return messages, None
    text = _text_of(last.get("content"))
    if text is None or not text.strip():
        return messages, None
    rest = {name: value for name, value in last.items() if name != "content"}
    return [*messages[:-1], rest], text


def _text_of(content: Any) -> str | None:
    """Text of a message's content: a string, or a list of text blocks only."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = []
        for block in content:
            if isinstance(block, str):
                texts.append(block)
            elif (
                isinstance(block, dict)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
                and set(block) <= {"type", "text"}
            ):
                texts.append(block["text"])
            else:
                return None
        return "".join(texts)
    return None


def normalize_request(prompt: str, llm_string: str) -> NormalizedRequest:
    """The normalized form of a `BaseCache` request (`prompt`, `llm_string`).

    `prompt` is what langchain-core passes to `lookup` / `update`: `dumps(messages)`
    for chat models, the prompt text for text LLMs. A chat prompt that cannot be read
    (not langchain-core's JSON, nested deeper than 128 levels) is compared as it is.
    """
    settings = normalized_llm_string(llm_string)
    messages, messages_text = _messages_form(prompt)
    if messages is None:
        context = canonical_json({"settings": settings, "messages": None})
        return NormalizedRequest(settings, messages_text, context, prompt)
    before, text = _last_human_split(messages)
    context = canonical_json({"settings": settings, "messages": before})
    return NormalizedRequest(settings, messages_text, context, text)


def _messages_form(prompt: str) -> tuple[list[Any] | None, str]:
    """(canonical message list or None, its canonical text) of a cache prompt.

    A chat prompt's text is a JSON list, any other prompt's a JSON object: the two
    never coincide.
    """
    messages = canonical_messages_from_prompt(prompt)
    if messages is None:
        return None, json.dumps({"text": prompt}, ensure_ascii=False)
    return messages, canonical_json(messages)


def request_key(prompt: str, llm_string: str, mode: KeyMode = "normalized") -> str:
    """The store key of (`prompt`, `llm_string`) under `mode`.

    Example:
        >>> request_key("p", "llm", "exact") == digest("llm", "p")
        True
    """
    if mode == "exact":
        return digest(llm_string, prompt)
    return digest(
        _NORMALIZATION_VERSION, normalized_llm_string(llm_string), _messages_form(prompt)[1]
    )
