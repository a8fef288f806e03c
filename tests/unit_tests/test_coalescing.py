"""CoalescingRunnable: single flight, micro-batches, errors, cancellation, sampling."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_openai import ChatOpenAI

from langchain_tokenopt.coalescing import CoalescingRunnable, CoalescingStats, samples_randomly

LARGE_WINDOW_MS = 60_000  # batches in these tests fill up long before such a window ends


class Recorder(Runnable[Any, str]):
    """Upper-cases its input; records each underlying call's inputs; can hold or fail."""

    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.calls: list[list[Any]] = []
        self.kwargs: list[dict[str, Any]] = []
        self.fail_on = fail_on or set()
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.async_release: asyncio.Event | None = None
        self._lock = threading.Lock()

    def _answer(self, value: Any, config: RunnableConfig | None) -> str | Exception:
        if value in self.fail_on:
            return ValueError(f"boom: {value}")
        lang = ((config or {}).get("configurable") or {}).get("lang", "")
        return f"{str(value).upper()}{lang}"

    def _record(self, inputs: list[Any], kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(inputs)
            self.kwargs.append(kwargs)
        self.started.set()

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        self._record([input], kwargs)
        assert self.release.wait(10)
        answer = self._answer(input, config)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        assert return_exceptions, "the wrapper must ask for per-input errors"
        self._record(list(inputs), kwargs)
        assert self.release.wait(10)
        configs = config if isinstance(config, list) else [config] * len(inputs)
        return [self._answer(i, c) for i, c in zip(inputs, configs, strict=True)]

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        self._record([input], kwargs)
        if self.async_release is not None:
            await self.async_release.wait()
        answer = self._answer(input, config)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        assert return_exceptions, "the wrapper must ask for per-input errors"
        self._record(list(inputs), kwargs)
        if self.async_release is not None:
            await self.async_release.wait()
        configs = config if isinstance(config, list) else [config] * len(inputs)
        return [self._answer(i, c) for i, c in zip(inputs, configs, strict=True)]


class SamplingRecorder(Recorder):
    """A recorder that says it samples, like a chat model with temperature 0.7."""

    temperature = 0.7


def _wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Synchronize with worker threads (not a timing assertion)."""
    deadline = time.monotonic() + 10
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def _threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    return threads


# ---------------------------------------------------------------------------- async


async def test_identical_concurrent_requests_share_one_call() -> None:
    recorder = Recorder()
    recorder.async_release = asyncio.Event()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    early = [asyncio.create_task(coalescer.ainvoke("hi")) for _ in range(3)]
    await asyncio.sleep(0)  # let them register
    while not recorder.started.is_set():
        await asyncio.sleep(0)
    late = asyncio.create_task(coalescer.ainvoke("hi"))  # arrives while the call runs
    await asyncio.sleep(0)
    recorder.async_release.set()
    assert await asyncio.gather(*early, late) == ["HI"] * 4
    assert recorder.calls == [["hi"]]
    assert coalescer.stats == CoalescingStats(
        requests=4, shared=3, underlying_calls=1, inputs_sent=1, largest_batch=1
    )


async def test_distinct_inputs_within_the_window_go_out_as_one_batch() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=LARGE_WINDOW_MS, max_batch_size=3)
    results = await asyncio.gather(*(coalescer.ainvoke(x) for x in ("a", "b", "c")))
    assert results == ["A", "B", "C"]
    assert recorder.calls == [["a", "b", "c"]]


async def test_batches_never_exceed_max_batch_size() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=0, max_batch_size=3)
    inputs = [f"x{i}" for i in range(7)]
    results = await asyncio.gather(*(coalescer.ainvoke(x) for x in inputs))
    assert results == [x.upper() for x in inputs]
    assert [len(call) for call in recorder.calls] == [3, 3, 1]
    assert coalescer.stats.largest_batch == 3


async def test_a_lone_request_goes_through_ainvoke_after_its_window() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=1)
    assert await coalescer.ainvoke("solo") == "SOLO"
    assert recorder.calls == [["solo"]]


async def test_errors_reach_every_waiter_and_are_not_cached() -> None:
    recorder = Recorder(fail_on={"bad"})
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    results = await asyncio.gather(
        *(coalescer.ainvoke(x) for x in ("bad", "bad", "ok", "bad")), return_exceptions=True
    )
    assert [type(r) for r in results] == [ValueError, ValueError, str, ValueError]
    assert results[2] == "OK"
    assert recorder.calls == [["bad", "ok"]]
    with pytest.raises(ValueError, match="boom"):
        await coalescer.ainvoke("bad")
    recorder.fail_on.clear()
    assert await coalescer.ainvoke("bad") == "BAD"
    assert len(recorder.calls) == 3


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    recorder = Recorder()
    recorder.async_release = asyncio.Event()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    first = asyncio.create_task(coalescer.ainvoke("x"))  # it opened the batch
    second = asyncio.create_task(coalescer.ainvoke("x"))
    while not recorder.started.is_set():
        await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    recorder.async_release.set()
    assert await second == "X"
    assert recorder.calls == [["x"]]


async def test_results_are_not_cached_once_the_call_is_done() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    assert await coalescer.ainvoke("x") == "X"
    assert await coalescer.ainvoke("x") == "X"
    assert recorder.calls == [["x"], ["x"]]


async def test_only_result_affecting_config_separates_requests() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    french: RunnableConfig = {"configurable": {"lang": "-fr"}, "tags": ["a"]}
    english: RunnableConfig = {"configurable": {"lang": "-en"}, "run_name": "x"}
    french_again: RunnableConfig = {"configurable": {"lang": "-fr"}, "metadata": {"user": "b"}}
    results = await asyncio.gather(
        coalescer.ainvoke("q", french),
        coalescer.ainvoke("q", english),
        coalescer.ainvoke("q", french_again),
    )
    assert list(results) == ["Q-fr", "Q-en", "Q-fr"]
    assert sorted(map(len, recorder.calls)) == [1, 1], "one call per configurable"
    assert coalescer.stats.shared == 1


async def test_call_kwargs_are_part_of_the_key_and_reach_the_runnable() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    await asyncio.gather(
        coalescer.ainvoke("q", stop=["\n"]),
        coalescer.ainvoke("q"),
        coalescer.ainvoke("q", stop=["\n"]),
    )
    assert sorted(map(len, recorder.calls)) == [1, 1]
    assert sorted(recorder.kwargs, key=len) == [{}, {"stop": ["\n"]}]


async def test_sampling_models_batch_but_do_not_share() -> None:
    recorder = SamplingRecorder()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    assert not coalescer.single_flight
    assert await asyncio.gather(*(coalescer.ainvoke("x") for _ in range(3))) == ["X"] * 3
    assert recorder.calls == [["x", "x", "x"]], "each caller gets its own sample"

    opted_in = SamplingRecorder()
    coalescer = CoalescingRunnable(opted_in, window_ms=0, coalesce_sampling=True)
    assert await asyncio.gather(*(coalescer.ainvoke("x") for _ in range(3))) == ["X"] * 3
    assert opted_in.calls == [["x"]]


async def test_inputs_without_a_faithful_key_are_batched_never_shared() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    thing = object()
    await asyncio.gather(coalescer.ainvoke(thing), coalescer.ainvoke(thing))
    assert recorder.calls == [[thing, thing]]


async def test_a_real_chain_is_called_once_for_identical_requests() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("first"), AIMessage("second")]))
    chain = ChatPromptTemplate.from_messages([("human", "Tell me about {topic}")]) | model
    coalescer = CoalescingRunnable(chain, window_ms=0)
    replies = await asyncio.gather(*(coalescer.ainvoke({"topic": "owls"}) for _ in range(4)))
    assert [reply.content for reply in replies] == ["first"] * 4
    assert (await coalescer.ainvoke({"topic": "owls"})).content == "second"


# ----------------------------------------------------------------------------- sync


def test_identical_concurrent_threads_share_one_call() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    results: list[str] = []

    def call() -> None:
        results.append(coalescer.invoke("hi"))

    leader = _threads([call])
    assert recorder.started.wait(10)
    followers = _threads([call] * 4)
    _wait_until(lambda: coalescer.stats.shared == 4, "followers to join the running call")
    recorder.release.set()
    for thread in leader + followers:
        thread.join(10)
    assert results == ["HI"] * 5
    assert recorder.calls == [["hi"]]


def test_distinct_threads_within_the_window_share_one_batch_call() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=LARGE_WINDOW_MS, max_batch_size=2)
    results: dict[str, str] = {}

    def call(value: str) -> Callable[[], None]:
        return lambda: results.__setitem__(value, coalescer.invoke(value))

    for thread in _threads([call(x) for x in ("a", "b", "c", "d")]):
        thread.join(10)
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert sorted(map(len, recorder.calls)) == [2, 2], "full batches go out at once"


def test_sync_errors_reach_every_waiter_and_are_not_cached() -> None:
    recorder = Recorder(fail_on={"bad"})
    recorder.release.clear()
    coalescer = CoalescingRunnable(recorder, window_ms=0)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            coalescer.invoke("bad")
        except ValueError as exc:
            errors.append(exc)

    leader = _threads([call])
    assert recorder.started.wait(10)
    followers = _threads([call] * 2)
    _wait_until(lambda: coalescer.stats.shared == 2, "followers to join the failing call")
    recorder.release.set()
    for thread in leader + followers:
        thread.join(10)
    assert len(errors) == 3
    assert recorder.calls == [["bad"]]
    recorder.fail_on.clear()
    assert coalescer.invoke("bad") == "BAD"
    assert recorder.calls == [["bad"], ["bad"]]


def test_sync_lone_request_waits_its_window_then_runs_alone() -> None:
    recorder = Recorder()
    coalescer = CoalescingRunnable(recorder, window_ms=1)
    assert coalescer.invoke("solo") == "SOLO"
    assert recorder.calls == [["solo"]]


def test_composes_with_lcel() -> None:
    add_one: Runnable[int, int] = RunnableLambda(lambda x: x + 1)
    chain: Runnable[int, int] = CoalescingRunnable(add_one, window_ms=0) | RunnableLambda(
        lambda x: x * 10
    )
    assert chain.invoke(1) == 20


# ------------------------------------------------------------------ sampling & args


def test_sampling_is_detected_on_models_bindings_and_chains() -> None:
    def openai(**kwargs: Any) -> ChatOpenAI:
        return ChatOpenAI(model="gpt-4o-mini", api_key="test", **kwargs)

    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    assert not samples_randomly(openai(temperature=0))
    assert samples_randomly(openai(temperature=0.7))
    assert samples_randomly(openai()), "unset temperature samples at the provider default"
    assert not samples_randomly(openai(temperature=0.7).bind(temperature=0))
    assert samples_randomly(openai(temperature=0).bind(temperature=1))
    assert samples_randomly(prompt | openai(temperature=0.7))
    assert not samples_randomly(prompt | openai(temperature=0))
    assert not samples_randomly(GenericFakeChatModel(messages=iter([])))
    assert not samples_randomly(RunnableLambda(lambda x: x))
    assert CoalescingRunnable(openai(temperature=0)).single_flight
    assert not CoalescingRunnable(openai(temperature=0.7)).single_flight
    assert CoalescingRunnable(openai(temperature=0.7), coalesce_sampling=True).single_flight


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        CoalescingRunnable(Recorder(), window_ms=-1)
    with pytest.raises(ValueError, match="max_batch_size"):
        CoalescingRunnable(Recorder(), max_batch_size=0)
    with pytest.raises(TypeError, match="Runnable"):
        CoalescingRunnable(lambda x: x)  # type: ignore[arg-type]
