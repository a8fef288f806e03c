"""Request coalescing: one call for identical concurrent requests, one batch for the rest.

When many users (or many branches of one graph) ask the same thing at the same moment,
each request normally pays for its own model call. `CoalescingRunnable` wraps any
Runnable so identical concurrent inputs share one underlying call (single flight), and
distinct inputs that arrive within a short window go out together as one
`batch` / `abatch` call of bounded size.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.language_models import BaseLanguageModel
from langchain_core.load import Serializable, dumpd
from langchain_core.runnables import (
    Runnable,
    RunnableBinding,
    RunnableConfig,
    RunnableParallel,
    RunnableSequence,
    ensure_config,
)
from langchain_core.runnables.utils import Input, Output
from pydantic import BaseModel

from langchain_tokenopt.core.validation import finite_number, instance_of, int_in_range

__all__ = ["CoalescingRunnable", "CoalescingStats"]

logger = logging.getLogger(__name__)

# The only RunnableConfig key that changes what a runnable computes; tags, metadata,
# callbacks, run names and ids, concurrency and recursion limits do not.
_RESULT_CONFIG_KEYS = ("configurable",)
#: Longest coalescing window (one minute): a longer wait is a misconfiguration, and
#: timers overflow long before infinity.
MAX_WINDOW_MS = 60_000.0
_GroupKey = tuple[str, str]


class _Unkeyable(Exception):
    """A value with no faithful canonical form: it is never shared with another call."""


def _canonical(value: Any) -> Any:
    """A JSON-able form that two values share only if they are the same input."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_canonical(item) for item in value]}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _Unkeyable
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, Serializable):
        dumped = dumpd(value)
        if _has_not_implemented(dumped):
            raise _Unkeyable
        return {"__lc__": _canonical(dumped)}
    if isinstance(value, BaseModel):
        cls = type(value)
        return {f"__{cls.__module__}.{cls.__qualname__}__": value.model_dump(mode="json")}
    raise _Unkeyable


def _has_not_implemented(dumped: Any) -> bool:
    if isinstance(dumped, dict):
        if dumped.get("type") == "not_implemented":
            return True
        return any(_has_not_implemented(item) for item in dumped.values())
    if isinstance(dumped, list):
        return any(_has_not_implemented(item) for item in dumped)
    return False


def _key(value: Any) -> str | None:
    try:
        return json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False)
    except (_Unkeyable, TypeError, ValueError, RecursionError):  # deep input: not shared
        return None


_MISSING = object()


def samples_randomly(runnable: Runnable[Any, Any]) -> bool:
    """Whether `runnable` contains a language model that samples (temperature > 0).

    A model whose `temperature` is unset (None) samples at the provider's default,
    which is above 0 for OpenAI and most providers. A model without a `temperature`
    attribute (fake and rule-based models) is taken as deterministic. Bound kwargs
    (`model.bind(temperature=0)`) win over the model's own setting.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> samples_randomly(RunnableLambda(lambda x: x))
        False
    """
    return _samples(runnable, _MISSING)


def _samples(runnable: Any, bound_temperature: Any) -> bool:
    if isinstance(runnable, RunnableBinding):
        temperature = runnable.kwargs.get("temperature", _MISSING)
        if bound_temperature is _MISSING:
            bound_temperature = temperature
        return _samples(runnable.bound, bound_temperature)
    if isinstance(runnable, RunnableSequence):
        return any(_samples(step, _MISSING) for step in runnable.steps)
    if isinstance(runnable, RunnableParallel):
        return any(_samples(step, _MISSING) for step in runnable.steps__.values())
    temperature = bound_temperature
    if temperature is _MISSING:
        temperature = getattr(runnable, "temperature", _MISSING)
        model_kwargs = getattr(runnable, "model_kwargs", None)
        if isinstance(model_kwargs, dict) and "temperature" in model_kwargs:
            temperature = model_kwargs["temperature"]
    if temperature is _MISSING:
        return False
    if temperature is None:
        return isinstance(runnable, BaseLanguageModel)
    try:
        return float(temperature) > 0
    except (TypeError, ValueError):
        return True


