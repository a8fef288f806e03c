"""OpenAI's Batch API for a `ChatOpenAI`: a JSONL file of chat completions, half price.

Each request body is the one `ChatOpenAI` would send (its own payload builder), the
client is the model's own `openai` SDK client (same base URL, key, headers, retries),
and each answer is read back by the model's own response parser, so a batched answer
is the `AIMessage` an interactive call would have returned.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers.openai_tools import parse_tool_call
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel

from langchain_tokenopt.batch.endpoint import (
    BatchLabel,
    BatchRef,
    BatchStatus,
    ItemFailure,
    Outcome,
)
from langchain_tokenopt.core.extras import require
from langchain_tokenopt.errors import ArgumentTypeError

logger = logging.getLogger(__name__)

CHAT_COMPLETIONS_URL = "/v1/chat/completions"
#: OpenAI's limits of one batch: 50,000 requests, a 200 MB input file.
MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 200 * 1024 * 1024
_RUNNING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
_ITEM_REASONS = {"batch_expired": "expired", "batch_cancelled": "cancelled"}
#: How many of the most recent batches `find` looks through (one page of the list).
RECENT_BATCHES = 100


def _is_schema_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON `response_format` the SDK's `parse()` sends for a Pydantic class."""
    try:  # internal to the openai SDK: listed in docs/internals.md
        from openai.lib._parsing._completions import type_to_response_format_param

        return dict(type_to_response_format_param(schema))  # type: ignore[arg-type]
    except (ImportError, TypeError):
        from openai.lib._pydantic import to_strict_json_schema

        return {
            "type": "json_schema",
            "json_schema": {
                "name": schema.__name__,
                "schema": to_strict_json_schema(schema),
                "strict": True,
            },
        }


