"""`CompressionMiddleware`: compress tool outputs losslessly before they enter the
agent state, where every later model call of the run would send them again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage

from langchain_tokenopt.compression import CompressionLevel, PromptCompressor
from langchain_tokenopt.errors import ArgumentTypeError
from langchain_tokenopt.middleware._base import (
    AsyncToolHandler,
    Command,
    Middleware,
    ToolHandler,
    Totals,
)

if TYPE_CHECKING:
    from langgraph.prebuilt.tool_node import ToolCallRequest

__all__ = ["CompressionMiddleware", "CompressionStats"]


@dataclass
class CompressionStats:
    """Tool outputs `CompressionMiddleware` compressed, and their exact token counts."""

    tool_messages: int = 0
    tokens_before: int = 0
    tokens_after: int = 0

    @property
    def tokens_saved(self) -> int:
        """Tokens the compressed outputs no longer cost, on every later model call."""
        return self.tokens_before - self.tokens_after


class CompressionMiddleware(Middleware):
    """Compress tool outputs before they enter the agent state.

    A tool's output is re-sent on every later model call of the run, so a token
    saved there is saved many times. Each `ToolMessage` a tool returns (also inside a
    `Command` update) goes through `PromptCompressor`: at the default "lossless" level
    only whitespace runs, markdown emphasis and JSON indentation go, and code, URLs,
    quotes and numbers are kept byte for byte. Artifacts and non-text blocks are
    untouched.

    Args:
        compressor: the `PromptCompressor` to use (default: a new one at `level`).
        level: "lossless" (default), "light" or "aggressive" (these two drop words).
        model: tokenizer that counts the tokens saved (`stats`).

    Use it as `create_agent(llm, tools=[search], middleware=[CompressionMiddleware()])`.

    Example:
        >>> middleware = CompressionMiddleware()
        >>> output = ToolMessage("Sunny,      21    degrees.", tool_call_id="c1")
        >>> middleware.compress(output).content
        'Sunny, 21 degrees.'
        >>> middleware.stats.tokens_saved > 0
        True
    """

    def __init__(
        self,
        compressor: PromptCompressor | None = None,
        *,
        level: CompressionLevel = "lossless",
        model: str = "gpt-4o",
    ) -> None:
        super().__init__()
        if compressor is not None and not isinstance(compressor, PromptCompressor):
            raise ArgumentTypeError(
                f"compressor must be a PromptCompressor, not {type(compressor).__name__}."
            )
        self.compressor = compressor or PromptCompressor(level=level, model=model)
        self._totals = Totals(CompressionStats())

    @property
    def stats(self) -> CompressionStats:
        """A copy of the totals so far."""
        return self._totals.snapshot()

    def compress(self, result: ToolMessage | Command[Any]) -> ToolMessage | Command[Any]:
        """A tool's result with its `ToolMessage` text compressed."""
        if isinstance(result, ToolMessage):
            return self._compress_message(result)
        update = getattr(result, "update", None)
        if isinstance(update, Mapping) and isinstance(update.get("messages"), list):
            messages = [
                self._compress_message(m) if isinstance(m, ToolMessage) else m
                for m in update["messages"]
            ]
            return Command(
                graph=result.graph,
                update={**update, "messages": messages},
                resume=result.resume,
                goto=result.goto,
            )
        return result

    def _compress_message(self, message: ToolMessage) -> ToolMessage:
        compressed = self.compressor.compress_message(message)
        counter = self.compressor.token_counter
        before = int(counter.count_message(message))
        after = int(counter.count_message(compressed)) if compressed is not message else before
        self._totals.add(tool_messages=1, tokens_before=before, tokens_after=after)
        assert isinstance(compressed, ToolMessage)
        return compressed

    def wrap_tool_call(
        self, request: ToolCallRequest, handler: ToolHandler
    ) -> ToolMessage | Command[Any]:
        """Run the tool, then compress what it returned."""
        return self.compress(handler(request))

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: AsyncToolHandler
    ) -> ToolMessage | Command[Any]:
        """Async `wrap_tool_call` (compression is CPU work, done inline)."""
        return self.compress(await handler(request))
