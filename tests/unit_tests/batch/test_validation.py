"""BatchAPIRunnable checks its arguments and inputs where they enter (issue 20).

The model points at a closed port: a check that let a bad value through to the network
would fail these tests with a connection error instead of our typed error.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from langchain_tokenopt import (
    ArgumentTypeError,
    CorruptStateError,
    InvalidArgumentError,
    MemoryStore,
    TokenOptError,
)
from langchain_tokenopt.batch import BatchAPIRunnable
from langchain_tokenopt.core.validation import MAX_TTL_SECONDS

NAN, INF = float("nan"), float("inf")


def _llm() -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0
    )


def _deep(depth: int = 10_000) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("poll_interval_seconds", NAN, InvalidArgumentError),
        ("poll_interval_seconds", INF, InvalidArgumentError),
        ("poll_interval_seconds", 0, InvalidArgumentError),
        ("poll_interval_seconds", -1, InvalidArgumentError),
        ("poll_interval_seconds", 1e300, InvalidArgumentError),
        ("poll_interval_seconds", "30", ArgumentTypeError),
        ("poll_interval_seconds", True, ArgumentTypeError),
        ("max_poll_interval_seconds", NAN, InvalidArgumentError),
        ("max_poll_interval_seconds", 1, InvalidArgumentError),  # below the poll interval
        ("max_poll_interval_seconds", 10**400, InvalidArgumentError),
        ("backoff", NAN, InvalidArgumentError),
        ("backoff", INF, InvalidArgumentError),
        ("backoff", 0.5, InvalidArgumentError),
        ("backoff", None, ArgumentTypeError),
        ("timeout_seconds", NAN, InvalidArgumentError),
        ("timeout_seconds", INF, InvalidArgumentError),
        ("timeout_seconds", 0, InvalidArgumentError),
        ("timeout_seconds", "1h", ArgumentTypeError),
        ("state_ttl_seconds", NAN, InvalidArgumentError),
        ("state_ttl_seconds", INF, InvalidArgumentError),
        ("state_ttl_seconds", MAX_TTL_SECONDS * 2, InvalidArgumentError),
        ("state_ttl_seconds", -5, InvalidArgumentError),
        ("max_requests_per_batch", 0, InvalidArgumentError),
        ("max_requests_per_batch", 2.0, ArgumentTypeError),
        ("max_requests_per_batch", True, ArgumentTypeError),
        ("max_bytes_per_batch", -1, InvalidArgumentError),
        ("max_bytes_per_batch", NAN, ArgumentTypeError),
        ("key_prefix", "", InvalidArgumentError),
        ("key_prefix", None, ArgumentTypeError),
        ("key_prefix", b"p", ArgumentTypeError),
        ("store", "redis://localhost", ArgumentTypeError),
        ("store", {}, ArgumentTypeError),
    ],
)
def test_every_constructor_argument_is_checked_and_named(
    argument: str, value: Any, error: type[TokenOptError]
) -> None:
    with pytest.raises(error, match=argument):
        BatchAPIRunnable(_llm(), **{argument: value})


def test_accepted_arguments_are_kept_as_given() -> None:
    batched = BatchAPIRunnable(
        _llm(),
        poll_interval_seconds=2,
        max_poll_interval_seconds=60,
        backoff=1,
        timeout_seconds=3600,
        max_requests_per_batch=10**400,  # above the provider's limit: the limit
        state_ttl_seconds=MAX_TTL_SECONDS,
        key_prefix="p",
    )
    assert (batched.poll_interval_seconds, batched.max_poll_interval_seconds) == (2.0, 60.0)
    assert (batched.backoff, batched.timeout_seconds) == (1.0, 3600.0)
    assert batched.max_requests_per_batch == 50_000
    assert batched._jobs.ttl_seconds == MAX_TTL_SECONDS


@pytest.mark.parametrize("model", [None, "gpt-4o", GenericFakeChatModel(messages=iter([]))])
def test_a_model_without_a_batch_api_is_a_type_error(model: Any) -> None:
    with pytest.raises(ArgumentTypeError, match="BatchAPIRunnable"):
        BatchAPIRunnable(model)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        (None, ArgumentTypeError, "inputs must be a list"),
        ("hello", ArgumentTypeError, "inputs must be a list"),
        ({"a": "b"}, ArgumentTypeError, "inputs must be a list"),
        (["ok", 5], ArgumentTypeError, r"inputs\[1\] must be a string"),
        (["ok", b"x"], ArgumentTypeError, r"inputs\[1\] must be a string"),
        (["ok", HumanMessage("x")], ArgumentTypeError, r"inputs\[1\] must be a string"),
        (["ok", "ok", []], InvalidArgumentError, r"inputs\[2\] holds no messages"),
        (["ok", [{"role": "robot", "content": "x"}]], InvalidArgumentError, r"inputs\[1\].*robot"),
        ([[("human",)]], InvalidArgumentError, r"inputs\[0\] cannot be read"),
        ([[{"role": "user", "content": 5}]], InvalidArgumentError, r"inputs\[0\] cannot be read"),
        (["ok", _deep()], InvalidArgumentError, r"inputs\[1\] is nested more than 100"),
        (
            [[HumanMessage(content=[{"type": "text", "text": "x", "extra": _deep()}])]],
            InvalidArgumentError,
            r"inputs\[0\] is nested",
        ),
    ],
)
def test_inputs_that_cannot_be_read_are_refused_naming_the_item(
    inputs: Any, error: type[TokenOptError], match: str
) -> None:
    batched = BatchAPIRunnable(_llm())
    with pytest.raises(error, match=match):
        batched.batch(inputs)
    with pytest.raises(error, match=match):
        asyncio.run(batched.abatch(inputs))


@pytest.mark.parametrize("value", [None, 5, [], [("human",)], _deep()])
def test_invoke_checks_its_input_as_a_batch_of_one(value: Any) -> None:
    batched = BatchAPIRunnable(_llm())
    with pytest.raises(TokenOptError, match=r"inputs\[0\]"):
        batched.invoke(value)
    with pytest.raises(TokenOptError, match=r"inputs\[0\]"):
        asyncio.run(batched.ainvoke(value))


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ("fast", ArgumentTypeError, "config must be a RunnableConfig"),
        ({"configurable": ["batch_key"]}, ArgumentTypeError, r'config\["configurable"\]'),
        ({"configurable": {"batch_key": ""}}, InvalidArgumentError, "batch_key"),
        ({"configurable": {"batch_key": 7}}, ArgumentTypeError, "batch_key"),
        ([{}], InvalidArgumentError, "1 configs for 2 inputs"),
        ([{}, "x"], ArgumentTypeError, r"config\[1\]"),
    ],
)
def test_configs_and_batch_keys_are_checked_before_anything_is_sent(
    config: Any, error: type[TokenOptError], match: str
) -> None:
    with pytest.raises(error, match=match):
        BatchAPIRunnable(_llm()).batch(["a", "b"], config)


def test_return_exceptions_must_be_a_bool() -> None:
    with pytest.raises(ArgumentTypeError, match="return_exceptions"):
        BatchAPIRunnable(_llm()).batch(["a"], return_exceptions="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [None, 5, ""])
def test_cancel_needs_a_batch_key(key: Any) -> None:
    batched = BatchAPIRunnable(_llm())
    with pytest.raises((ArgumentTypeError, InvalidArgumentError), match="key"):
        batched.cancel(key)
    with pytest.raises((ArgumentTypeError, InvalidArgumentError), match="key"):
        asyncio.run(batched.acancel(key))


def test_an_empty_batch_is_an_empty_answer() -> None:
    assert BatchAPIRunnable(_llm()).batch([]) == []


def test_a_saved_job_that_cannot_be_read_names_its_key_instead_of_paying_twice() -> None:
    store = MemoryStore()
    store.set("tokenopt:batch:nightly", {"version": 1, "provider": "openai", "count": "many"})
    batched = BatchAPIRunnable(_llm(), store=store)
    with pytest.raises(CorruptStateError, match="'tokenopt:batch:nightly' cannot be read") as err:
        batched.batch(["a"], {"configurable": {"batch_key": "nightly"}})
    assert err.value.key == "tokenopt:batch:nightly"
    with pytest.raises(CorruptStateError, match="cannot be read"):
        batched.cancel("nightly")


def test_an_input_the_model_cannot_turn_into_a_request_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batched = BatchAPIRunnable(_llm())
    build = batched.endpoint.request_body

    def refuse_the_second(messages: Any) -> dict[str, Any]:
        if messages[0].content == "bad":
            raise ValueError("unsupported content block")
        return build(messages)

    monkeypatch.setattr(batched.endpoint, "request_body", refuse_the_second)
    with pytest.raises(InvalidArgumentError, match=r"inputs\[1\]: ChatOpenAI cannot build"):
        batched.batch(["good", "bad"])
    with pytest.raises(InvalidArgumentError, match=r"inputs\[0\]: ChatOpenAI cannot build"):
        batched.batch(["bad", "good"])