@dataclass(frozen=True)
class CoalescingStats:
    """What coalescing did so far.

    Attributes:
        requests: calls made to the wrapper.
        shared: requests answered by another identical request's call.
        underlying_calls: invoke / batch calls made to the wrapped runnable.
        inputs_sent: inputs those calls carried (requests - shared).
        largest_batch: most inputs in one underlying call.

    Example:
        >>> import asyncio
        >>> from langchain_core.runnables import RunnableLambda
        >>> echo = CoalescingRunnable(RunnableLambda(str.upper), window_ms=5)
        >>> async def three() -> list[str]:  # started together, so within one window
        ...     return await asyncio.gather(*(echo.ainvoke(text) for text in "aab"))
        >>> asyncio.run(three()), echo.stats.shared, echo.stats.inputs_sent
        (['A', 'A', 'B'], 1, 2)
    """

    requests: int = 0
    shared: int = 0
    underlying_calls: int = 0
    inputs_sent: int = 0
    largest_batch: int = 0


@dataclass
class _Item:
    key: str | None
    input: Any
    config: RunnableConfig


@dataclass
class _SyncBatch:
    group: _GroupKey
    kwargs: dict[str, Any]
    items: list[_Item] = field(default_factory=list)
    futures: list[Future[Any]] = field(default_factory=list)
    full: threading.Event = field(default_factory=threading.Event)
    taken: bool = False


@dataclass
class _AsyncBatch:
    group: _GroupKey
    kwargs: dict[str, Any]
    items: list[_Item] = field(default_factory=list)
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


