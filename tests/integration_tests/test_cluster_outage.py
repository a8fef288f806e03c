"""One master of a real three-master Redis Cluster killed mid-test: the components whose
state lived there act as on a lost single Redis, the others go on.

- `TokenOptCache`: an entry on the dead master is a miss (the model is called, logged
  once); an entry on a live master is still a hit.
- `TokenBudget`: a budget on the dead master refuses calls (fail closed: nothing is
  sent); a budget on a live master keeps reserving and settling (all of a budget's keys
  share its hash tag, so its lease sweep needs only its own master).
- `SummarizingChatMessageHistory`: a session whose state is on the dead master keeps
  every message and a view within its budget; a session on a live master still saves
  its summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import redis.cluster
from langchain_core._api import suppress_langchain_deprecation_warning
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import Generation
from langchain_openai import ChatOpenAI

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import StoreUnavailableError
from langchain_tokenopt.stores import RedisStore
from tests.support.openai_server import FakeOpenAIServer
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

COUNTER = TokenCounter("gpt-4o")
HISTORY_BUDGET = 150
DEAD = 1  # index of the master each test kills


@pytest.fixture
def cluster(private_redis_cluster: RedisClusterServers) -> Iterator[RedisClusterServers]:
    yield private_redis_cluster


@pytest.fixture
def store(cluster: RedisClusterServers) -> Iterator[RedisStore]:
    """A cluster store that gives up on a dead master quickly."""
    store = RedisStore(cluster.url, cluster=True, socket_timeout_seconds=0.3, retries=1)
    yield store
    store.close()


def dead_master(cluster: RedisClusterServers) -> RedisServer:
    return cluster.nodes[DEAD]


def new_keys(cluster: RedisClusterServers, action: Callable[[], object]) -> set[str]:
    """The keys `action` creates anywhere in the cluster."""
    client = redis.cluster.RedisCluster.from_url(cluster.url, decode_responses=True)
    try:
        before = set(client.scan_iter())
        action()
        return set(client.scan_iter()) - before
    finally:
        client.close()


def entry_holding(cluster: RedisClusterServers, keys: set[str], text: str) -> str:
    """The one key among `keys` whose stored value mentions `text` (a cache entry)."""
    client = redis.cluster.RedisCluster.from_url(cluster.url, decode_responses=True)
    try:
        (key,) = (k for k in keys if text in (client.get(k) or ""))
        return key
    finally:
        client.close()


def one_on(cluster: RedisClusterServers, candidates: Iterator[str], dead: bool) -> str:
    """The first candidate whose key (as given) is on the dead master, or on a live one."""
    return next(c for c in candidates if (cluster.node_of(c) is dead_master(cluster)) == dead)


def warnings_from(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and r.levelno == logging.WARNING and "is unavailable" in r.getMessage()
    ]


# -- TokenOptCache -------------------------------------------------------------------


async def test_cache_entries_on_a_killed_master_miss_and_the_others_still_hit(
    cluster: RedisClusterServers, store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenOptCache(store, flush_interval_seconds=0)
    entry_of: dict[str, str] = {}
    for i in range(12):
        prompt = f"question {i}"
        update = partial(cache.update, prompt, "llm", [Generation(text=f"answer {prompt}")])
        keys = new_keys(cluster, update)
        entry_of[prompt] = entry_holding(cluster, keys, f"answer {prompt}")
    assert await cache.alookup("question 0", "llm") is not None  # the async client is ready
    on_dead = {p for p, key in entry_of.items() if cluster.node_of(key) is dead_master(cluster)}
    dead_master(cluster).kill()

    logger = "langchain_tokenopt.cache.llm_cache"
    with caplog.at_level(logging.WARNING, logger=logger):
        hits = {p for p in entry_of if cache.lookup(p, "llm") is not None}
        async_hits = {p for p in entry_of if await cache.alookup(p, "llm") is not None}
        cache.update("a new question", "llm", [Generation(text="stored or skipped")])
    assert hits == async_hits == set(entry_of) - on_dead
    assert on_dead and hits, "the test needs entries on the dead master and on the others"
    for prompt in hits:
        assert cache.lookup(prompt, "llm") == [Generation(text=f"answer {prompt}")]
    assert len(warnings_from(caplog, logger)) == 1
    await store.aclose()


def test_chat_openai_answers_from_the_live_masters_and_the_server_for_the_dead_one(
    cluster: RedisClusterServers, openai_server: FakeOpenAIServer
) -> None:
    cache = TokenOptCache.redis(
        cluster.url,
        store_options={"cluster": True, "socket_timeout_seconds": 0.3, "retries": 1},
    )
    llm = ChatOpenAI(
        model="gpt-4o", base_url=openai_server.base_url, api_key="test", max_retries=0, cache=cache
    )
    where: dict[str, bool] = {}
    for i in range(12):
        question = f"What is {i} + {i}?"
        keys = new_keys(cluster, partial(llm.invoke, question))
        entry = entry_holding(cluster, keys, f"echo: {question}")
        where[question] = cluster.node_of(entry) is dead_master(cluster)
    on_dead = [q for q, dead in where.items() if dead]
    on_live = [q for q, dead in where.items() if not dead]
    sent = openai_server.request_count
    dead_master(cluster).kill()
    for question in on_live:
        assert llm.invoke(question).response_metadata.get(CACHE_HIT_KEY) is True
    assert openai_server.request_count == sent
    for question in on_dead:
        answer = llm.invoke(question)
        assert CACHE_HIT_KEY not in answer.response_metadata
    assert openai_server.request_count == sent + len(on_dead)
    assert isinstance(cache.store, RedisStore)
    cache.store.close()


# -- TokenBudget --------------------------------------------------------------------


def budget_name(cluster: RedisClusterServers, dead: bool) -> str:
    """A budget name whose hash tag {name} is on the dead master, or on a live one."""
    name = one_on(cluster, (f"{{team-{i}}}" for i in range(1000)), dead)
    return name.strip("{}")


def budget_on(store: RedisStore, name: str) -> TokenBudget:
    return TokenBudget(max_tokens=10_000, max_cost_usd=5, window="day", store=store, name=name)


def test_a_budget_on_a_killed_master_fails_closed_and_one_on_a_live_master_goes_on(
    cluster: RedisClusterServers, store: RedisStore, openai_server: FakeOpenAIServer
) -> None:
    lost = budget_on(store, budget_name(cluster, dead=True))
    kept = budget_on(store, budget_name(cluster, dead=False))
    llm = ChatOpenAI(model="gpt-4o", base_url=openai_server.base_url, api_key="test", max_retries=0)
    for budget in (lost, kept):
        keys = new_keys(cluster, partial(llm.invoke, "hi", config={"callbacks": [budget]}))
        assert keys and {cluster.node_of(k) for k in keys} == {
            cluster.node_of(f"{{{budget.name}}}")
        }, "every key of one budget lives on its tag's master"
    used_before = kept.remaining().used_tokens
    sent = openai_server.request_count
    dead_master(cluster).kill()

    with pytest.raises(StoreUnavailableError):
        llm.invoke("hi", config={"callbacks": [lost]})
    with pytest.raises(StoreUnavailableError):
        lost.remaining()
    assert openai_server.request_count == sent  # nothing was sent on the lost budget
    for _ in range(3):
        llm.invoke("hi", config={"callbacks": [kept]})
    assert openai_server.request_count == sent + 3
    assert kept.remaining().used_tokens > used_before


# -- SummarizingChatMessageHistory --------------------------------------------------------


def in_memory() -> InMemoryChatMessageHistory:
    with suppress_langchain_deprecation_warning():
        return InMemoryChatMessageHistory()


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"Invoice {i} for 3{i} USD is due on June {i % 28 + 1}."), AIMessage("ok")]


def history(store: RedisStore, session_id: str, transcript: Any = None) -> Any:
    return SummarizingChatMessageHistory(
        transcript if transcript is not None else in_memory(),
        max_tokens=HISTORY_BUDGET,
        state_store=store,
        session_id=session_id,
        token_counter=COUNTER,
    )


def test_a_history_on_a_killed_master_keeps_its_messages_and_one_on_a_live_master_saves(
    cluster: RedisClusterServers, store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The state key is "tokenopt:history:{session_id}" (the class's documented layout).
    ids = (f"session-{i}" for i in range(1000))
    lost_id = one_on(cluster, (f"tokenopt:history:{s}" for s in ids), dead=True)
    kept_id = one_on(cluster, (f"tokenopt:history:{s}" for s in ids), dead=False)
    lost = history(store, lost_id.removeprefix("tokenopt:history:"))
    kept_transcript = in_memory()
    kept = history(store, kept_id.removeprefix("tokenopt:history:"), kept_transcript)
    for i in range(15):
        lost.add_messages(turn(i))
        kept.add_messages(turn(i))
    assert lost.summary and kept.summary
    dead_master(cluster).kill()

    logger = "langchain_tokenopt.chat_history.history"
    with caplog.at_level(logging.WARNING, logger=logger):
        for i in range(15, 40):
            lost.add_messages(turn(i))
            kept.add_messages(turn(i))
            assert COUNTER.count_messages(lost.messages) <= HISTORY_BUDGET
            assert COUNTER.count_messages(kept.messages) <= HISTORY_BUDGET
    assert lost.full_messages == kept.full_messages == [m for i in range(40) for m in turn(i)]
    assert len(warnings_from(caplog, logger)) == 1
    # The live session's summary state was saved: a fresh reader resumes from it.
    resumed = history(store, kept_id.removeprefix("tokenopt:history:"), kept_transcript)
    assert resumed.summary == kept.summary
