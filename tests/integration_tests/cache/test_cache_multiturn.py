"""Repeated multi-turn sessions and moved endpoints, end to end through `ChatOpenAI`.

The local OpenAI-compatible server counts the requests it receives: "served from
the cache" means "no request was sent". Five users replay the same 3-turn support
conversation (`tests.support.conversations`); the ideal cache sends 3 requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.caches import InMemoryCache
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.callbacks.tracker import track_usage
from tests.support.conversations import SUPPORT_TURNS, replay_sessions
from tests.support.openai_server import FakeOpenAIServer

SESSIONS = 5


def chat(server: FakeOpenAIServer, cache: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0, cache=cache
    )


def test_five_replayed_sessions_make_three_requests(openai_server: FakeOpenAIServer) -> None:
    cache = TokenOptCache()
    with track_usage() as tracker:
        transcripts = replay_sessions(chat(openai_server, cache), SESSIONS)
    assert openai_server.request_count == len(SUPPORT_TURNS)
    assert cache.stats().hits == SESSIONS * len(SUPPORT_TURNS) - len(SUPPORT_TURNS)
    # every session got the same answers, and the tracker advises no cache
    answers = {tuple(m.content for m in t) for t in transcripts}
    assert len(answers) == 1
    assert [s for s in tracker.report().suggestions() if s.kind == "cache"] == []


def test_langchains_in_memory_cache_makes_six(openai_server: FakeOpenAIServer) -> None:
    """The baseline the normalized key improves on (LangChain's own cache)."""
    replay_sessions(chat(openai_server, InMemoryCache()), SESSIONS)
    assert openai_server.request_count == 6


def test_a_persistent_cache_hits_after_the_endpoint_moves(tmp_path: Path) -> None:
    """A second run against another base URL (another server) is served from SQLite."""
    path = str(tmp_path / "cache.db")
    question = [HumanMessage("How do I reset my router?")]
    with FakeOpenAIServer() as first:
        answer = chat(first, TokenOptCache.sqlite(path)).invoke(question)
        first_url = first.base_url
    with FakeOpenAIServer() as second:
        assert second.base_url != first_url
        cache = TokenOptCache.sqlite(path)
        again = chat(second, cache).invoke(question)
        assert second.request_count == 0
    assert again.content == answer.content
    assert cache.stats().hits == 1


def test_the_exact_key_misses_after_the_endpoint_moves(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.db")
    question = [HumanMessage("How do I reset my router?")]
    with FakeOpenAIServer() as first:
        chat(first, TokenOptCache.sqlite(path, key="exact")).invoke(question)
    with FakeOpenAIServer() as second:
        chat(second, TokenOptCache.sqlite(path, key="exact")).invoke(question)
        assert second.request_count == 1
