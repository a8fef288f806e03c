"""Tool-binding lever: bind the tools our retriever picks for the request instead of every
tool offered, and check that the tool the model then called would have been bound."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import replace
from typing import Any

from langchain_tokenopt.analysis.levers.base import Lever, Step
from langchain_tokenopt.analysis.replay import Sent
from langchain_tokenopt.errors import TokenOptError
from langchain_tokenopt.tool_retrieval.retriever import ToolRetriever

__all__ = ["ToolBindingLever"]


def _name(tool: dict[str, Any]) -> str | None:
    function = tool.get("function", tool)
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def _called(reply: dict[str, Any] | None) -> list[str]:
    calls = reply.get("tool_calls") if reply else None
    names: list[str] = []
    for call in calls or ():
        function = call.get("function", call) if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


class ToolBindingLever(Lever):
    """`ToolRetriever(k=k).select(latest user message)` plus the tools already called in the
    conversation, for requests offering more than `k` tools."""

    name = "tools"

    def __init__(self, k: int = 5, max_registries: int = 64) -> None:
        self.k = k
        self._retrievers: OrderedDict[Hashable, ToolRetriever | None] = OrderedDict()
        self._max = max_registries
        self._selected: OrderedDict[tuple[Hashable, str], frozenset[str]] = OrderedDict()
        self.requests_with_tools = 0
        self.offered = 0
        self.bound = 0
        self.narrowed = 0
        self.called = 0
        self.called_was_bound = 0

    @property
    def label(self) -> str:
        return f"tool binding (retrieve {self.k} of the offered tools)"

    def _retriever(self, sent: Sent) -> ToolRetriever | None:
        if sent.tools_key in self._retrievers:
            self._retrievers.move_to_end(sent.tools_key)
            return self._retrievers[sent.tools_key]
        try:
            retriever: ToolRetriever | None = ToolRetriever(list(sent.tools), k=self.k)
        except TokenOptError:  # e.g. a built-in provider tool: bind as logged
            retriever = None
        self._retrievers[sent.tools_key] = retriever
        if len(self._retrievers) > self._max:
            self._retrievers.popitem(last=False)
        return retriever

    def _select(self, retriever: ToolRetriever, sent: Sent, query: str) -> set[str]:
        """The retrieved names (memoized: an agent loop asks again for each tool result)."""
        key = (sent.tools_key, query)
        found = self._selected.get(key)
        if found is None:
            found = self._selected[key] = frozenset(m.name for m in retriever.select(query))
            if len(self._selected) > 10_000:
                self._selected.popitem(last=False)
        return set(found)

    def observe(self, step: Step) -> None:
        sent = step.baseline
        if not sent.tools:
            return
        self.requests_with_tools += 1
        self.offered += len(sent.tools)
        called_before: set[str] = step.conversation.state.setdefault(self.name, set())
        names = [_name(tool) for tool in sent.tools]
        keep: set[str] | None = None
        retriever = self._retriever(sent) if len(sent.tools) > self.k else None
        query = step.latest_user_text()
        if retriever is not None and query.strip():
            keep = self._select(retriever, sent, query) | called_before
            keep &= {name for name in names if name}
            self.narrowed += 1
        bound = len(keep) if keep is not None else len(sent.tools)
        self.bound += bound
        called = _called(step.request.reply)
        if called:
            self.called += 1
            if keep is None or all(name in keep for name in called):
                self.called_was_bound += 1
        called_before.update(called)
        step.notes[self.name] = keep

    def apply(self, sent: Sent, step: Step) -> Sent:
        keep: set[str] | None = step.notes.get(self.name)
        if keep is None or not sent.tools:
            return sent
        tools = tuple(tool for tool in sent.tools if _name(tool) in keep)
        return replace(sent, tools=tools, tools_key=(sent.tools_key, tuple(sorted(keep))))

    def note(self) -> str:
        if not self.requests_with_tools:
            return "no request offered tools"
        share = f"{self.called_was_bound / self.called:.0%}" if self.called else "n/a"
        return (
            f"{self.offered:,} tool schemas offered, {self.bound:,} bound; the tool the model "
            f"called was bound in {share} of {self.called:,} tool-calling replies"
        )

    _COUNTS = ("requests_with_tools", "offered", "bound", "narrowed", "called", "called_was_bound")

    def summary(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._COUNTS}

    def absorb(self, summary: dict[str, Any]) -> None:
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + summary[name])

    def details(self) -> dict[str, Any]:
        return {
            "requests_with_tools": self.requests_with_tools,
            "tools_offered": self.offered,
            "tools_bound": self.bound,
            "called": self.called,
            "called_was_bound": self.called_was_bound,
            "called_bound_share": self.called_was_bound / self.called if self.called else None,
        }
