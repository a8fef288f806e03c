"""One logged model call, as every reader yields it and every lever reads it.

Messages and tools stay OpenAI chat-completions dicts (the shape most logs already
have): a log of a million requests is never turned into LangChain objects wholesale;
a lever converts the few messages it needs, once each (see `replay.Message`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_tokenopt.core.usage import Usage

__all__ = ["Request"]


@dataclass(slots=True)
class Request:
    """What one model call was sent, where it was logged, and its reply and usage when logged.

    `conversation_id` is the logged conversation, thread or session id (None: the
    analysis groups the request by shared message prefix).
    """

    source: str
    line: int
    model: str | None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    usage: Usage | None = None
    conversation_id: str | None = None
