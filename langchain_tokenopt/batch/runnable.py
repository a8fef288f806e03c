"""`BatchAPIRunnable`: a chat model's `batch()` through the provider's batch API, half price.

OpenAI's Batch API and Anthropic's Message Batches answer within 24 hours at 50% of
the standard price. This Runnable takes what the wrapped model takes and returns what
it returns, in input order, but sends the requests as provider batches: it builds the
request file from the model's own payloads, uploads it, creates the batch, polls with
backoff, downloads results and errors and maps them back by custom id. The batch is
remembered in a `Store` so a restarted process collects it instead of paying twice,
and callbacks see every item as a model call priced at the batch rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.load import dumpd
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, get_config_list

from langchain_tokenopt.batch.anthropic import AnthropicBatchEndpoint
from langchain_tokenopt.batch.endpoint import BatchEndpoint, BatchStatus, ItemFailure, Outcome
from langchain_tokenopt.batch.openai import OpenAIBatchEndpoint
from langchain_tokenopt.batch.state import BatchJob, Chunk, JobStore, custom_id, index_of
from langchain_tokenopt.batch.target import Target, call_kwargs, to_messages, unwrap
from langchain_tokenopt.core.markers import BATCH_KEY
from langchain_tokenopt.errors import BatchItemError
from langchain_tokenopt.stores import MemoryStore, Store

__all__ = ["BatchAPIRunnable"]

logger = logging.getLogger(__name__)

_MISSING_REASONS = {"expired": "expired", "cancelled": "cancelled", "canceled": "cancelled"}


def _endpoint_for(target: Target) -> BatchEndpoint:
    kwargs = call_kwargs(target.kwargs)
    if type(target.model).__module__.startswith("langchain_anthropic"):
        return cast(BatchEndpoint, AnthropicBatchEndpoint(target.model, kwargs))
    if getattr(target.model, "root_client", None) is not None:
        return cast(BatchEndpoint, OpenAIBatchEndpoint(target.model, kwargs))
    raise TypeError(
        f"{type(target.model).__name__} has no batch API here: BatchAPIRunnable supports "
        "ChatOpenAI (langchain-openai) and ChatAnthropic (langchain-anthropic)"
    )


@dataclass
class _Plan:
    """One `batch()` call, before anything is sent."""

    messages: list[list[BaseMessage]]
    configs: list[RunnableConfig]
    key: str | None  # the store key the caller named, else None (derived from the requests)
    params: dict[str, Any]  # invocation params the callbacks see
    metadata: dict[str, Any]  # metadata the callbacks see (model name, batch marker)


class BatchAPIRunnable(Runnable[LanguageModelInput, Any]):
    """Run a chat model's `batch()` / `abatch()` through the provider batch API.

    Guarantees:
    - Inputs and outputs are those of the wrapped runnable (a chat model, a model with
      bound tools, or `with_structured_output(...)`), in input order; each request body
      is the model's own payload, so every parameter it would send is sent.
    - `return_exceptions=True` returns a `BatchItemError` for each failed, expired or
      cancelled item; without it the first failure is raised after the batch ends
      (the batch stays saved, so calling again with `return_exceptions=True` and the
      same key collects it without paying again).
    - The batch ids are saved in `store` under `config["configurable"]["batch_key"]`
      (or, unnamed, a digest of the requests) before polling, so a restarted process
      with the same store and key collects the same batches; `cancel(key)` stops them.
    - Requests are split into several batches to respect `max_requests_per_batch` and
      `max_bytes_per_batch` (the provider's limits by default).
    - Callbacks in the config see each item as a model call: `on_chat_model_start`
      for every item before anything is uploaded (a `TokenBudget` reserves then), and
      `on_llm_end` with its usage and the `BATCH_KEY` marker (or `on_llm_error`), so
      `UsageTracker` and `TokenBudget` price it at the batch rate.

    Polling waits `poll_interval_seconds`, then `backoff` times longer each round, up
    to `max_poll_interval_seconds`; `timeout_seconds` (default: wait until the
    provider ends the batch, at most its 24 h window) raises `TimeoutError` and keeps
    the batch saved for a later call.

    Example:
        >>> from langchain_openai import ChatOpenAI
        >>> batched = BatchAPIRunnable(ChatOpenAI(model="gpt-4o-mini", api_key="sk-test"),
        ...                            poll_interval_seconds=60)
        >>> batched.provider, batched.max_requests_per_batch
        ('openai', 50000)
        >>> # batched.batch(["Summarize ...", ...]) -> AIMessages at half price
    """

    def __init__(
        self,
        model: Runnable[Any, Any],
        *,
        store: Store | None = None,
        poll_interval_seconds: float = 30.0,
        max_poll_interval_seconds: float = 600.0,
        backoff: float = 1.5,
        timeout_seconds: float | None = None,
        max_requests_per_batch: int | None = None,
        max_bytes_per_batch: int | None = None,
        key_prefix: str = "tokenopt:batch",
        state_ttl_seconds: float | None = 30 * 24 * 3600.0,
    ) -> None:
        if poll_interval_seconds <= 0 or max_poll_interval_seconds < poll_interval_seconds:
            raise ValueError("poll_interval_seconds must be > 0 and <= max_poll_interval_seconds")
        if backoff < 1:
            raise ValueError(f"backoff must be >= 1 (a growth factor), got {backoff}")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0, or None to wait for the provider")
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"store must be a Store, got {type(store).__name__}")
        self.bound = model
        self._target = unwrap(model)
        self.endpoint = _endpoint_for(self._target)
        self.max_requests_per_batch = self._limit(
            max_requests_per_batch, self.endpoint.max_requests_per_batch, "max_requests_per_batch"
        )
        self.max_bytes_per_batch = self._limit(
            max_bytes_per_batch, self.endpoint.max_bytes_per_batch, "max_bytes_per_batch"
        )
        self.store = store if store is not None else MemoryStore()
        self._jobs = JobStore(self.store, state_ttl_seconds)
        self.poll_interval_seconds = poll_interval_seconds
        self.max_poll_interval_seconds = max_poll_interval_seconds
        self.backoff = backoff
        self.timeout_seconds = timeout_seconds
        self.key_prefix = key_prefix

    @staticmethod
    def _limit(value: int | None, provider_max: int, name: str) -> int:
        if value is None:
            return provider_max
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
        return min(value, provider_max)

    def __repr__(self) -> str:
        return f"BatchAPIRunnable({self.provider}, {self.model_name!r})"

    @property
    def provider(self) -> str:
        """ "openai" or "anthropic"."""
        return self.endpoint.provider

    @property
    def model_name(self) -> str | None:
        model = self._target.model
        name = getattr(model, "model_name", None) or getattr(model, "model", None)
        return name if isinstance(name, str) else None

    # -- Runnable ----------------------------------------------------------------------

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """One item as a batch of one (half price, answered within the provider's window)."""
        return self.batch([input], config)[0]

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return (await self.abatch([input], config))[0]

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """Send `inputs` as provider batches; return the answers in input order."""
        if not inputs:
            return []
        plan = self._plan(inputs, config)
        job = self._jobs.load(plan.key) if plan.key else None
        self._check(job, plan)
        runs = self._start_runs(plan)  # before any upload: budgets reserve here
        try:
            job = self._submit(plan, job)
            outcomes = self._collect(job)
        except BaseException as exc:
            for run in runs:
                run.on_llm_error(exc)
            raise
        items = self._map_back(job, outcomes)
        for run, (event, _) in zip(runs, items, strict=True):
            if isinstance(event, LLMResult):
                run.on_llm_end(event)
            else:
                run.on_llm_error(event)
        results = self._results(job, items, return_exceptions)
        self._jobs.delete(job.key)
        return results

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """Async twin of `batch()`: the same requests, with the SDKs' async clients."""
        if not inputs:
            return []
        plan = self._plan(inputs, config)
        job = await self._jobs.aload(plan.key) if plan.key else None
        self._check(job, plan)
        runs = await self._astart_runs(plan)
        try:
            job = await self._asubmit(plan, job)
            outcomes = await self._acollect(job)
        except BaseException as exc:
            for run in runs:
                await run.on_llm_error(exc)
            raise
        items = self._map_back(job, outcomes)
        for run, (event, _) in zip(runs, items, strict=True):
            if isinstance(event, LLMResult):
                await run.on_llm_end(event)
            else:
                await run.on_llm_error(event)
        results = self._results(job, items, return_exceptions)
        await self._jobs.adelete(job.key)
        return results

    def cancel(self, key: str) -> int:
        """Ask the provider to cancel the batches saved under `key`; how many were asked.

        Items already answered stay collectable: the next `batch()` with the same key
        returns them, and a `BatchItemError` ("cancelled") for the others.
        """
        job = self._jobs.load(self._store_key(key))
        if job is None:
            return 0
        for chunk in job.chunks:
            self.endpoint.cancel(chunk.ref)
        return len(job.chunks)

    async def acancel(self, key: str) -> int:
        """Async twin of `cancel()`."""
        job = await self._jobs.aload(self._store_key(key))
        if job is None:
            return 0
        for chunk in job.chunks:
            await self.endpoint.acancel(chunk.ref)
        return len(job.chunks)

    # -- pure steps --------------------------------------------------------------------

    def _store_key(self, name: str) -> str:
        return f"{self.key_prefix}:{name}"

    def _plan(
        self,
        inputs: Sequence[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None,
    ) -> _Plan:
        # One config for every item unless the caller gave a list: one callback manager.
        configs = (
            get_config_list(config, len(inputs))
            if isinstance(config, list)
            else [ensure_config(config)] * len(inputs)
        )
        name = (ensure_config(configs[0]).get("configurable") or {}).get("batch_key")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"configurable batch_key must be a non-empty string, got {name!r}")
        messages = [to_messages(value) for value in inputs]
        first = self.endpoint.request_body(messages[0])
        params = {k: v for k, v in first.items() if k not in ("messages", "system")}
        params["_type"] = getattr(self._target.model, "_llm_type", "chat")
        metadata = {
            "ls_provider": self.provider,
            "ls_model_name": params.get("model"),
            "ls_model_type": "chat",
            BATCH_KEY: True,
        }
        key = self._store_key(name) if name else None
        return _Plan(messages, configs, key, params, metadata)

    def _check(self, job: BatchJob | None, plan: _Plan) -> None:
        if job is not None and (job.count != len(plan.messages) or job.provider != self.provider):
            raise ValueError(
                f"{job.key!r} holds a {job.provider} batch of {job.count} requests, not "
                f"this one ({self.provider}, {len(plan.messages)}): name another batch_key, "
                "or cancel() and forget the old one"
            )

    def _chunks(self, plan: _Plan, digest: Any) -> Iterator[tuple[int, int, list[bytes]]]:
        """The encoded requests in chunks within the limits: (start, end, lines)."""
        lines: list[bytes] = []
        size = start = 0
        for index, messages in enumerate(plan.messages):
            line = self.endpoint.encode(custom_id(index), self.endpoint.request_body(messages))
            digest.update(line)
            if len(line) > self.max_bytes_per_batch:
                raise ValueError(
                    f"item {index} is {len(line)} bytes, more than max_bytes_per_batch "
                    f"({self.max_bytes_per_batch}): send it interactively"
                )
            if lines and (
                len(lines) >= self.max_requests_per_batch
                or size + len(line) > self.max_bytes_per_batch
            ):
                yield start, index, lines
                lines, size, start = [], 0, index
            lines.append(line)
            size += len(line)
        if lines:
            yield start, len(plan.messages), lines

    def _digest_key(self, digest: Any) -> str:
        return self._store_key("auto:" + digest.hexdigest()[:32])

    def _callback_managers(self, plan: _Plan) -> Iterator[tuple[RunnableConfig, dict[str, Any]]]:
        model = self._target.model
        for config in plan.configs:
            yield (
                config,
                {
                    "inheritable_callbacks": config.get("callbacks"),
                    "local_callbacks": model.callbacks,
                    "verbose": model.verbose,
                    "inheritable_tags": config.get("tags"),
                    "local_tags": model.tags,
                    "inheritable_metadata": config.get("metadata"),
                    "local_metadata": {**(model.metadata or {}), **plan.metadata},
                },
            )

    def _serialized(self) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], dumpd(self._target.model))
        except Exception:  # serialization is for tracing only
            return {"name": type(self._target.model).__name__}

    def _map_back(
        self, job: BatchJob, outcomes: list[Outcome | None]
    ) -> list[tuple[LLMResult | Exception, Any]]:
        """Per item: what the callbacks see (result or error) and what is returned."""
        items: list[tuple[LLMResult | Exception, Any]] = []
        tail = self._target.tail
        for index, outcome in enumerate(outcomes):
            chunk = job.chunk_of(index)
            batch_id = chunk.ref.get("batch_id", "?")
            if not isinstance(outcome, ChatResult):
                failure = outcome or ItemFailure("failed", "the provider returned no answer")
                error = BatchItemError(
                    index=index,
                    custom_id=custom_id(index),
                    batch_id=batch_id,
                    reason=failure.reason,
                    message=failure.message,
                    status_code=failure.status_code,
                    code=failure.code,
                )
                items.append((error, error))
                continue
            generation = outcome.generations[0]
            message = generation.message
            message.response_metadata[BATCH_KEY] = {
                "provider": self.provider,
                "batch_id": batch_id,
                "custom_id": custom_id(index),
            }
            event = LLMResult(generations=[[generation]], llm_output=outcome.llm_output)
            if tail is None:
                items.append((event, message))
                continue
            try:
                items.append((event, tail.invoke(message)))
            except Exception as exc:  # the parser's error is this item's result
                items.append((event, exc))
        return items

    def _results(
        self, job: BatchJob, items: list[tuple[LLMResult | Exception, Any]], return_exceptions: bool
    ) -> list[Any]:
        results = [output for _, output in items]
        if return_exceptions:
            return results
        for index, output in enumerate(results):
            if isinstance(output, BatchItemError):
                raise output
            if isinstance(output, Exception):
                chunk = job.chunk_of(index)
                raise BatchItemError(
                    index=index,
                    custom_id=custom_id(index),
                    batch_id=chunk.ref.get("batch_id", "?"),
                    reason="could not be parsed",
                    message=str(output),
                ) from output
        return results

    def _place(
        self,
        chunk: Chunk,
        status: BatchStatus,
        found: list[tuple[str, Outcome]],
        outcomes: list[Outcome | None],
    ) -> None:
        """Put a finished chunk's outcomes at their input index; fill in missing ones."""
        for cid, outcome in found:
            index = index_of(cid)
            if index is None or not chunk.start <= index < chunk.end:
                logger.warning("batch %s returned unknown custom_id %r", chunk.ref, cid)
                continue
            outcomes[index] = outcome
        reason = _MISSING_REASONS.get(status.status, "failed")
        message = str(status.detail.get("message") or f"the batch ended {status.status}")
        for index in range(chunk.start, chunk.end):
            if outcomes[index] is None:
                outcomes[index] = ItemFailure(reason, message)

    def _next_interval(self, interval: float, started: float) -> float:
        if self.timeout_seconds is not None and time.monotonic() - started > self.timeout_seconds:
            raise TimeoutError(
                f"the provider batch is still running after {self.timeout_seconds} s; it "
                "stays saved: call batch() again with the same inputs and batch_key to "
                "collect it, or cancel(batch_key)"
            )
        return min(interval * self.backoff, self.max_poll_interval_seconds)

    # -- I/O spine: sync -----------------------------------------------------------------

    def _start_runs(self, plan: _Plan) -> list[CallbackManagerForLLMRun]:
        serialized = self._serialized()
        runs: list[CallbackManagerForLLMRun] = []
        managers: dict[int, CallbackManager] = {}
        for (config, settings), messages in zip(
            self._callback_managers(plan), plan.messages, strict=True
        ):
            manager = managers.get(id(config))
            if manager is None:
                manager = managers[id(config)] = CallbackManager.configure(**settings)
            try:
                (run,) = manager.on_chat_model_start(
                    serialized,
                    [messages],
                    invocation_params=plan.params,
                    options={"stop": None},
                    name=config.get("run_name"),
                    batch_size=len(plan.messages),
                )
            except BaseException as exc:
                for started in runs:
                    started.on_llm_error(exc)
                raise
            runs.append(run)
        return runs

    def _submit(self, plan: _Plan, job: BatchJob | None) -> BatchJob:
        if job is not None and job.complete:
            return job
        done = {chunk.start for chunk in job.chunks} if job else set()
        digest = hashlib.sha256()
        staged: list[tuple[int, int, dict[str, str], list[bytes]]] = []
        for start, end, lines in self._chunks(plan, digest):
            if start in done:
                continue
            ref = self.endpoint.stage(lines)
            if plan.key is not None:  # named: create now, remember at once
                job = job or BatchJob(plan.key, self.provider, len(plan.messages))
                self._create(job, start, end, ref, lines)
            else:  # unnamed: the key is the digest of every request, known at the end
                staged.append((start, end, ref, lines if not ref else []))
        if plan.key is None:
            job = self._jobs.load(self._digest_key(digest))
            self._check(job, plan)
            done = {chunk.start for chunk in job.chunks} if job else set()
            job = job or BatchJob(self._digest_key(digest), self.provider, len(plan.messages))
            for start, end, ref, lines in staged:
                if start in done:
                    self.endpoint.discard(ref)
                else:
                    self._create(job, start, end, ref, lines)
        assert job is not None
        job.complete = True
        self._jobs.save(job)
        return job

    def _create(
        self, job: BatchJob, start: int, end: int, ref: dict[str, str], lines: list[bytes]
    ) -> None:
        created = self.endpoint.create(ref, lines, key=job.key)
        job.chunks.append(Chunk(start, end, created))
        self._jobs.save(job)
        logger.info("created %s batch %s for items %d-%d", self.provider, created, start, end - 1)

    def _collect(self, job: BatchJob) -> list[Outcome | None]:
        outcomes: list[Outcome | None] = [None] * job.count
        pending = list(job.chunks)
        interval, started = self.poll_interval_seconds, time.monotonic()
        while True:
            running = []
            for chunk in pending:
                status = self.endpoint.poll(chunk.ref)
                if status.ended:
                    self._place(chunk, status, self.endpoint.results(chunk.ref, status), outcomes)
                else:
                    running.append(chunk)
            pending = running
            if not pending:
                return outcomes
            time.sleep(interval)
            interval = self._next_interval(interval, started)

    # -- I/O spine: async ----------------------------------------------------------------

    async def _astart_runs(self, plan: _Plan) -> list[AsyncCallbackManagerForLLMRun]:
        serialized = self._serialized()
        runs: list[AsyncCallbackManagerForLLMRun] = []
        managers: dict[int, AsyncCallbackManager] = {}
        for (config, settings), messages in zip(
            self._callback_managers(plan), plan.messages, strict=True
        ):
            manager = managers.get(id(config))
            if manager is None:
                manager = managers[id(config)] = AsyncCallbackManager.configure(**settings)
            try:
                (run,) = await manager.on_chat_model_start(
                    serialized,
                    [messages],
                    invocation_params=plan.params,
                    options={"stop": None},
                    name=config.get("run_name"),
                    batch_size=len(plan.messages),
                )
            except BaseException as exc:
                for started in runs:
                    await started.on_llm_error(exc)
                raise
            runs.append(run)
        return runs

    async def _asubmit(self, plan: _Plan, job: BatchJob | None) -> BatchJob:
        if job is not None and job.complete:
            return job
        done = {chunk.start for chunk in job.chunks} if job else set()
        digest = hashlib.sha256()
        staged: list[tuple[int, int, dict[str, str], list[bytes]]] = []
        for start, end, lines in self._chunks(plan, digest):
            if start in done:
                continue
            ref = await self.endpoint.astage(lines)
            if plan.key is not None:
                job = job or BatchJob(plan.key, self.provider, len(plan.messages))
                await self._acreate(job, start, end, ref, lines)
            else:
                staged.append((start, end, ref, lines if not ref else []))
        if plan.key is None:
            job = await self._jobs.aload(self._digest_key(digest))
            self._check(job, plan)
            done = {chunk.start for chunk in job.chunks} if job else set()
            job = job or BatchJob(self._digest_key(digest), self.provider, len(plan.messages))
            for start, end, ref, lines in staged:
                if start in done:
                    await self.endpoint.adiscard(ref)
                else:
                    await self._acreate(job, start, end, ref, lines)
        assert job is not None
        job.complete = True
        await self._jobs.asave(job)
        return job

    async def _acreate(
        self, job: BatchJob, start: int, end: int, ref: dict[str, str], lines: list[bytes]
    ) -> None:
        created = await self.endpoint.acreate(ref, lines, key=job.key)
        job.chunks.append(Chunk(start, end, created))
        await self._jobs.asave(job)
        logger.info("created %s batch %s for items %d-%d", self.provider, created, start, end - 1)

    async def _acollect(self, job: BatchJob) -> list[Outcome | None]:
        outcomes: list[Outcome | None] = [None] * job.count
        pending = list(job.chunks)
        interval, started = self.poll_interval_seconds, time.monotonic()
        while True:
            running = []
            for chunk in pending:
                status = await self.endpoint.apoll(chunk.ref)
                if status.ended:
                    found = await self.endpoint.aresults(chunk.ref, status)
                    self._place(chunk, status, found, outcomes)
                else:
                    running.append(chunk)
            pending = running
            if not pending:
                return outcomes
            await asyncio.sleep(interval)
            interval = self._next_interval(interval, started)
