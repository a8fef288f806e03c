"""Exact token counts per model: the one place in the package that counts.

CONTRACT STUB (to be implemented by the foundation work). Signatures below are the
public contract that every component codes against; implementations may add, never
change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage


class TokenCount(int):
    """An `int` token count that also says whether it is exact.

    `approximate` is True when the model is unknown or not an OpenAI model and the
    count comes from a documented approximation rather than the provider's tokenizer.
    """

    approximate: bool

    def __new__(cls, value: int, approximate: bool = False) -> TokenCount:
        obj = super().__new__(cls, value)
        obj.approximate = approximate
        return obj


class TokenCounter:
    """Counts tokens of text, messages and tool schemas for one model.

    Args:
        model: model name, e.g. "gpt-4o". Decides encoding and chat framing.
        encoding: tiktoken encoding name; always wins over `model`.
        cache_size: how many per-message counts to memoize.

    Attributes:
        model, encoding_name, approximate (True if counts are approximations).
    """

    model: str
    encoding_name: str
    approximate: bool

    def __init__(
        self, model: str = "gpt-4o", *, encoding: str | None = None, cache_size: int = 65536
    ) -> None:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (special tokens treated as plain text)."""
        raise NotImplementedError

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of token ids."""
        raise NotImplementedError

    def count_text(self, text: str) -> TokenCount:
        """Tokens of a plain string."""
        raise NotImplementedError

    def count_message(self, message: BaseMessage | dict[str, Any]) -> TokenCount:
        """Tokens one message adds to a chat request, framing included (memoized)."""
        raise NotImplementedError

    def count_messages(
        self,
        messages: Sequence[BaseMessage | dict[str, Any] | str | tuple[str, str]],
        tools: Sequence[Any] | None = None,
    ) -> TokenCount:
        """Tokens of a whole chat request: messages (+ reply priming) and tool schemas.

        Equals `ChatOpenAI(model=M).get_num_tokens_from_messages(messages, tools)`.
        """
        raise NotImplementedError

    def count_tools(self, tools: Sequence[Any]) -> TokenCount:
        """Tokens the tool schemas add to a request (BaseTool, functions, dicts)."""
        raise NotImplementedError

    def __call__(self, messages: Sequence[BaseMessage]) -> int:
        """So a counter can be passed as `token_counter=` to `trim_messages`."""
        return int(self.count_messages(messages))