@dataclass
class _AsyncState:
    inflight: dict[tuple[_GroupKey, str], asyncio.Future[Any]] = field(default_factory=dict)
    open: dict[_GroupKey, _AsyncBatch] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class CoalescingRunnable(Runnable[Input, Output]):
    """Wrap a Runnable so identical concurrent calls share one call and the rest batch up.

    * Single flight: while a call for an input is pending or running, an identical
      request (same input, same `configurable` config and call kwargs) waits for that
      call's result instead of making its own. Results are not cached: once the call
      finishes, the next request calls again.
    * Micro-batches: distinct requests arriving within `window_ms` of the first one go
      to the wrapped runnable as one `batch` / `abatch` of at most `max_batch_size`
      inputs (a lone request goes through `invoke` / `ainvoke`). Requests only share
      a batch when their `configurable` config and call kwargs are equal.
    * Errors reach every waiter of the failed input and are not cached. A cancelled
      async waiter does not cancel the shared call, nor the other waiters.
    * Works from threads (`invoke`: the first caller waits out the window, then runs
      the batch) and from asyncio (`ainvoke`: a task runs the batch). Sync and async
      callers are coalesced separately.
    * Inputs of a model that samples (temperature > 0, or unset) are never shared,
      since each caller expects its own sample; they are still batched. Pass
      `coalesce_sampling=True` to share them anyway.
    * Inputs with no faithful canonical form (arbitrary objects) are batched, never
      shared; a request whose `configurable` config or call kwargs have none goes
      straight to the wrapped runnable.
    * The shared call runs with the first caller's config (callbacks, tags); the other
      waiters' callbacks do not see it. `stream` yields the whole result at once.

    Args:
        runnable: the Runnable to wrap (a chat model, a chain, a retriever...).
        window_ms: how long the first request of a batch waits for others.
        max_batch_size: most inputs in one underlying `batch` call.
        coalesce_sampling: share identical inputs even when the model samples.

    Example:
        >>> import asyncio
        >>> from langchain_core.runnables import RunnableLambda
        >>> from langchain_tokenopt.coalescing import CoalescingRunnable
        >>> shout = CoalescingRunnable(RunnableLambda(str.upper), window_ms=5)
        >>> async def main() -> list[str]:
        ...     return await asyncio.gather(*(shout.ainvoke("hi") for _ in range(3)))
        >>> asyncio.run(main()), shout.stats.underlying_calls
        (['HI', 'HI', 'HI'], 1)
    """

    def __init__(
        self,
        runnable: Runnable[Input, Output],
        *,
        window_ms: float = 10.0,
        max_batch_size: int = 16,
        coalesce_sampling: bool = False,
    ) -> None:
        instance_of(runnable, "runnable", Runnable, "a Runnable (a chat model, a chain...)")
        self.window_ms = finite_number(
            window_ms, "window_ms", minimum=0, maximum=MAX_WINDOW_MS, hint="e.g. 10"
        )
        self.max_batch_size = int_in_range(max_batch_size, "max_batch_size", minimum=1)
        self.runnable = runnable
        self.coalesce_sampling = coalesce_sampling
        #: whether identical inputs share one call (False for sampling models)
        self.single_flight = coalesce_sampling or not samples_randomly(runnable)
        self._lock = threading.Lock()
        self._stats = CoalescingStats()
        self._sync_inflight: dict[tuple[_GroupKey, str], Future[Any]] = {}
        self._sync_open: dict[_GroupKey, _SyncBatch] = {}
        self._async_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncState] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def InputType(self) -> Any:
        """The wrapped runnable's input type."""
        return self.runnable.InputType

    @property
    def OutputType(self) -> Any:
        """The wrapped runnable's output type."""
        return self.runnable.OutputType

    @property
    def stats(self) -> CoalescingStats:
        """A snapshot of what coalescing did so far."""
        with self._lock:
            return self._stats

    # -- keys ---------------------------------------------------------------------

    def _group_key(self, config: RunnableConfig, kwargs: dict[str, Any]) -> _GroupKey | None:
        """Requests batch together only if this key is equal; None: never coalesce."""
        relevant = {name: config.get(name) for name in _RESULT_CONFIG_KEYS if config.get(name)}
        config_key = _key(relevant)
        kwargs_key = _key(kwargs)
        if config_key is None or kwargs_key is None:
            return None
        return (config_key, kwargs_key)

    def _input_key(self, value: Any) -> str | None:
        return _key(value) if self.single_flight else None

    def _count(self, **changes: int) -> None:
        with self._lock:
            self._record(**changes)

    def _record(self, **changes: int) -> None:
        stats = self._stats
        self._stats = CoalescingStats(
            requests=stats.requests + changes.get("requests", 0),
            shared=stats.shared + changes.get("shared", 0),
            underlying_calls=stats.underlying_calls + changes.get("underlying_calls", 0),
            inputs_sent=stats.inputs_sent + changes.get("inputs_sent", 0),
            largest_batch=max(stats.largest_batch, changes.get("batch", 0)),
        )

    # -- sync -----------------------------------------------------------------------

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        """Run `input`, sharing a call with identical concurrent requests."""
        config = ensure_config(config)
        group = self._group_key(config, kwargs)
        if group is None:
            self._count(requests=1, underlying_calls=1, inputs_sent=1, batch=1)
            return self.runnable.invoke(input, config, **kwargs)
        key = self._input_key(input)
        run_now: _SyncBatch | None = None
        lead: _SyncBatch | None = None
        with self._lock:
            self._record(requests=1)
            future = self._sync_inflight.get((group, key)) if key is not None else None
            if future is not None:
                self._record(shared=1)
            else:
                future = Future()
                if key is not None:
                    self._sync_inflight[(group, key)] = future
                batch = self._sync_open.get(group)
                if batch is None:
                    batch = _SyncBatch(group, kwargs)
                    self._sync_open[group] = batch
                    lead = batch
                batch.items.append(_Item(key, input, config))
                batch.futures.append(future)
                if len(batch.items) >= self.max_batch_size:
                    del self._sync_open[group]
                    batch.taken = True
                    batch.full.set()
                    run_now = batch
        if run_now is not None:
            self._run_sync(run_now)
        elif lead is not None:
            lead.full.wait(self.window_ms / 1000)
            with self._lock:
                if not lead.taken:
                    lead.taken = True
                    if self._sync_open.get(group) is lead:
                        del self._sync_open[group]
                    run_now = lead
            if run_now is not None:
                self._run_sync(run_now)
        return cast(Output, future.result())

    def _run_sync(self, batch: _SyncBatch) -> None:
        items = batch.items
        self._count(underlying_calls=1, inputs_sent=len(items), batch=len(items))
        results: list[Any]
        try:
            if len(items) == 1:
                try:
                    results = [
                        self.runnable.invoke(items[0].input, items[0].config, **batch.kwargs)
                    ]
                except Exception as exc:
                    results = [exc]
            else:
                results = self.runnable.batch(
                    [item.input for item in items],
                    [item.config for item in items],
                    return_exceptions=True,
                    **batch.kwargs,
                )
        except BaseException as exc:  # the batch itself failed (or was interrupted)
            self._settle_sync(batch, [exc] * len(items))
            raise
        self._settle_sync(batch, results)

    def _settle_sync(self, batch: _SyncBatch, results: Sequence[Any]) -> None:
        with self._lock:
            for item, future in zip(batch.items, batch.futures, strict=True):
                if (
                    item.key is not None
                    and self._sync_inflight.get((batch.group, item.key)) is future
                ):
                    del self._sync_inflight[(batch.group, item.key)]
        for future, result in zip(batch.futures, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    # -- async ----------------------------------------------------------------------

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        """Async `invoke`: cancelling this call never cancels the shared one."""
        config = ensure_config(config)
        group = self._group_key(config, kwargs)
        if group is None:
            self._count(requests=1, underlying_calls=1, inputs_sent=1, batch=1)
            return await self.runnable.ainvoke(input, config, **kwargs)
        key = self._input_key(input)
        loop = asyncio.get_running_loop()
        state = self._async_state(loop)
        future = state.inflight.get((group, key)) if key is not None else None
        if future is not None:
            self._count(requests=1, shared=1)
        else:
            self._count(requests=1)
            future = loop.create_future()
            future.add_done_callback(_retrieve_exception)
            if key is not None:
                state.inflight[(group, key)] = future
            batch = state.open.get(group)
            if batch is None:
                batch = _AsyncBatch(group, kwargs)
                state.open[group] = batch
                batch.timer = loop.call_later(
                    self.window_ms / 1000, self._flush_async, loop, state, batch
                )
            batch.items.append(_Item(key, input, config))
            batch.futures.append(future)
            if len(batch.items) >= self.max_batch_size:
                self._flush_async(loop, state, batch)
        return cast(Output, await asyncio.shield(future))

    def _async_state(self, loop: asyncio.AbstractEventLoop) -> _AsyncState:
        with self._lock:
            state = self._async_states.get(loop)
            if state is None:
                state = self._async_states[loop] = _AsyncState()
            return state

    def _flush_async(
        self, loop: asyncio.AbstractEventLoop, state: _AsyncState, batch: _AsyncBatch
    ) -> None:
        if state.open.get(batch.group) is not batch:
            return  # already flushed (full before its window ended)
        del state.open[batch.group]
        if batch.timer is not None:
            batch.timer.cancel()
        task = loop.create_task(self._run_async(state, batch))
        state.tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(state.tasks.discard)

    async def _run_async(self, state: _AsyncState, batch: _AsyncBatch) -> None:
        items = batch.items
        self._count(underlying_calls=1, inputs_sent=len(items), batch=len(items))
        results: list[Any]
        try:
            if len(items) == 1:
                try:
                    results = [
                        await self.runnable.ainvoke(items[0].input, items[0].config, **batch.kwargs)
                    ]
                except Exception as exc:
                    results = [exc]
            else:
                results = await self.runnable.abatch(
                    [item.input for item in items],
                    [item.config for item in items],
                    return_exceptions=True,
                    **batch.kwargs,
                )
        except asyncio.CancelledError:
            self._settle_async(state, batch, None)
            raise
        except Exception as exc:
            results = [exc] * len(items)
        self._settle_async(state, batch, results)

    def _settle_async(
        self, state: _AsyncState, batch: _AsyncBatch, results: Sequence[Any] | None
    ) -> None:
        for item, future in zip(batch.items, batch.futures, strict=True):
            if item.key is not None and state.inflight.get((batch.group, item.key)) is future:
                del state.inflight[(batch.group, item.key)]
        for index, future in enumerate(batch.futures):
            if future.done():
                continue
            if results is None:
                future.cancel()
            elif isinstance(results[index], BaseException):
                future.set_exception(results[index])
            else:
                future.set_result(results[index])


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    """Mark a shared failure as seen, so an all-cancelled future logs no warning."""
    if not future.cancelled():
        future.exception()
