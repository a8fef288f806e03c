"""The one shape of a lever: given a request and what came before it, what would it send.

A lever `observe`s every request once, in log order, with its conversation (the
messages seen so far and a slot for the lever's own state), and then `apply`s to a
`Sent` request, alone (on the baseline) or after other levers (the combined replay);
`apply` reads the state and changes nothing, so one observation serves both. The
engine prices what `apply` returns. A new lever is one module with one `Lever`
subclass, listed in `levers.default_levers`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from langchain_tokenopt.analysis.records import Request
from langchain_tokenopt.analysis.replay import Counters, Interner, Message, Sent

__all__ = ["Conversation", "Lever", "Step"]


@dataclass(eq=False)
class Conversation:
    """One conversation of the log while it is open: its id and each lever's state."""

    id: str
    by_id: bool
    number: int
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Step:
    """One request being replayed: the record, its conversation and its baseline `Sent`."""

    index: int
    request: Request
    conversation: Conversation
    baseline: Sent
    reply: Message | None
    counters: Counters
    interner: Interner
    new_messages: tuple[Message, ...] = ()
    """The messages this request adds to its conversation (all of them for its first)."""
    notes: dict[str, Any] = field(default_factory=dict)

    def latest_user_text(self) -> str:
        for message in reversed(self.baseline.messages):
            if message.role == "user":
                return message.text
        return ""


class Lever(ABC):
    """What one optimization would send instead of a logged request."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def label(self) -> str:
        """One line for the report's table."""

    @abstractmethod
    def observe(self, step: Step) -> None:
        """Take in one request, in log order (update this lever's state)."""

    @abstractmethod
    def apply(self, sent: Sent, step: Step) -> Sent:
        """What would be sent instead of `sent` for `step`'s request (`sent` itself if nothing)."""

    def note(self) -> str:
        """What the lever did, in words, for the report."""
        return ""

    def details(self) -> dict[str, Any]:
        """Lever-specific figures for the JSON report."""
        return {}

    def summary(self) -> dict[str, Any]:
        """This lever's counts, picklable, for `absorb` in the parent of `--jobs` workers."""
        raise NotImplementedError(f"{type(self).__name__} cannot run in --jobs workers")

    def absorb(self, summary: dict[str, Any]) -> None:
        """Add a worker's `summary` (of other conversations) to this lever's counts."""
        raise NotImplementedError(f"{type(self).__name__} cannot run in --jobs workers")
