"""A local OpenAI-compatible HTTP server on 127.0.0.1, for offline demos and tests.

It answers like OpenAI (usage counted with tiktoken, streaming, errors, batches) so a
demo or a test can run `ChatOpenAI` end to end with no network and no key: the
notebooks use it, and so does this package's test suite.
Components are tested against `ChatOpenAI(base_url=server.base_url, api_key="test")`
so requests go through the real openai SDK and its HTTP client: real payloads, real
server-sent events, real retries. `/v1/chat/completions` is served, and the files and
batch endpoints of OpenAI's Batch API and Anthropic's Message Batches (see
`langchain_tokenopt/testing/fake_batches.py`; controls on `server.batch`).

What a `FakeOpenAIServer` offers (the test suite's fixture `openai_server`, in
`tests/support/openai_server.py`, yields a started one per test):
- `.base_url`: "http://127.0.0.1:<port>/v1" for `ChatOpenAI(base_url=..., api_key="test")`.
- `.requests`: copy of the JSON bodies received on /v1/chat/completions, in order
  (failed ones included); `.request_count`, `.last_request`.
- `.enqueue(content="...", *, tool_calls=None, usage=None, finish_reason=None,
  delay_seconds=0.0)`: the next request gets this reply; `tool_calls` is a list of
  `{"name": str, "arguments": dict | str, "id": str | None}` (a `str` is sent verbatim,
  so malformed JSON can be tested); `usage` overrides the token numbers
  (`prompt_tokens`, `completion_tokens`, `total_tokens`, `cached_tokens`,
  `reasoning_tokens`).
- With nothing queued, the reply echoes the last user message ("echo: <text>").
- Default usage: prompt_tokens counted with tiktoken for the request's model (OpenAI's
  chat framing: 3 per message, 1 per name, 3 priming; tool schemas roughly),
  completion_tokens for the reply (content + tool call names and arguments + reasoning
  tokens), `prompt_tokens_details.cached_tokens` and
  `completion_tokens_details.reasoning_tokens` present (0 unless set, or unless
  `simulate_prompt_cache` is on: then cached_tokens is the prefix shared with an earlier
  request, in 128-token steps from 1024, as OpenAI's prompt caching reports it).
- `max_tokens` / `max_completion_tokens` in the request truncate a longer text reply
  and set `finish_reason="length"` (unless the enqueued reply names a finish_reason).
- `stream: true` answers as server-sent events: a role delta, content deltas (one per
  word), tool-call deltas (id and name first, then argument fragments), a final chunk
  with finish_reason, a usage chunk with empty choices only when
  `stream_options.include_usage` is true, then `data: [DONE]`.
- `.fail_next(status=500 | 429 | any 4xx/5xx, times=1, retry_after_seconds=0.0)`: the
  next request(s) get that HTTP error with an OpenAI-shaped error body and
  `retry-after` / `retry-after-ms` headers, so SDK retries are immediate.
- `.pause()` / `.resume()`: hold replies (requests are still recorded) until resumed;
  with `.wait_for_requests(n)` this lets concurrency tests line up in-flight calls
  without sleeping.
- `.reset()`: forget requests, queue, failures, pause and prompt-cache state.
- Not simulated: `n` > 1 (one choice), `stop`, `logprobs`, `seed`, the Responses API
  (any other path answers 404 with an OpenAI error body). Every response closes its
  connection (see `_Handler._common_headers`).

Outside pytest (benchmarks, notebooks, your own demos):

    with FakeOpenAIServer() as server:
        server.enqueue("hello")
        llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o")
        llm.invoke("hi").content  # "hello"
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import tiktoken

from langchain_tokenopt.testing.fake_batches import FakeBatches

logger = logging.getLogger(__name__)

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
SYSTEM_FINGERPRINT = "fp_7f3c9a1b2d"
_USAGE_KEYS = frozenset(
    {"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"}
)
_PROMPT_CACHE_MIN_TOKENS = 1024
_PROMPT_CACHE_STEP_TOKENS = 128
_ARGUMENT_FRAGMENT_CHARS = 8
_IMAGE_PART_TOKENS = 85  # a low-detail image; enough for a fake's usage numbers

_ERROR_BODIES: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    429: (
        "Rate limit reached for {model} in organization org-test on tokens per min (TPM): "
        "Limit 30000, Used 30000, Requested 100. Please try again in 0s.",
        "tokens",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@cache
def _encoding(model: str) -> tiktoken.Encoding:
    """tiktoken's encoding for `model`; o200k_base for models tiktoken does not know."""
    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return tiktoken.get_encoding("o200k_base")


