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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from uuid import uuid4

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
from langchain_tokenopt.batch.endpoint import (
    BatchEndpoint,
    BatchLabel,
    BatchRef,
    BatchStatus,
    ItemFailure,
    Outcome,
)
from langchain_tokenopt.batch.openai import OpenAIBatchEndpoint
from langchain_tokenopt.batch.state import BatchJob, Chunk, JobStore, custom_id, index_of
from langchain_tokenopt.batch.target import Target, call_kwargs, to_messages, unwrap
from langchain_tokenopt.core.markers import BATCH_KEY
from langchain_tokenopt.core.validation import (
    MAX_TTL_SECONDS,
    finite_number,
    instance_of,
    int_in_range,
    optional,
    positive_number,
    shown,
)
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    BatchItemError,
    InvalidArgumentError,
    TokenOptError,
)
from langchain_tokenopt.stores import MemoryStore, Store

__all__ = ["BatchAPIRunnable"]

logger = logging.getLogger(__name__)

_MISSING_REASONS = {"expired": "expired", "cancelled": "cancelled", "canceled": "cancelled"}

#: Longest wait between two polls (a day): the providers end every batch within 24 h.
MAX_POLL_SECONDS = 24 * 3600.0


def _batch_key(value: Any, name: str) -> str:
    """`value` if it is a non-empty str (a batch key), else a typed error naming `name`."""
    instance_of(value, name, str, "a str (the name the batch is saved under)")
    if not value:
        raise InvalidArgumentError(f"{name} must be a non-empty str, got ''")
    return cast(str, value)


def _check_call(inputs: Any, config: Any, return_exceptions: Any) -> None:
    """The arguments of `batch()` / `abatch()` (the items are read in `_plan`)."""
    if not isinstance(inputs, (list, tuple)):
        raise ArgumentTypeError(
            f"inputs must be a list of inputs (one per request), got {type(inputs).__name__}"
        )
    instance_of(return_exceptions, "return_exceptions", bool, "True or False")
    configs = config if isinstance(config, list) else [config]
    for number, item in enumerate(configs):
        where = f"config[{number}]" if isinstance(config, list) else "config"
        if item is not None and not isinstance(item, Mapping):
            raise ArgumentTypeError(
                f"{where} must be a RunnableConfig dict (or None), got {type(item).__name__}"
            )
        configurable = (item or {}).get("configurable")
        if configurable is not None and not isinstance(configurable, Mapping):
            raise ArgumentTypeError(
                f'{where}["configurable"] must be a dict, got {type(configurable).__name__}'
            )
    if isinstance(config, list) and len(config) != len(inputs):
        raise InvalidArgumentError(
            f"config is a list of {len(config)} configs for {len(inputs)} inputs: give one "
            "config per input, or one config for all"
        )


def _endpoint_for(target: Target) -> BatchEndpoint:
    kwargs = call_kwargs(target.kwargs)
    if type(target.model).__module__.startswith("langchain_anthropic"):
        return cast(BatchEndpoint, AnthropicBatchEndpoint(target.model, kwargs))
    if getattr(target.model, "root_client", None) is not None:
        return cast(BatchEndpoint, OpenAIBatchEndpoint(target.model, kwargs))
    raise ArgumentTypeError(
        f"{type(target.model).__name__} has no batch API here: BatchAPIRunnable supports "
        "ChatOpenAI (langchain-openai) and ChatAnthropic (langchain-anthropic)"
    )


@dataclass
class _Plan:
    """One `batch()` call, before anything is sent (the inputs stay the caller's)."""

    inputs: Sequence[LanguageModelInput]
    configs: list[RunnableConfig]  # one shared config, or one per item
    key: str | None  # the store key the caller named, else None (derived from the requests)
    params: dict[str, Any]  # invocation params the callbacks see
    metadata: dict[str, Any]  # metadata the callbacks see (model name, batch marker)

    def config(self, index: int) -> RunnableConfig:
        return self.configs[index if len(self.configs) > 1 else 0]


@dataclass
class _Staged:
    """A chunk whose requests were built (and, for OpenAI, uploaded) but not yet created."""

    start: int
    end: int
    ref: BatchRef  # empty: nothing kept at the provider, rebuild the requests to create


