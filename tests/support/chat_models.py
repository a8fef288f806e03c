"""Fake chat models shared by the tests: no network, real LangChain callbacks."""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.language_models import GenericFakeChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field


class CountingFakeChatModel(GenericFakeChatModel):
    """`GenericFakeChatModel` shaped like a real provider model, counting its calls.

    It has a `model` name and `max_tokens` (read by LangChain into the call's
    invocation params, as `ChatOpenAI`'s are), reports `provider` as `ls_provider`,
    appends 1 to `generated` for every call that reached the "provider" (so a test
    sees whether a callback stopped the call before it was sent), and raises
    `RuntimeError(fail_with)` when `fail_with` is set. The replies, with any
    `usage_metadata`, come from `messages` as in `GenericFakeChatModel`.
    """

    model: str = "gpt-4o"
    max_tokens: int | None = None
    provider: str = "fake"
    fail_with: str | None = None
    generated: list[int] = Field(default_factory=list)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.generated.append(1)
        if self.fail_with is not None:
            raise RuntimeError(self.fail_with)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def reply_with_usage(
    input_tokens: int = 100, output_tokens: int = 10, *, text: str = "the answer", **extra: Any
) -> AIMessage:
    """An answer carrying `usage_metadata` (plus any `extra` keys, e.g. details)."""
    usage: Any = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        **extra,
    }
    return AIMessage(text, usage_metadata=usage)


def repeating(message: AIMessage, **fields: Any) -> CountingFakeChatModel:
    """A `CountingFakeChatModel` answering `message` to every call."""
    return CountingFakeChatModel(messages=itertools.repeat(message), **fields)