def _fallback_payload(
    model: BaseChatModel, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    body: dict[str, Any] = {"model": name, **getattr(model, "model_kwargs", {})}
    for field in ("temperature", "max_tokens", "top_p", "seed"):
        value = getattr(model, field, None)
        if value is not None:
            body["max_completion_tokens" if field == "max_tokens" else field] = value
    body.update(kwargs)
    body["messages"] = convert_to_openai_messages(list(messages))
    return body


def _fallback_chat_result(response: Mapping[str, Any]) -> ChatResult:
    """A minimal reading of a `chat.completion` (content, tool calls, usage)."""
    choice = response["choices"][0]
    message = choice.get("message") or {}
    tool_calls = [parse_tool_call(c, return_id=True) for c in message.get("tool_calls") or ()]
    usage = response.get("usage") or {}
    usage_metadata = cast(
        UsageMetadata,
        {
            "input_tokens": int(usage.get("prompt_tokens", 0)),
            "output_tokens": int(usage.get("completion_tokens", 0)),
            "total_tokens": int(usage.get("total_tokens", 0)),
        },
    )
    ai = AIMessage(
        content=message.get("content") or "",
        tool_calls=[c for c in tool_calls if c is not None],
        usage_metadata=usage_metadata,
        response_metadata={
            "model_name": response.get("model"),
            "finish_reason": choice.get("finish_reason"),
            "model_provider": "openai",
        },
        id=response.get("id"),
    )
    return ChatResult(
        generations=[ChatGeneration(message=ai)], llm_output={"model_name": response.get("model")}
    )


def _metadata(label: BatchLabel) -> dict[str, str]:
    """The batch's metadata (OpenAI: 16 keys, values of at most 512 characters)."""
    return {
        "tokenopt_key": label.key[:512],
        "tokenopt_chunk": label.chunk,
        "tokenopt_attempt": label.attempt,
    }


def _failure(record: Mapping[str, Any]) -> ItemFailure:
    error = record.get("error")
    if isinstance(error, Mapping):
        code = error.get("code")
        reason = _ITEM_REASONS.get(str(code), "failed")
        return ItemFailure(reason, str(error.get("message") or code), None, code)
    response = record.get("response") or {}
    body_error = (response.get("body") or {}).get("error") or {}
    return ItemFailure(
        "failed",
        str(body_error.get("message") or "the provider returned no answer"),
        response.get("status_code"),
        body_error.get("code"),
    )


class OpenAIBatchEndpoint:
    """`BatchEndpoint` for `ChatOpenAI` (and OpenAI-compatible servers with the Batch API).

    Example:
        >>> from langchain_openai import ChatOpenAI
        >>> llm = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test")
        >>> endpoint = OpenAIBatchEndpoint(llm, {})
        >>> endpoint.request_body([("human", "hi")])["messages"]
        [{'content': 'hi', 'role': 'user'}]
    """

    provider = "openai"
    max_requests_per_batch = MAX_REQUESTS_PER_BATCH
    max_bytes_per_batch = MAX_BYTES_PER_BATCH

    def __init__(
        self, model: BaseChatModel, kwargs: Mapping[str, Any], *, completion_window: str = "24h"
    ) -> None:
        require("openai", "openai")
        self.model = model
        self.kwargs = dict(kwargs)
        self.completion_window = completion_window
        schema = self.kwargs.get("response_format")
        self._schema: type[BaseModel] | None = schema if _is_schema_class(schema) else None
        # The model's own SDK clients: same base URL, key, organization, headers, retries.
        self._client: Any = getattr(model, "root_client", None)
        self._aclient: Any = getattr(model, "root_async_client", None)
        if self._client is None or self._aclient is None:
            raise ArgumentTypeError(
                f"{type(model).__name__} has no OpenAI client (root_client); the OpenAI "
                "batch endpoint needs ChatOpenAI or a subclass"
            )

    # -- pure --------------------------------------------------------------------------

    def request_body(self, messages: Sequence[BaseMessage] | Any) -> dict[str, Any]:
        """The body `ChatOpenAI` would send for `messages` (stream flags removed)."""
        build = getattr(self.model, "_get_request_payload", None)  # see docs/internals.md
        body = (
            build(messages, stop=None, **self.kwargs)
            if build is not None
            else _fallback_payload(self.model, messages, self.kwargs)
        )
        body.pop("stream", None)
        body.pop("stream_options", None)
        if "messages" not in body:
            raise ArgumentTypeError(
                "BatchAPIRunnable batches Chat Completions requests; create the model "
                "with ChatOpenAI(..., use_responses_api=False)"
            )
        if _is_schema_class(body.get("response_format")):
            body["response_format"] = _response_format(body["response_format"])
        return dict(body)

    def encode(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        line = {"custom_id": custom_id, "method": "POST", "url": CHAT_COMPLETIONS_URL, "body": body}
        return json.dumps(line, separators=(",", ":")).encode() + b"\n"

    def chat_result(self, response: Mapping[str, Any]) -> ChatResult:
        """The model's own reading of a `chat.completion` body (see docs/internals.md)."""
        read = getattr(self.model, "_create_chat_result", None)
        result = read(dict(response)) if read is not None else _fallback_chat_result(response)
        if self._schema is not None:
            # ChatOpenAI's parse() sets "parsed"; with_structured_output's parser reads it.
            message = result.generations[0].message
            if (
                isinstance(message.content, str)
                and message.content
                and not getattr(message, "tool_calls", None)
            ):
                message.additional_kwargs["parsed"] = self._schema.model_validate_json(
                    message.content
                )
        return result

    def _outcome(self, record: Mapping[str, Any]) -> Outcome:
        response = record.get("response") or {}
        if response.get("status_code") == 200 and not record.get("error"):
            try:
                return self.chat_result(response["body"])
            except (KeyError, ValueError, TypeError) as exc:
                return ItemFailure("failed", f"unreadable answer: {exc}")
        return _failure(record)

    def _read(self, contents: Iterable[bytes]) -> Iterator[tuple[str, Outcome]]:
        """Decode the output and error files line by line (one answer alive at a time)."""
        for content in contents:
            for line in io.BytesIO(content):
                if line.strip():
                    record = json.loads(line)
                    yield str(record.get("custom_id")), self._outcome(record)

    @staticmethod
    def _status(batch: Any) -> BatchStatus:
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        message = "; ".join(str(e.message) for e in errors if getattr(e, "message", None))
        return BatchStatus(
            ended=batch.status not in _RUNNING,
            status=str(batch.status),
            detail={
                "output_file_id": batch.output_file_id,
                "error_file_id": batch.error_file_id,
                "message": message or f"the batch ended {batch.status}",
            },
        )

    def _create_args(self, staged: BatchRef, label: BatchLabel) -> dict[str, Any]:
        return {
            "input_file_id": staged["input_file_id"],
            "endpoint": CHAT_COMPLETIONS_URL,
            "completion_window": self.completion_window,
            "metadata": _metadata(label),
        }

    @staticmethod
    def _found(page: Any, label: BatchLabel) -> BatchRef | None:
        wanted = _metadata(label)
        for batch in getattr(page, "data", None) or ():
            metadata = getattr(batch, "metadata", None) or {}
            if all(metadata.get(k) == v for k, v in wanted.items()):
                return {"batch_id": str(batch.id), "input_file_id": str(batch.input_file_id)}
        return None

    # -- sync I/O ----------------------------------------------------------------------

    def stage(self, requests: Sequence[bytes]) -> BatchRef:
        file = self._client.files.create(
            file=("batch.jsonl", b"".join(requests), "application/jsonl"), purpose="batch"
        )
        return {"input_file_id": str(file.id)}

    def create(
        self, staged: BatchRef, requests: Sequence[bytes] | None, *, label: BatchLabel
    ) -> BatchRef:
        batch = self._client.batches.create(**self._create_args(staged, label))
        return {"batch_id": str(batch.id), "input_file_id": staged["input_file_id"]}

    def find(self, label: BatchLabel) -> BatchRef | None:
        return self._found(self._client.batches.list(limit=RECENT_BATCHES), label)

    def discard(self, staged: BatchRef) -> None:
        try:
            self._client.files.delete(staged["input_file_id"])
        except Exception:  # best effort: an unused file costs nothing
            logger.debug("could not delete file %s", staged, exc_info=True)

    def poll(self, ref: BatchRef) -> BatchStatus:
        return self._status(self._client.batches.retrieve(ref["batch_id"]))

    def results(self, ref: BatchRef, status: BatchStatus) -> Iterator[tuple[str, Outcome]]:
        return self._read(
            self._client.files.content(file_id).content
            for file_id in (status.detail.get("output_file_id"), status.detail.get("error_file_id"))
            if file_id
        )

    def cancel(self, ref: BatchRef) -> None:
        self._client.batches.cancel(ref["batch_id"])

    # -- async I/O ---------------------------------------------------------------------

    async def astage(self, requests: Sequence[bytes]) -> BatchRef:
        file = await self._aclient.files.create(
            file=("batch.jsonl", b"".join(requests), "application/jsonl"), purpose="batch"
        )
        return {"input_file_id": str(file.id)}

    async def acreate(
        self, staged: BatchRef, requests: Sequence[bytes] | None, *, label: BatchLabel
    ) -> BatchRef:
        batch = await self._aclient.batches.create(**self._create_args(staged, label))
        return {"batch_id": str(batch.id), "input_file_id": staged["input_file_id"]}

    async def afind(self, label: BatchLabel) -> BatchRef | None:
        return self._found(await self._aclient.batches.list(limit=RECENT_BATCHES), label)

    async def adiscard(self, staged: BatchRef) -> None:
        try:
            await self._aclient.files.delete(staged["input_file_id"])
        except Exception:  # best effort, as in discard()
            logger.debug("could not delete file %s", staged, exc_info=True)

    async def apoll(self, ref: BatchRef) -> BatchStatus:
        return self._status(await self._aclient.batches.retrieve(ref["batch_id"]))

    async def aresults(self, ref: BatchRef, status: BatchStatus) -> Iterator[tuple[str, Outcome]]:
        contents = [
            (await self._aclient.files.content(file_id)).content
            for file_id in (status.detail.get("output_file_id"), status.detail.get("error_file_id"))
            if file_id
        ]
        return self._read(contents)

    async def acancel(self, ref: BatchRef) -> None:
        await self._aclient.batches.cancel(ref["batch_id"])
