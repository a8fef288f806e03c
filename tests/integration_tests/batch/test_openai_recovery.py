"""BatchAPIRunnable over the local Batch API: crashes, failed batches, per-item configs."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_openai import ChatOpenAI

from langchain_tokenopt.batch.state import BatchJob, JobStore
from langchain_tokenopt.core.markers import BATCH_KEY
from langchain_tokenopt.errors import BatchItemError, StoreUnavailableError
from langchain_tokenopt.stores import MemoryStore
from tests.integration_tests.batch.conftest import MakeBatched
from tests.support.openai_server import FakeOpenAIServer
from tests.support.stores import SwitchableStore


def test_a_crash_after_create_adopts_the_created_batch_instead_of_paying_twice(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    store = SwitchableStore()
    config: Any = {"configurable": {"batch_key": "labels"}}
    # Writes: attempt of chunk 0, its batch id (fails: the process dies), ...
    store.sets_until_failure = 1
    with pytest.raises(StoreUnavailableError):
        make_batched(llm, store=store, max_requests_per_batch=2).batch(["a", "b", "c"], config)
    (lost,) = openai_server.batch.batches  # created and paid for, its id never saved
    assert lost["metadata"]["tokenopt_key"].endswith(":labels")
    assert lost["metadata"]["tokenopt_chunk"] == "0-2"

    restarted = make_batched(llm, store=store, max_requests_per_batch=2)
    answers = restarted.batch(["a", "b", "c"], config)
    assert [a.content for a in answers] == ["echo: a", "echo: b", "echo: c"]
    batches = openai_server.batch.batches
    assert [b["request_counts"]["total"] for b in batches] == [2, 1]  # chunk 0 adopted
    assert answers[0].response_metadata[BATCH_KEY]["batch_id"] == lost["id"]


async def test_an_unnamed_batch_is_adopted_after_a_crash_too(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    store = SwitchableStore()
    store.sets_until_failure = 1
    with pytest.raises(StoreUnavailableError):
        await make_batched(llm, store=store).abatch(["a", "b"])
    answers = await make_batched(llm, store=store).abatch(["a", "b"])
    assert [a.content for a in answers] == ["echo: a", "echo: b"]
    assert len(openai_server.batch.batches) == 1


def test_a_saved_attempt_without_a_batch_is_created_with_a_warning(
    openai_server: FakeOpenAIServer,
    llm: ChatOpenAI,
    make_batched: MakeBatched,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The process died in the create call itself, before the provider made the batch.
    store = MemoryStore()
    key = "tokenopt:batch:k"
    JobStore(store, None).save(BatchJob(key, "openai", 2, attempts={0: "never-sent"}))
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.batch.runnable"):
        answers = make_batched(llm, store=store).batch(
            ["a", "b"], {"configurable": {"batch_key": "k"}}
        )
    assert [a.content for a in answers] == ["echo: a", "echo: b"]
    assert len(openai_server.batch.batches) == 1
    assert any("interrupted" in r.getMessage() for r in caplog.records)


def test_a_finished_job_under_the_same_key_is_not_adopted_again(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    # A nightly job reusing its key sends tonight's requests, never yesterday's answers.
    config: Any = {"configurable": {"batch_key": "nightly"}}
    batched = make_batched(llm)
    batched.batch(["a"], config)
    openai_server.enqueue("tonight")
    (answer,) = batched.batch(["a"], config)
    assert answer.content == "tonight"
    assert len(openai_server.batch.batches) == 2


def test_a_batch_the_provider_fails_returns_every_item_failed_with_its_message(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    openai_server.batch.fail_next("Line 1: model 'gpt-4o-mini' is not available for batch")
    answers = make_batched(llm).batch(["a", "b"], return_exceptions=True)
    assert all(isinstance(a, BatchItemError) for a in answers)
    assert [(a.index, a.reason) for a in answers] == [(0, "failed"), (1, "failed")]
    assert all("not available for batch" in str(a) for a in answers)
    assert openai_server.batch.batches[0]["status"] == "failed"
    openai_server.batch.fail_next("invalid input file")
    with pytest.raises(BatchItemError, match=r"Item 0 .* failed: invalid input file"):
        make_batched(llm).batch(["a"])


class _Seen(BaseCallbackHandler):
    """The prompts of the calls it saw start, and how many ended."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.names: list[str | None] = []
        self.ended = 0

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.prompts.append(str(messages[0][-1].content))
        self.names.append(kwargs.get("name"))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.ended += 1


def test_one_config_per_item_gives_each_item_its_own_callbacks(
    openai_server: FakeOpenAIServer, llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    first, second = _Seen(), _Seen()
    configs: Any = [
        {"callbacks": [first], "run_name": "label-a", "configurable": {"batch_key": "k"}},
        {"callbacks": [second], "run_name": "label-b", "configurable": {"batch_key": "k"}},
        {"callbacks": [first], "configurable": {"batch_key": "k"}},
    ]
    answers = make_batched(llm).batch(["a", "b", "c"], configs)
    assert [a.content for a in answers] == ["echo: a", "echo: b", "echo: c"]
    assert (first.prompts, first.names, first.ended) == (["a", "c"], ["label-a", None], 2)
    assert (second.prompts, second.names, second.ended) == (["b"], ["label-b"], 1)
    assert len(openai_server.batch.batches) == 1


def test_configs_naming_different_batch_keys_are_refused(
    llm: ChatOpenAI, make_batched: MakeBatched
) -> None:
    configs: Any = [{"configurable": {"batch_key": "a"}}, {"configurable": {"batch_key": "b"}}]
    with pytest.raises(ValueError, match="different batch_keys"):
        make_batched(llm).batch(["a", "b"], configs)
    with pytest.raises(ValueError):  # langchain-core: one config per input
        make_batched(llm).batch(["a", "b"], [{}])