def _new_id(prefix: str, length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class _ToolCall:
    id: str
    name: str
    arguments: str  # the JSON string, as the API sends it


@dataclass
class _Reply:
    content: str
    tool_calls: list[_ToolCall] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None
    delay_seconds: float = 0.0


@dataclass
class _Failure:
    status: int
    retry_after_seconds: float | None
    message: str | None


def _to_tool_calls(tool_calls: Sequence[Mapping[str, Any]] | None) -> list[_ToolCall]:
    result = []
    for call in tool_calls or ():
        if "name" not in call:
            raise ValueError(f"tool call {call!r} has no 'name'")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        call_id = call.get("id") or _new_id("call_", 24)
        result.append(_ToolCall(id=str(call_id), name=str(call["name"]), arguments=arguments))
    return result


def _text_of(content: Any) -> str:
    """The text of a message's `content`: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts)
    return ""


def _prompt_tokens(body: Mapping[str, Any], encoding: tiktoken.Encoding) -> list[int]:
    """The prompt as one token sequence in OpenAI's chat framing (for counts and caching).

    3 framing tokens per message, the encoded values of its fields, 1 more per `name`,
    3 priming tokens for the reply. Tool schemas are encoded as their JSON, which is
    close to, not exactly, how OpenAI frames them.
    """
    framing = [0, 0, 0]
    tokens: list[int] = []
    tools = body.get("tools")
    if tools:
        tokens += encoding.encode(json.dumps(tools, sort_keys=True))
    for message in body.get("messages", []):
        tokens += framing
        for key, value in message.items():
            if key == "content":
                tokens += encoding.encode(_text_of(value))
                if isinstance(value, list):
                    images = [
                        p for p in value if isinstance(p, dict) and p.get("type") == "image_url"
                    ]
                    tokens += [0] * (_IMAGE_PART_TOKENS * len(images))
            elif key == "tool_calls" and isinstance(value, list):
                for call in value:
                    function = call.get("function", {})
                    tokens += encoding.encode(str(function.get("name", "")))
                    tokens += encoding.encode(str(function.get("arguments", "")))
                    tokens += framing
            elif isinstance(value, str):
                tokens += encoding.encode(value)
                if key == "name":
                    tokens.append(0)
    return tokens + framing


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _split_words(text: str) -> list[str]:
    """Pieces of `text` (one per word, whitespace attached) that join back to it."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


class FakeOpenAIServer:
    """An OpenAI-compatible `/v1/chat/completions` on 127.0.0.1, in a background thread.

    Thread-safe: the test thread enqueues replies and reads `requests` while the server
    threads answer concurrent calls. Replies are consumed in arrival order.

    Example:
        with FakeOpenAIServer() as server:
            server.enqueue("Paris", usage={"cached_tokens": 10})
            llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o")
            assert llm.invoke("Capital of France?").content == "Paris"
            assert server.requests[0]["model"] == "gpt-4o"
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, simulate_prompt_cache: bool = False
    ) -> None:
        self._host = host
        self._port = port
        self.simulate_prompt_cache = simulate_prompt_cache
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._requests: list[dict[str, Any]] = []
        self._replies: deque[_Reply] = deque()
        self._failures: deque[_Failure] = deque()
        self._seen_prompts: list[list[int]] = []
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._closing = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.batch = FakeBatches(self)

    # lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind the port and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._closing.clear()
        self._httpd = _HTTPServer((self._host, self._port), _Handler, fake=self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("fake OpenAI server listening on %s", self.base_url)
        return self

    def close(self) -> None:
        """Stop serving and release held or delayed replies."""
        if self._httpd is None:
            return
        self._closing.set()
        self._unpaused.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not started; call start() or use `with`")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, for `ChatOpenAI(base_url=...)`."""
        return f"http://{self._host}:{self.port}/v1"

    # what the test reads ---------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received on /v1/chat/completions, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> dict[str, Any]:
        with self._lock:
            if not self._requests:
                raise LookupError("the fake OpenAI server has received no request yet")
            return self._requests[-1]

    @property
    def pending_replies(self) -> int:
        """How many enqueued replies no request has consumed yet."""
        with self._lock:
            return len(self._replies)

    def wait_for_requests(self, count: int, timeout_seconds: float = 5.0) -> bool:
        """Block until at least `count` requests arrived; False if `timeout_seconds` passed."""
        with self._received:
            return self._received.wait_for(lambda: len(self._requests) >= count, timeout_seconds)

    # what the test sets ----------------------------------------------------------

    def enqueue(
        self,
        content: str = "",
        *,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        usage: Mapping[str, int] | None = None,
        finish_reason: str | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        """Queue the reply for the next request (FIFO).

        `tool_calls`: `[{"name": ..., "arguments": dict | str, "id": optional}]`.
        `usage`: overrides any of prompt_tokens, completion_tokens, total_tokens,
        cached_tokens, reasoning_tokens; the others stay computed.
        `finish_reason`: default "tool_calls" when there are tool calls, else "stop".
        `delay_seconds`: wait before answering (interrupted by `close()`).
        """
        unknown = set(usage or {}) - _USAGE_KEYS
        if unknown:
            raise ValueError(f"unknown usage keys {sorted(unknown)}; use {sorted(_USAGE_KEYS)}")
        if delay_seconds < 0:
            raise ValueError("delay_seconds must be >= 0")
        reply = _Reply(
            content=content,
            tool_calls=_to_tool_calls(tool_calls),
            usage=dict(usage or {}),
            finish_reason=finish_reason,
            delay_seconds=delay_seconds,
        )
        with self._lock:
            self._replies.append(reply)

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        *,
        retry_after_seconds: float | None = 0.0,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` requests with HTTP `status` and an OpenAI error body.

        `retry_after_seconds` goes out as `retry-after` and `retry-after-ms` (None: no
        such headers, so the SDK backs off exponentially as with a real outage).
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error (400-599), got {status}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._failures.extend(
                _Failure(status, retry_after_seconds, message) for _ in range(times)
            )

    def pause(self) -> None:
        """Hold every reply (requests are still recorded) until `resume()`."""
        self._unpaused.clear()

    def resume(self) -> None:
        self._unpaused.set()

    def reset(self) -> None:
        """Forget requests, queued replies, failures and prompt-cache state; resume."""
        with self._lock:
            self._requests.clear()
            self._replies.clear()
            self._failures.clear()
            self._seen_prompts.clear()
        self.simulate_prompt_cache = False
        self._unpaused.set()
        self.batch.reset()

    # request handling (server threads) ----------------------------------------------

    def _accept(self, body: dict[str, Any]) -> tuple[_Failure | None, _Reply | None]:
        """Record the request and take what answers it: a failure or else a reply."""
        with self._received:
            self._requests.append(body)
            self._received.notify_all()
            if self._failures:
                return self._failures.popleft(), None
            return None, (self._replies.popleft() if self._replies else None)

    def _wait_until_released(self, delay_seconds: float) -> None:
        self._unpaused.wait()
        if delay_seconds > 0:
            self._closing.wait(delay_seconds)

    def _answer(self, body: dict[str, Any]) -> _Completion:
        """The completion for a batched request (takes the next enqueued reply, if any)."""
        with self._lock:
            reply = self._replies.popleft() if self._replies else None
        return self._completion(body, reply)

    def _anthropic_answer(self, params: dict[str, Any]) -> dict[str, Any]:
        """An Anthropic `message` for batched Messages API `params`."""
        system = params.get("system")
        messages = list(params.get("messages", []))
        if system:
            messages.insert(0, {"role": "system", "content": system})
        tools = params.get("tools")
        completion = self._answer(
            {"model": params.get("model"), "messages": messages, "tools": tools}
        )
        content: list[dict[str, Any]] = []
        if completion.content:
            content.append({"type": "text", "text": completion.content})
        for call in completion.tool_calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": "toolu_" + call.id.removeprefix("call_"),
                    "name": call.name,
                    "input": json.loads(call.arguments),
                }
            )
        stop = {"tool_calls": "tool_use", "length": "max_tokens"}.get(completion.finish_reason)
        return {
            "id": _new_id("msg_", 24),
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": content,
            "stop_reason": stop or "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": completion.usage["prompt_tokens"],
                "output_tokens": completion.usage["completion_tokens"],
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def _cached_tokens(self, prompt: list[int]) -> int:
        with self._lock:
            shared = max((_common_prefix_length(prompt, p) for p in self._seen_prompts), default=0)
            self._seen_prompts.append(prompt)
        if shared < _PROMPT_CACHE_MIN_TOKENS:
            return 0
        return shared - shared % _PROMPT_CACHE_STEP_TOKENS

    def _completion(self, body: dict[str, Any], reply: _Reply | None) -> _Completion:
        """Build the full answer (content, tool calls, finish reason, usage) for `body`."""
        model = str(body.get("model") or "gpt-4o")
        encoding = _encoding(model)
        if reply is None:
            reply = _Reply(content="echo: " + _last_user_text(body))
        content = reply.content
        finish_reason = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        content_tokens = encoding.encode(content)
        if isinstance(limit, int) and len(content_tokens) > limit and not reply.tool_calls:
            content = encoding.decode(content_tokens[:limit])
            content_tokens = content_tokens[:limit]
            finish_reason = reply.finish_reason or "length"

        prompt = _prompt_tokens(body, encoding)
        cached = self._cached_tokens(prompt) if self.simulate_prompt_cache else 0
        reasoning = reply.usage.get("reasoning_tokens", 0)
        completion = len(content_tokens) + reasoning
        for call in reply.tool_calls:
            completion += len(encoding.encode(call.name)) + len(encoding.encode(call.arguments))
        prompt_count = reply.usage.get("prompt_tokens", len(prompt))
        completion_count = reply.usage.get("completion_tokens", completion)
        usage = {
            "prompt_tokens": prompt_count,
            "completion_tokens": completion_count,
            "total_tokens": reply.usage.get("total_tokens", prompt_count + completion_count),
            "prompt_tokens_details": {
                "cached_tokens": reply.usage.get("cached_tokens", cached),
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        return _Completion(
            id=_new_id("chatcmpl-", 29),
            created=int(time.time()),
            model=model,
            content=content,
            tool_calls=reply.tool_calls,
            finish_reason=finish_reason,
            usage=usage,
            delay_seconds=reply.delay_seconds,
        )


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


@dataclass
class _Completion:
    id: str
    created: int
    model: str
    content: str
    tool_calls: list[_ToolCall]
    finish_reason: str
    usage: dict[str, Any]
    delay_seconds: float

    def _tool_calls_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in self.tool_calls
        ]

    def as_response(self) -> dict[str, Any]:
        """The `chat.completion` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content if (self.content or not self.tool_calls) else None,
            "refusal": None,
            "annotations": [],
        }
        if self.tool_calls:
            message["tool_calls"] = self._tool_calls_json()
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def as_chunks(self, include_usage: bool) -> Iterator[dict[str, Any]]:
        """The `chat.completion.chunk` objects of a streamed answer, in order."""

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            return data

        first_content = "" if (self.content or not self.tool_calls) else None
        yield chunk({"role": "assistant", "content": first_content, "refusal": None})
        for piece in _split_words(self.content):
            yield chunk({"content": piece})
        for index, call in enumerate(self.tool_calls):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for start in range(0, len(call.arguments), _ARGUMENT_FRAGMENT_CHARS):
                fragment = call.arguments[start : start + _ARGUMENT_FRAGMENT_CHARS]
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        yield chunk({}, self.finish_reason)
        if include_usage:
            last = chunk({})
            last["choices"] = []
            last["usage"] = self.usage
            yield last


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        fake: FakeOpenAIServer,
    ) -> None:
        self.fake = fake
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)

    # routing ----------------------------------------------------------------------

    def _batch_route(self, raw: bytes) -> bool:
        """Serve a files / batches request; False if the path is not one of those."""
        answer = self.server.fake.batch.handle(
            self.command, self.path, raw, self.headers.get("Content-Type", "")
        )
        if answer is None:
            return False
        status, payload = answer
        if isinstance(payload, bytes):
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self._common_headers()
            self.end_headers()
            self.wfile.write(payload)
        else:
            self._send_json(status, payload)
        return True

    def do_POST(self) -> None:
        raw = self._read_body()
        if self._batch_route(raw):
            return
        if self.path.split("?", 1)[0].rstrip("/") != CHAT_COMPLETIONS_PATH:
            self._not_found()
            return
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError as error:
            self._send_error(400, f"We could not parse the JSON body of your request. ({error})")
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send_error(400, "'messages' is a required property", param="messages")
            return
        fake = self.server.fake
        failure, reply = fake._accept(body)
        fake._wait_until_released(reply.delay_seconds if reply else 0.0)
        if failure is not None:
            self._send_failure(failure, str(body.get("model", "gpt-4o")))
            return
        completion = fake._completion(body, reply)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._send_stream(completion.as_chunks(include_usage))
        else:
            self._send_json(200, completion.as_response())

    def do_GET(self) -> None:
        if not self._batch_route(b""):
            self._not_found()

    def do_DELETE(self) -> None:
        if not self._batch_route(self._read_body()):
            self._not_found()

    def do_PUT(self) -> None:
        self._read_body()
        self._not_found()

    # responses ----------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _not_found(self) -> None:
        self._send_error(404, f"Invalid URL ({self.command} {self.path})")

    def _send_failure(self, failure: _Failure, model: str) -> None:
        message, kind, code = _ERROR_BODIES.get(
            failure.status, ("Request failed.", "api_error", None)
        )
        headers = {}
        if failure.retry_after_seconds is not None:
            headers["retry-after"] = str(int(failure.retry_after_seconds))
            headers["retry-after-ms"] = str(max(1, int(failure.retry_after_seconds * 1000)))
        self._send_error(
            failure.status,
            failure.message or message.format(model=model),
            kind=kind,
            code=code,
            headers=headers,
        )

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        error = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        self._send_json(status, error, headers)

    def _common_headers(self) -> None:
        # One connection per request: the SDK caches its async HTTP client per base URL,
        # and a pooled connection opened under one event loop breaks the next loop
        # (pytest-asyncio runs each test in its own) with "Event loop is closed".
        self.send_header("Connection", "close")
        self.close_connection = True
        self.send_header("x-request-id", _new_id("req_", 32))
        self.send_header("openai-version", "2020-10-01")
        self.send_header("openai-processing-ms", "1")

    def _send_json(
        self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, chunks: Iterator[Mapping[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self._common_headers()
        self.end_headers()
        for payload in chunks:
            self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
