"""The files and batch endpoints of `FakeOpenAIServer`: OpenAI Batch and Anthropic Message Batches.

Served on the same loopback port as /v1/chat/completions, so `BatchAPIRunnable` runs
against them through the real `openai` / `anthropic` SDKs:

- OpenAI: `POST /v1/files` (multipart, purpose "batch"), `GET /v1/files/{id}`,
  `GET /v1/files/{id}/content`, `DELETE /v1/files/{id}`, `POST /v1/batches`,
  `GET /v1/batches` (list, newest first, `limit` and `after` as OpenAI pages it),
  `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`.
- Anthropic: `POST /v1/messages/batches` (`{"requests": [{custom_id, params}]}`),
  `GET /v1/messages/batches/{id}`, `GET /v1/messages/batches/{id}/results` (JSONL),
  `POST /v1/messages/batches/{id}/cancel`.

Status moves one step per retrieve, so tests step it without sleeping: OpenAI
validating -> in_progress -> finalizing -> completed (a batch completes on its third
poll); Anthropic in_progress -> in_progress -> ended. The requests are answered when the
batch ends, each as `/v1/chat/completions` would answer it (consuming `enqueue`d
replies in order; the echo reply otherwise).

Controls, on `server.batch`:
- `hold()` / `release()`: batches stay in progress until released.
- `fail_items({"item-3": (400, "message")})`: those custom ids fail (error file /
  "errored" result) in every batch until `reset()`.
- `expire_next(completed_items=k)`: the next batch created expires: its first k
  requests are answered, the others expire (code batch_expired / result "expired").
- `fail_next(message)`: the next OpenAI batch created fails validation on its first
  poll (status "failed", `errors.data[0].message`, no output or error file).
- cancel (the endpoint): cancelling / canceling, then cancelled / ended on the next
  poll, every unanswered request cancelled.
- `batches` (copies of the batch objects, created order), `polls`, `requests` (every
  batched request body, in answer order), `wait_for_batches(n)`, `wait_for_polls(n)`, `reset()`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any, Protocol, cast


class _Server(Protocol):
    """What the batch endpoints use of their `FakeOpenAIServer` (no import: no cycle)."""

    @property
    def base_url(self) -> str: ...

    def _answer(self, body: dict[str, Any]) -> Any: ...

    def _anthropic_answer(self, params: dict[str, Any]) -> dict[str, Any]: ...


_OPENAI_STEPS = ("validating", "in_progress", "finalizing", "completed")
_EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
_CANCELLED_MESSAGE = "This request was cancelled before it was executed."


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


@dataclass
class _Batch:
    id: str
    kind: str  # "openai" or "anthropic"
    requests: list[dict[str, Any]]  # {"custom_id", "body"}
    input_file_id: str | None
    metadata: dict[str, Any]
    created_at: int
    step: int = 0
    status: str = "validating"
    expire_after: int | None = None  # answer this many requests, expire the others
    failure: str | None = None  # fail validation with this message on the first poll
    cancelling: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # Anthropic result lines
    counts: dict[str, int] = field(default_factory=dict)


class FakeBatches:
    """Files and batches of one `FakeOpenAIServer` (see the module docstring)."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._lock = threading.Condition()
        self._files: dict[str, tuple[str, bytes]] = {}
        self._batches: dict[str, _Batch] = {}
        self._failing: dict[str, tuple[int, str]] = {}
        self._expire_next: int | None = None
        self._fail_next: str | None = None
        self._held = False
        self.polls = 0
        self.requests: list[dict[str, Any]] = []

    # -- controls ----------------------------------------------------------------------

    def hold(self) -> None:
        with self._lock:
            self._held = True

    def release(self) -> None:
        with self._lock:
            self._held = False

    def fail_items(self, failures: dict[str, tuple[int, str]]) -> None:
        with self._lock:
            self._failing.update(failures)

    def expire_next(self, completed_items: int = 0) -> None:
        with self._lock:
            self._expire_next = completed_items

    def fail_next(self, message: str) -> None:
        with self._lock:
            self._fail_next = message

    @property
    def batches(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._object(b) for b in self._batches.values()]

    @property
    def file_count(self) -> int:
        with self._lock:
            return len(self._files)

    def wait_for_batches(self, count: int, timeout_seconds: float = 5.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self._batches) >= count, timeout_seconds)

    def wait_for_polls(self, count: int, timeout_seconds: float = 5.0) -> bool:
        """Block until batches were retrieved `count` times (the client saved its state)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.polls >= count, timeout_seconds)

    def reset(self) -> None:
        with self._lock:
            self._files.clear()
            self._batches.clear()
            self._failing.clear()
            self._expire_next = None
            self._fail_next = None
            self._held = False
            self.polls = 0
            self.requests.clear()

    # -- HTTP (called by the server's handler) ----------------------------------------------

    def handle(
        self, method: str, path: str, raw: bytes, content_type: str
    ) -> tuple[int, Any] | None:
        """(status, JSON payload or bytes) for a files / batches request; None if not ours."""
        path, _, query = path.partition("?")
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            return None
        parts = parts[1:]
        if parts[:1] == ["files"]:
            return self._files_route(method, parts[1:], raw, content_type)
        if parts[:1] == ["batches"]:
            return self._openai_route(method, parts[1:], raw, urllib.parse.parse_qs(query))
        if parts[:2] == ["messages", "batches"]:
            return self._anthropic_route(method, parts[2:], raw)
        return None

    def _files_route(
        self, method: str, rest: list[str], raw: bytes, content_type: str
    ) -> tuple[int, Any]:
        with self._lock:
            if method == "POST" and not rest:
                purpose, name, data = _multipart(raw, content_type)
                file_id = _new_id("file-")
                self._files[file_id] = (name, data)
                return 200, _file_object(file_id, name, data, purpose)
            if not rest or rest[0] not in self._files:
                return 404, _openai_error("No such File object")
            name, data = self._files[rest[0]]
            if method == "GET" and rest[1:] == ["content"]:
                return 200, data
            if method == "GET" and len(rest) == 1:
                return 200, _file_object(rest[0], name, data, "batch")
            if method == "DELETE" and len(rest) == 1:
                del self._files[rest[0]]
                return 200, {"id": rest[0], "object": "file", "deleted": True}
        return 404, _openai_error("Invalid URL")

    def _openai_route(
        self, method: str, rest: list[str], raw: bytes, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        with self._lock:
            if method == "POST" and not rest:
                body = json.loads(raw or b"{}")
                file = self._files.get(body.get("input_file_id", ""))
                if file is None:
                    return 400, _openai_error("input_file_id is not an uploaded file")
                requests = [
                    {"custom_id": line["custom_id"], "body": line["body"]}
                    for line in map(json.loads, file[1].splitlines())
                    if line
                ]
                batch = self._add(
                    _Batch(
                        id=_new_id("batch_"),
                        kind="openai",
                        requests=requests,
                        input_file_id=body["input_file_id"],
                        metadata=dict(body.get("metadata") or {}),
                        created_at=int(time.time()),
                    )
                )
                return 200, self._object(batch)
            if method == "GET" and not rest:
                return 200, self._list(query)
            found = self._batches.get(rest[0]) if rest else None
            if found is None or found.kind != "openai":
                return 404, _openai_error("No such Batch object")
            if method == "GET" and len(rest) == 1:
                self._advance(found)
                return 200, self._object(found)
            if method == "POST" and rest[1:] == ["cancel"]:
                if found.status in ("validating", "in_progress", "finalizing"):
                    found.cancelling = True
                    found.status = "cancelling"
                return 200, self._object(found)
        return 404, _openai_error("Invalid URL")

    def _anthropic_route(self, method: str, rest: list[str], raw: bytes) -> tuple[int, Any]:
        with self._lock:
            if method == "POST" and not rest:
                body = json.loads(raw or b"{}")
                requests = [
                    {"custom_id": r["custom_id"], "body": r["params"]} for r in body["requests"]
                ]
                batch = self._add(
                    _Batch(
                        id=_new_id("msgbatch_"),
                        kind="anthropic",
                        requests=requests,
                        input_file_id=None,
                        metadata={},
                        created_at=int(time.time()),
                        status="in_progress",
                    )
                )
                return 200, self._object(batch)
            found = self._batches.get(rest[0]) if rest else None
            if found is None or found.kind != "anthropic":
                return 404, _anthropic_error("not_found_error", "batch not found")
            if method == "GET" and len(rest) == 1:
                self._advance(found)
                return 200, self._object(found)
            if method == "GET" and rest[1:] == ["results"]:
                if found.status != "ended":
                    return 400, _anthropic_error("invalid_request_error", "batch still processing")
                return 200, b"".join(json.dumps(r).encode() + b"\n" for r in found.results)
            if method == "POST" and rest[1:] == ["cancel"]:
                if found.status == "in_progress":
                    found.cancelling = True
                    found.status = "canceling"
                return 200, self._object(found)
        return 404, _anthropic_error("not_found_error", "not found")

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """One page of OpenAI batches, newest first (`limit`, default 20; `after` an id)."""
        newest = [b for b in reversed(self._batches.values()) if b.kind == "openai"]
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [b.id for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        limit = int(query.get("limit", ["20"])[0])
        page = [self._object(b) for b in newest[:limit]]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(newest) > limit,
        }

    # -- batch life ----------------------------------------------------------------------

    def _add(self, batch: _Batch) -> _Batch:
        if self._expire_next is not None:
            batch.expire_after, self._expire_next = self._expire_next, None
        if self._fail_next is not None and batch.kind == "openai":
            batch.failure, self._fail_next = self._fail_next, None
        self._batches[batch.id] = batch
        self._lock.notify_all()
        return batch

    def _advance(self, batch: _Batch) -> None:
        self.polls += 1
        self._lock.notify_all()
        if batch.status in ("completed", "expired", "cancelled", "failed", "ended"):
            return
        if batch.cancelling:
            self._finish(batch, answered=0, unanswered="cancelled")
            return
        if batch.failure is not None:
            batch.status = "failed"
            return
        if self._held and batch.step >= 1:
            batch.status = "in_progress"
            return
        batch.step += 1
        last = 3 if batch.kind == "openai" else 2
        if batch.step < last:
            batch.status = _OPENAI_STEPS[batch.step] if batch.kind == "openai" else "in_progress"
        elif batch.expire_after is not None:
            self._finish(batch, answered=batch.expire_after, unanswered="expired")
        else:
            self._finish(batch, answered=len(batch.requests), unanswered="expired")

    def _finish(self, batch: _Batch, *, answered: int, unanswered: str) -> None:
        """Answer the first `answered` requests, mark the others `unanswered`; end."""
        outputs: list[bytes] = []
        errors: list[bytes] = []
        counts = {"succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for position, request in enumerate(batch.requests):
            cid = request["custom_id"]
            if position >= answered:
                kind = "canceled" if unanswered == "cancelled" else "expired"
                counts[kind] += 1
                code = "batch_cancelled" if unanswered == "cancelled" else "batch_expired"
                message = _CANCELLED_MESSAGE if unanswered == "cancelled" else _EXPIRED_MESSAGE
                errors.append(
                    _line(
                        {
                            "id": _new_id("batch_req_"),
                            "custom_id": cid,
                            "response": None,
                            "error": {"code": code, "message": message},
                        }
                    )
                )
                batch.results.append({"custom_id": cid, "result": {"type": kind}})
                continue
            self.requests.append(request["body"])
            failure = self._failing.get(cid)
            if failure is not None:
                status, message = failure
                counts["errored"] += 1
                errors.append(
                    _line(
                        {
                            "id": _new_id("batch_req_"),
                            "custom_id": cid,
                            "response": {
                                "status_code": status,
                                "request_id": _new_id("req_"),
                                "body": _openai_error(message),
                            },
                            "error": None,
                        }
                    )
                )
                batch.results.append(
                    {
                        "custom_id": cid,
                        "result": {
                            "type": "errored",
                            "error": {
                                "type": "error",
                                "error": {"type": "invalid_request_error", "message": message},
                            },
                        },
                    }
                )
                continue
            counts["succeeded"] += 1
            body = request["body"]
            if batch.kind == "openai":
                completion = self._server._answer(body)
                outputs.append(
                    _line(
                        {
                            "id": _new_id("batch_req_"),
                            "custom_id": cid,
                            "response": {
                                "status_code": 200,
                                "request_id": _new_id("req_"),
                                "body": completion.as_response(),
                            },
                            "error": None,
                        }
                    )
                )
            else:
                batch.results.append(
                    {
                        "custom_id": cid,
                        "result": {
                            "type": "succeeded",
                            "message": self._server._anthropic_answer(body),
                        },
                    }
                )
        if batch.kind == "openai":
            if outputs:
                batch.output_file_id = _new_id("file-")
                self._files[batch.output_file_id] = ("batch_output.jsonl", b"".join(outputs))
            if errors:
                batch.error_file_id = _new_id("file-")
                self._files[batch.error_file_id] = ("batch_errors.jsonl", b"".join(errors))
            if answered >= len(batch.requests):
                batch.status = "completed"
            else:
                batch.status = "cancelled" if unanswered == "cancelled" else "expired"
        else:
            batch.status = "ended"
        batch.counts = counts

    def _object(self, batch: _Batch) -> dict[str, Any]:
        counts = batch.counts
        if batch.kind == "anthropic":
            base = self._server.base_url.removesuffix("/v1")
            ended = batch.status == "ended"
            return {
                "id": batch.id,
                "type": "message_batch",
                "processing_status": batch.status,
                "request_counts": {
                    "processing": 0 if ended else len(batch.requests),
                    "succeeded": counts.get("succeeded", 0),
                    "errored": counts.get("errored", 0),
                    "canceled": counts.get("canceled", 0),
                    "expired": counts.get("expired", 0),
                },
                "created_at": _iso(batch.created_at),
                "expires_at": _iso(batch.created_at + 86400),
                "ended_at": _iso(int(time.time())) if ended else None,
                "cancel_initiated_at": _iso(int(time.time())) if batch.cancelling else None,
                "archived_at": None,
                "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if ended else None,
            }
        done = counts.get("succeeded", 0)
        failed = counts.get("errored", 0) + counts.get("canceled", 0) + counts.get("expired", 0)
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None
            if batch.failure is None
            else {
                "object": "list",
                "data": [
                    {"code": "invalid_request", "message": batch.failure, "param": None, "line": 1}
                ],
            },
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "expires_at": batch.created_at + 86400,
            "request_counts": {"total": len(batch.requests), "completed": done, "failed": failed},
            "metadata": batch.metadata,
        }


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def _iso(timestamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _openai_error(message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _file_object(file_id: str, name: str, data: bytes, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": int(time.time()),
        "filename": name,
        "purpose": purpose,
        "status": "processed",
    }


def _multipart(raw: bytes, content_type: str) -> tuple[str, str, bytes]:
    """(purpose, file name, file bytes) of a multipart/form-data upload."""
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    purpose, name, data = "batch", "upload.jsonl", b""
    for part in message.iter_parts():
        field_name = part.get_param("name", header="content-disposition")
        payload = cast(bytes, part.get_payload(decode=True) or b"")
        if field_name == "purpose":
            purpose = payload.decode()
        elif field_name == "file":
            name = part.get_filename() or name
            data = payload
    return purpose, name, data
