"""How the planner cut a long recalled message before its speed-up (commit f7fa6d2), kept
to prove the fast one makes byte-identical lines with exact counts.

A frozen copy of `ContextPlanner._part`: every sentence counted afresh, the question
read again each time, the line counted whole.
"""

from __future__ import annotations

from langchain_tokenopt.chat_history.planner import (
    _LINE_END,
    _SENTENCE,
    _TRUNCATION_MARK,
    _WORD,
    ContextPlanner,
    Ledger,
)
from langchain_tokenopt.core.messages import message_to_text

__all__ = ["reference_part"]


def reference_part(
    planner: ContextPlanner, ledger: Ledger, position: int, cap_tokens: int
) -> tuple[str, int]:
    """The line `ContextPlanner._part` made for message `position`, and its count."""
    counter = planner.token_counter

    def count(text: str) -> int:
        return int(counter.count_text(text))

    head = ledger.line_head(position)
    words = set(_WORD.findall((ledger.question() or "").lower()))
    sentences = [s for s in _SENTENCE.split(message_to_text(ledger.messages[position])) if s]
    sentence_words = [frozenset(_WORD.findall(sentence.lower())) for sentence in sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: (-len(words & sentence_words[i]), i))
    room = cap_tokens - count(head) - 1
    keep: list[int] = []
    for i in ranked:
        tokens = count(sentences[i]) + count(_TRUNCATION_MARK)
        if tokens <= room:
            keep.append(i)
            room -= tokens
    if not keep:
        shortened = planner._shorten_text(sentences[ranked[0]] if sentences else "", room)
        line = head + shortened + _LINE_END
    else:
        line = head + _TRUNCATION_MARK.join(sentences[i] for i in sorted(keep)).strip() + _LINE_END
    return line, count(line)
