"""Repeated multi-turn sessions: the traffic a cache keyed on whole messages misses.

`replay_sessions(model, sessions)` runs `sessions` users through the same 3-turn
support conversation: each turn sends the whole conversation so far (the user's
messages and the model's earlier answers, as the model returned them, cache hits
included) plus the next user message. The ideal cache sends `len(SUPPORT_TURNS)`
requests whatever the number of sessions.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

__all__ = ["SUPPORT_SYSTEM", "SUPPORT_TURNS", "replay_sessions"]

SUPPORT_SYSTEM = "You are the support assistant of Acme Router. Answer briefly."
SUPPORT_TURNS = (
    "My router keeps dropping the wifi connection every few minutes.",
    "I restarted it and updated the firmware, it still drops.",
    "How do I reset it to factory settings?",
)


def replay_sessions(model: BaseChatModel, sessions: int) -> list[list[BaseMessage]]:
    """Run `sessions` identical conversations through `model`; their transcripts."""
    transcripts = []
    for _ in range(sessions):
        messages: list[BaseMessage] = [SystemMessage(SUPPORT_SYSTEM)]
        for turn in SUPPORT_TURNS:
            messages.append(HumanMessage(turn))
            messages.append(model.invoke(messages))
        transcripts.append(messages)
    return transcripts