class _ChunkLines:
    """The encoded requests of the chunk being built, within the batch limits."""

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.start = 0
        self.lines: list[bytes] = []
        self.size = 0

    def fits(self, line: bytes) -> bool:
        return not self.lines or (
            len(self.lines) < self.max_requests and self.size + len(line) <= self.max_bytes
        )

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        self.size += len(line)

    def take(self, end: int) -> tuple[int, int, list[bytes]]:
        """The chunk so far, `start` to `end`; the next one starts at `end`."""
        chunk = (self.start, end, self.lines)
        self.start, self.lines, self.size = end, [], 0
        return chunk


_Run = TypeVar("_Run")


class _Runs(Generic[_Run]):
    """The open callback run of each item, released as its answer is read.

    Without callbacks nothing is allocated: no run is started, none is kept.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._runs: list[_Run | None] | None = None

    def open(self, index: int, run: _Run) -> None:
        if self._runs is None:
            self._runs = [None] * self.count
        self._runs[index] = run

    def close(self, index: int) -> _Run | None:
        if self._runs is None:
            return None
        run, self._runs[index] = self._runs[index], None
        return run

    def close_all(self) -> list[_Run]:
        runs = [run for run in self._runs or () if run is not None]
        self._runs = None
        return runs


#: Marks an item whose answer has not been read yet.
_PENDING: Any = object()


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
      before its chunk is uploaded and for every item before any batch is created (a
      `TokenBudget` reserves then: a refusal costs nothing), and `on_llm_end` with its
      usage and the `BATCH_KEY` marker (or `on_llm_error`) as its chunk's results are
      read, so `UsageTracker` and `TokenBudget` price it at the batch rate. A list of
      configs gives each item its own (callbacks, tags, run name); they must name the
      same `batch_key`.
    - Memory beyond the answers grows with one chunk, not with the input: requests are
      built, their runs started and uploaded chunk by chunk, results decoded one at a
      time; per item only its open callback run is kept, and none without callbacks.
    - A process that dies between creating an OpenAI batch and saving its id finds it
      again on restart (batch metadata names the key, chunk and attempt), so the chunk
      is not paid twice; Anthropic keeps no batch metadata (see `batch/anthropic.py`).

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
        poll = positive_number(
            poll_interval_seconds,
            "poll_interval_seconds",
            maximum=MAX_POLL_SECONDS,
            hint="the provider answers within 24 h: poll every few seconds to minutes",
        )
        max_poll = finite_number(
            max_poll_interval_seconds,
            "max_poll_interval_seconds",
            minimum=poll,
            maximum=MAX_POLL_SECONDS,
            hint="the longest wait between polls, at least poll_interval_seconds",
        )
        backoff = finite_number(
            backoff, "backoff", minimum=1, hint="the growth factor of the wait, e.g. 1.5"
        )
        timeout = optional(
            positive_number,
            timeout_seconds,
            "timeout_seconds",
            maximum=MAX_TTL_SECONDS,
            hint="or None to wait until the provider ends the batch",
        )
        if store is not None:
            instance_of(store, "store", Store, "a Store (MemoryStore, SQLiteStore, RedisStore)")
        instance_of(key_prefix, "key_prefix", str, "a str")
        if not key_prefix:
            raise InvalidArgumentError(
                "key_prefix must be a non-empty str (the store keys of saved batches start "
                "with it), got ''"
            )
        state_ttl = optional(
            positive_number,
            state_ttl_seconds,
            "state_ttl_seconds",
            maximum=MAX_TTL_SECONDS,
            hint="give seconds up to ten years, or None to keep saved batches until collected",
        )
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
        self._jobs = JobStore(self.store, state_ttl)
        self.poll_interval_seconds = poll
        self.max_poll_interval_seconds = max_poll
        self.backoff = backoff
        self.timeout_seconds = timeout
        self.key_prefix = key_prefix

    @staticmethod
    def _limit(value: int | None, provider_max: int, name: str) -> int:
        if value is None:
            return provider_max
        hint = f"or None for the provider's limit ({provider_max})"
        return min(int_in_range(value, name, minimum=1, hint=hint), provider_max)

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
        _check_call(inputs, config, return_exceptions)
        if not inputs:
            return []
        plan = self._plan(inputs, config)
        job = self._jobs.load(plan.key) if plan.key else None
        self._check(job, plan)
        runs: _Runs[CallbackManagerForLLMRun] = _Runs(len(inputs))
        try:
            job = self._submit(plan, job, runs)
            results = self._collect(job, runs)
        except BaseException as exc:
            for run in runs.close_all():
                run.on_llm_error(exc)
            raise
        answers = self._answers(job, results, return_exceptions)
        self._jobs.delete(job.key)
        return answers

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """Async twin of `batch()`: the same requests, with the SDKs' async clients."""
        _check_call(inputs, config, return_exceptions)
        if not inputs:
            return []
        plan = self._plan(inputs, config)
        job = await self._jobs.aload(plan.key) if plan.key else None
        self._check(job, plan)
        runs: _Runs[AsyncCallbackManagerForLLMRun] = _Runs(len(inputs))
        try:
            job = await self._asubmit(plan, job, runs)
            results = await self._acollect(job, runs)
        except BaseException as exc:
            for run in runs.close_all():
                await run.on_llm_error(exc)
            raise
        answers = self._answers(job, results, return_exceptions)
        await self._jobs.adelete(job.key)
        return answers

    def cancel(self, key: str) -> int:
        """Ask the provider to cancel the batches saved under `key`; how many were asked.

        Items already answered stay collectable: the next `batch()` with the same key
        returns them, and a `BatchItemError` ("cancelled") for the others.
        """
        job = self._jobs.load(self._store_key(_batch_key(key, "key")))
        if job is None:
            return 0
        for chunk in job.chunks:
            self.endpoint.cancel(chunk.ref)
        return len(job.chunks)

    async def acancel(self, key: str) -> int:
        """Async twin of `cancel()`."""
        job = await self._jobs.aload(self._store_key(_batch_key(key, "key")))
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
        if isinstance(config, list):  # one config per item (get_config_list checks the count)
            configs = get_config_list(config, len(inputs))
            names = {(c.get("configurable") or {}).get("batch_key") for c in configs}
            if len(names) > 1:
                raise InvalidArgumentError(
                    "the configs of one batch() call name different batch_keys "
                    f"({shown(sorted(map(str, names)))}): one call is one batch job, name one key"
                )
        else:  # one config for every item: one callback manager
            configs = [ensure_config(config)]
        name = (configs[0].get("configurable") or {}).get("batch_key")
        if name is not None:
            _batch_key(name, 'config["configurable"]["batch_key"]')
        for index, value in enumerate(inputs):  # every input readable before anything is sent
            to_messages(value, index)
        first = self._body(0, to_messages(inputs[0], 0))
        params = {k: v for k, v in first.items() if k not in ("messages", "system")}
        params["_type"] = getattr(self._target.model, "_llm_type", "chat")
        metadata = {
            "ls_provider": self.provider,
            "ls_model_name": params.get("model"),
            "ls_model_type": "chat",
            BATCH_KEY: True,
        }
        key = self._store_key(name) if name else None
        return _Plan(inputs, configs, key, params, metadata)

    def _check(self, job: BatchJob | None, plan: _Plan) -> None:
        if job is not None and (job.count != len(plan.inputs) or job.provider != self.provider):
            raise InvalidArgumentError(
                f"{job.key!r} holds a {job.provider} batch of {job.count} requests, not "
                f"this one ({self.provider}, {len(plan.inputs)}): name another batch_key, "
                "or cancel() and forget the old one"
            )

    def _line(self, index: int, messages: Sequence[BaseMessage]) -> bytes:
        """Item `index` as one line of the provider's batch input, checked for size."""
        line = self.endpoint.encode(custom_id(index), self._body(index, messages))
        if len(line) > self.max_bytes_per_batch:
            raise InvalidArgumentError(
                f"item {index} is {len(line)} bytes, more than max_bytes_per_batch "
                f"({self.max_bytes_per_batch}): send it interactively"
            )
        return line

    def _lines(self, plan: _Plan, start: int, end: int) -> list[bytes]:
        """The lines of items `start` to `end` again (for a provider that kept none)."""
        return [self._line(i, to_messages(plan.inputs[i], i)) for i in range(start, end)]

    def _body(self, index: int, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        """The request body of item `index`; a model that cannot build it names the item."""
        try:
            return self.endpoint.request_body(messages)
        except TokenOptError:
            raise
        except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
            raise InvalidArgumentError(
                f"inputs[{index}]: {type(self._target.model).__name__} cannot build a request "
                f"of these messages ({type(exc).__name__}: {str(exc)[:200]}); fix or leave "
                "out this input"
            ) from exc

    def _digest_key(self, digest: Any) -> str:
        return self._store_key("auto:" + digest.hexdigest()[:32])

    def _new_job(self, plan: _Plan, key: str, job: BatchJob | None) -> BatchJob:
        self._check(job, plan)
        return job or BatchJob(key, self.provider, len(plan.inputs))

    def _manager_settings(self, plan: _Plan, config: RunnableConfig) -> dict[str, Any]:
        model = self._target.model
        return {
            "inheritable_callbacks": config.get("callbacks"),
            "local_callbacks": model.callbacks,
            "verbose": model.verbose,
            "inheritable_tags": config.get("tags"),
            "local_tags": model.tags,
            "inheritable_metadata": config.get("metadata"),
            "local_metadata": {**(model.metadata or {}), **plan.metadata},
        }

    def _start_arguments(self, plan: _Plan, index: int) -> dict[str, Any]:
        return {
            "invocation_params": plan.params,
            "options": {"stop": None},
            "name": plan.config(index).get("run_name"),
            "batch_size": len(plan.inputs),
        }

    def _serialized(self) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], dumpd(self._target.model))
        except Exception:  # serialization is for tracing only
            return {"name": type(self._target.model).__name__}

    @staticmethod
    def _label(job: BatchJob, chunk: _Staged, attempt: str) -> BatchLabel:
        return BatchLabel(job.key, f"{chunk.start}-{chunk.end}", attempt)

    def _created(self, job: BatchJob, chunk: _Staged, ref: BatchRef, how: str) -> None:
        job.chunks.append(Chunk(chunk.start, chunk.end, ref))
        job.attempts.pop(chunk.start, None)
        logger.info(
            "%s %s batch %s for items %d-%d",
            how,
            self.provider,
            ref.get("batch_id"),
            chunk.start,
            chunk.end - 1,
        )

    def _not_found(self, job: BatchJob, chunk: _Staged) -> None:
        logger.warning(
            "items %d-%d of %r: a create call was interrupted before its batch id was "
            "saved and %s shows no batch of that attempt; creating it now (Anthropic keeps "
            "no batch metadata: check its console for a duplicate to cancel)",
            chunk.start,
            chunk.end - 1,
            job.key,
            self.provider,
        )

    def _item(
        self, index: int, batch_id: str, outcome: Outcome
    ) -> tuple[LLMResult | BatchItemError, Any]:
        """What the callbacks see for one item (result or error) and what is returned."""
        if not isinstance(outcome, ChatResult):
            error = BatchItemError(
                index=index,
                custom_id=custom_id(index),
                batch_id=batch_id,
                reason=outcome.reason,
                message=outcome.message,
                status_code=outcome.status_code,
                code=outcome.code,
            )
            return error, error
        generation = outcome.generations[0]
        message = generation.message
        message.response_metadata[BATCH_KEY] = {
            "provider": self.provider,
            "batch_id": batch_id,
            "custom_id": custom_id(index),
        }
        event = LLMResult(generations=[[generation]], llm_output=outcome.llm_output)
        tail = self._target.tail
        if tail is None:
            return event, message
        try:
            return event, tail.invoke(message)
        except Exception as exc:  # the parser's error is this item's result
            return event, exc

    def _read_chunk(
        self, chunk: Chunk, status: BatchStatus, found: Iterable[tuple[str, Outcome]]
    ) -> Iterator[tuple[int, LLMResult | BatchItemError, Any]]:
        """(index, callback event, output) of each item of an ended chunk, as decoded;
        then the items the provider did not answer (expired, cancelled, failed)."""
        seen = bytearray(chunk.end - chunk.start)
        batch_id = chunk.ref.get("batch_id", "?")
        for cid, outcome in found:
            index = index_of(cid)
            if index is None or not chunk.start <= index < chunk.end or seen[index - chunk.start]:
                logger.warning(
                    "batch %s returned an unknown or repeated custom_id %r", batch_id, cid
                )
                continue
            seen[index - chunk.start] = 1
            yield (index, *self._item(index, batch_id, outcome))
        reason = _MISSING_REASONS.get(status.status, "failed")
        message = str(status.detail.get("message") or f"the batch ended {status.status}")
        for offset, answered in enumerate(seen):
            if not answered:
                index = chunk.start + offset
                yield (index, *self._item(index, batch_id, ItemFailure(reason, message)))

    def _answers(self, job: BatchJob, results: list[Any], return_exceptions: bool) -> list[Any]:
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

    def _next_interval(self, interval: float, started: float) -> float:
        if self.timeout_seconds is not None and time.monotonic() - started > self.timeout_seconds:
            raise TimeoutError(
                f"the provider batch is still running after {self.timeout_seconds} s; it "
                "stays saved: call batch() again with the same inputs and batch_key to "
                "collect it, or cancel(batch_key)"
            )
        return min(interval * self.backoff, self.max_poll_interval_seconds)

    # -- I/O spine: sync -----------------------------------------------------------------

    def _submit(
        self, plan: _Plan, job: BatchJob | None, runs: _Runs[CallbackManagerForLLMRun]
    ) -> BatchJob:
        """Start each item's run and stage its chunk, chunk by chunk; then create the
        batches (nothing is paid for before every item started: budgets reserve then)."""
        staged: list[_Staged] = []
        try:
            digest = self._stage(plan, job, runs, staged)
            if plan.key is None:
                key = self._digest_key(digest)
                job = self._new_job(plan, key, self._jobs.load(key))
            job = job or self._new_job(plan, cast(str, plan.key), None)
            done = job.starts()
            while staged:
                chunk = staged.pop(0)  # popped first: never discard a created batch's file
                if chunk.start in done:
                    self.endpoint.discard(chunk.ref)
                else:
                    self._create(plan, job, chunk)
        except BaseException:
            for chunk in staged:
                self.endpoint.discard(chunk.ref)
            raise
        job.complete = True
        self._jobs.save(job)
        return job

    def _stage(
        self,
        plan: _Plan,
        job: BatchJob | None,
        runs: _Runs[CallbackManagerForLLMRun],
        staged: list[_Staged],
    ) -> Any:
        build = job is None or not job.complete
        done = job.starts() if job is not None and plan.key is not None else set()
        digest = hashlib.sha256()
        lines = _ChunkLines(self.max_requests_per_batch, self.max_bytes_per_batch)
        serialized = self._serialized()
        manager: CallbackManager | None = None
        for index, value in enumerate(plan.inputs):
            messages = to_messages(value, index)
            if manager is None or len(plan.configs) > 1:
                config = plan.config(index)
                manager = CallbackManager.configure(**self._manager_settings(plan, config))
            if manager.handlers:
                (run,) = manager.on_chat_model_start(
                    serialized, [messages], **self._start_arguments(plan, index)
                )
                runs.open(index, run)
            if not build:
                continue
            line = self._line(index, messages)
            digest.update(line)
            if not lines.fits(line):
                self._stage_chunk(lines.take(index), done, staged)
            lines.add(line)
        if lines.lines:
            self._stage_chunk(lines.take(len(plan.inputs)), done, staged)
        return digest

    def _stage_chunk(
        self, chunk: tuple[int, int, list[bytes]], done: set[int], staged: list[_Staged]
    ) -> None:
        start, end, lines = chunk
        if start not in done:
            staged.append(_Staged(start, end, self.endpoint.stage(lines)))

    def _create(self, plan: _Plan, job: BatchJob, chunk: _Staged) -> None:
        """Adopt the batch an interrupted attempt created, else create it; save either."""
        attempt = job.attempts.get(chunk.start)
        if attempt is not None:
            found = self.endpoint.find(self._label(job, chunk, attempt))
            if found is not None:
                self.endpoint.discard(chunk.ref)
                self._created(job, chunk, found, "adopted")
                self._jobs.save(job)
                return
            self._not_found(job, chunk)
        attempt = job.attempts[chunk.start] = uuid4().hex
        self._jobs.save(job)  # before paying: a restart can recognize this attempt
        requests = None if chunk.ref else self._lines(plan, chunk.start, chunk.end)
        created = self.endpoint.create(chunk.ref, requests, label=self._label(job, chunk, attempt))
        self._created(job, chunk, created, "created")
        self._jobs.save(job)

    def _collect(self, job: BatchJob, runs: _Runs[CallbackManagerForLLMRun]) -> list[Any]:
        """Poll until every chunk ends; read each ended chunk's answers as they decode."""
        results: list[Any] = [_PENDING] * job.count
        pending = list(job.chunks)
        interval, started = self.poll_interval_seconds, time.monotonic()
        while True:
            running = []
            for chunk in pending:
                status = self.endpoint.poll(chunk.ref)
                if not status.ended:
                    running.append(chunk)
                    continue
                found = self.endpoint.results(chunk.ref, status)
                for index, event, output in self._read_chunk(chunk, status, found):
                    run = runs.close(index)
                    if run is not None and isinstance(event, LLMResult):
                        run.on_llm_end(event)
                    elif run is not None and isinstance(event, BaseException):
                        run.on_llm_error(event)
                    results[index] = output
            pending = running
            if not pending:
                return results
            time.sleep(interval)
            interval = self._next_interval(interval, started)

    # -- I/O spine: async ----------------------------------------------------------------

    async def _asubmit(
        self, plan: _Plan, job: BatchJob | None, runs: _Runs[AsyncCallbackManagerForLLMRun]
    ) -> BatchJob:
        staged: list[_Staged] = []
        try:
            digest = await self._astage(plan, job, runs, staged)
            if plan.key is None:
                key = self._digest_key(digest)
                job = self._new_job(plan, key, await self._jobs.aload(key))
            job = job or self._new_job(plan, cast(str, plan.key), None)
            done = job.starts()
            while staged:
                chunk = staged.pop(0)  # popped first: never discard a created batch's file
                if chunk.start in done:
                    await self.endpoint.adiscard(chunk.ref)
                else:
                    await self._acreate(plan, job, chunk)
        except BaseException:
            for chunk in staged:
                await self.endpoint.adiscard(chunk.ref)
            raise
        job.complete = True
        await self._jobs.asave(job)
        return job

    async def _astage(
        self,
        plan: _Plan,
        job: BatchJob | None,
        runs: _Runs[AsyncCallbackManagerForLLMRun],
        staged: list[_Staged],
    ) -> Any:
        build = job is None or not job.complete
        done = job.starts() if job is not None and plan.key is not None else set()
        digest = hashlib.sha256()
        lines = _ChunkLines(self.max_requests_per_batch, self.max_bytes_per_batch)
        serialized = self._serialized()
        manager: AsyncCallbackManager | None = None
        for index, value in enumerate(plan.inputs):
            messages = to_messages(value, index)
            if manager is None or len(plan.configs) > 1:
                config = plan.config(index)
                manager = AsyncCallbackManager.configure(**self._manager_settings(plan, config))
            if manager.handlers:
                (run,) = await manager.on_chat_model_start(
                    serialized, [messages], **self._start_arguments(plan, index)
                )
                runs.open(index, run)
            if not build:
                continue
            line = self._line(index, messages)
            digest.update(line)
            if not lines.fits(line):
                await self._astage_chunk(lines.take(index), done, staged)
            lines.add(line)
        if lines.lines:
            await self._astage_chunk(lines.take(len(plan.inputs)), done, staged)
        return digest

    async def _astage_chunk(
        self, chunk: tuple[int, int, list[bytes]], done: set[int], staged: list[_Staged]
    ) -> None:
        start, end, lines = chunk
        if start not in done:
            staged.append(_Staged(start, end, await self.endpoint.astage(lines)))

    async def _acreate(self, plan: _Plan, job: BatchJob, chunk: _Staged) -> None:
        attempt = job.attempts.get(chunk.start)
        if attempt is not None:
            found = await self.endpoint.afind(self._label(job, chunk, attempt))
            if found is not None:
                await self.endpoint.adiscard(chunk.ref)
                self._created(job, chunk, found, "adopted")
                await self._jobs.asave(job)
                return
            self._not_found(job, chunk)
        attempt = job.attempts[chunk.start] = uuid4().hex
        await self._jobs.asave(job)  # before paying: a restart can recognize this attempt
        requests = None if chunk.ref else self._lines(plan, chunk.start, chunk.end)
        created = await self.endpoint.acreate(
            chunk.ref, requests, label=self._label(job, chunk, attempt)
        )
        self._created(job, chunk, created, "created")
        await self._jobs.asave(job)

    async def _acollect(
        self, job: BatchJob, runs: _Runs[AsyncCallbackManagerForLLMRun]
    ) -> list[Any]:
        results: list[Any] = [_PENDING] * job.count
        pending = list(job.chunks)
        interval, started = self.poll_interval_seconds, time.monotonic()
        while True:
            running = []
            for chunk in pending:
                status = await self.endpoint.apoll(chunk.ref)
                if not status.ended:
                    running.append(chunk)
                    continue
                found = await self.endpoint.aresults(chunk.ref, status)
                for index, event, output in self._read_chunk(chunk, status, found):
                    run = runs.close(index)
                    if run is not None and isinstance(event, LLMResult):
                        await run.on_llm_end(event)
                    elif run is not None and isinstance(event, BaseException):
                        await run.on_llm_error(event)
                    results[index] = output
            pending = running
            if not pending:
                return results
            await asyncio.sleep(interval)
            interval = self._next_interval(interval, started)
