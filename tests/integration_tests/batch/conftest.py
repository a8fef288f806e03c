"""Fixtures of the provider batch API tests: a fast-polling runnable over the fake server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from langchain_tokenopt.batch import BatchAPIRunnable
from tests.support.openai_server import FakeOpenAIServer

MakeBatched = Callable[..., BatchAPIRunnable]


@pytest.fixture
def llm(openai_server: FakeOpenAIServer) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini", base_url=openai_server.base_url, api_key="test", max_retries=0
    )


@pytest.fixture
def make_batched() -> MakeBatched:
    """`BatchAPIRunnable(model, ...)` polling every millisecond (no waiting in tests)."""

    def make(model: Any, **kwargs: Any) -> BatchAPIRunnable:
        kwargs.setdefault("poll_interval_seconds", 0.001)
        kwargs.setdefault("max_poll_interval_seconds", 0.005)
        return BatchAPIRunnable(model, **kwargs)

    return make
