"""The test suite's `openai_server` fixture over the shipped `FakeOpenAIServer`.

The server itself ships with the package (`langchain_tokenopt.testing`), so notebooks
and demos run it without a clone; what it serves is documented there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_tokenopt.testing.openai_server import FakeOpenAIServer

__all__ = ["FakeOpenAIServer", "openai_server"]

# Benchmarks use this module without tests/conftest.py: use the offline tiktoken cache
# next to the repository too, unless the caller chose one.
_OFFLINE_TIKTOKEN = Path(__file__).resolve().parents[3] / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _OFFLINE_TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_OFFLINE_TIKTOKEN)


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A started `FakeOpenAIServer` on a free loopback port, closed after the test."""
    with FakeOpenAIServer() as server:
        yield server
