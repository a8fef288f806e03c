"""Read what an app sent, in the shapes users have, as a stream of `Request`s.

Accepted (detected from the first record, or named with `format=`):

* ``requests``: chat-completions request bodies (``model``, ``messages``, ``tools``,
  optionally ``response`` / ``usage`` / ``metadata.conversation_id``), as JSON Lines or
  a JSON array; ``{"request": {...}, "response": {...}}`` pairs too.
* ``conversation``: one conversation (a JSON list of OpenAI or LangChain messages, an
  object with ``messages`` and ``tools``, or JSON Lines with one message per line);
  each assistant message is one call, sent everything before it.
* ``langsmith``: a LangSmith runs export (JSON array or JSON Lines of runs); the
  ``llm`` runs are the calls, grouped by thread id or trace.

Paths may be files, folders (their ``.json``/``.jsonl``/``.ndjson`` files) or globs;
``-`` is stdin. JSON Lines are streamed line by line; a JSON document is read whole.
A bad record raises `InvalidRecordError` naming file, line and field, or, with
`skip_invalid`, is counted in `ReadStats` and left out.
"""

from __future__ import annotations

import glob
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, Literal, get_args

from langchain_core.messages import (
    BaseMessage,
    convert_to_messages,
    convert_to_openai_messages,
    messages_from_dict,
)

from langchain_tokenopt.analysis.records import Request
from langchain_tokenopt.core.usage import Usage
from langchain_tokenopt.core.validation import MAX_DEPTH, json_too_deep, shown
from langchain_tokenopt.errors import InvalidArgumentError, InvalidRecordError

__all__ = [
    "FORMATS",
    "SAMPLES",
    "LogFormat",
    "LogReader",
    "ReadStats",
    "openai_message",
]

LogFormat = Literal["auto", "requests", "conversation", "langsmith"]
FORMATS: tuple[str, ...] = get_args(LogFormat)

#: Shipped samples: `--sample conversation` (the README's first command) and `requests`.
SAMPLES = {
    "conversation": "data/sample_conversation.json",
    "requests": "data/sample_requests.jsonl",
}

_SUFFIXES = (".json", ".jsonl", ".ndjson")
_ROLES = frozenset(("system", "developer", "user", "assistant", "tool", "function"))
_LC_TYPES = frozenset(("system", "human", "ai", "tool", "function", "chat", "developer"))
_ID_FIELDS = ("conversation_id", "thread_id", "session_id")
_MAX_EXAMPLES = 5


@dataclass
class ReadStats:
    """What reading found: sources, detected format, bytes, and skipped records."""

    sources: list[str] = field(default_factory=list)
    formats: set[str] = field(default_factory=set)
    input_bytes: int = 0
    skipped: int = 0
    examples: list[str] = field(default_factory=list)
    not_model_calls: int = 0

    def skip(self, error: InvalidRecordError) -> None:
        self.skipped += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(str(error))


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


class _Where:
    """Names a record's place in errors."""

    __slots__ = ("line", "source")

    def __init__(self, source: str, line: int) -> None:
        self.source = source
        self.line = line

    def fail(self, field_name: str | None, problem: str) -> InvalidRecordError:
        return InvalidRecordError(self.source, self.line, field_name, problem)


def _check_tool_calls(calls: Any, where: _Where, path: str) -> None:
    if not isinstance(calls, list):
        raise where.fail(f"{path}.tool_calls", f"must be a list, not {_kind(calls)}")
    for n, call in enumerate(calls):
        name = f"{path}.tool_calls[{n}]"
        if not isinstance(call, dict):
            raise where.fail(name, f"must be an object, not {_kind(call)}")
        function = call.get("function", call)
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise where.fail(f"{name}.function.name", "is missing")
        arguments = function.get("arguments", function.get("args", {}))
        if isinstance(arguments, str):
            # LangChain's message conversion parses them; a record it cannot convert is
            # named here, with its file and line, not later in the replay.
            try:
                json.loads(arguments or "{}")
            except (ValueError, RecursionError) as exc:
                detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
                raise where.fail(
                    f"{name}.function.arguments", f"is not valid JSON ({detail})"
                ) from None
        elif not isinstance(arguments, dict):
            raise where.fail(f"{name}.function.arguments", "must be a JSON object or string")


def _from_langchain(value: dict[str, Any], where: _Where, path: str) -> dict[str, Any]:
    """A LangChain message dict (`dumpd`, `messages_to_dict` or `{"type": ...}`) as OpenAI."""
    try:
        message: BaseMessage
        if "lc" in value and "kwargs" in value:
            from langchain_core.load import load

            revived = load(value, allowed_objects="messages")
            if not isinstance(revived, BaseMessage):
                raise ValueError(f"a {type(revived).__name__}, not a message")
            message = revived
        elif isinstance(value.get("data"), dict):
            message = messages_from_dict([value])[0]
        else:
            message = convert_to_messages([value])[0]
        converted = convert_to_openai_messages([message])
    except (KeyError, ValueError, TypeError, AttributeError, NotImplementedError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise where.fail(path, f"not a LangChain message: {detail}") from None
    return converted[0] if isinstance(converted, list) else converted


def openai_message(value: Any, where: _Where, path: str) -> dict[str, Any]:
    """`value` checked and returned as an OpenAI chat message dict (LangChain ones converted)."""
    if not isinstance(value, dict):
        raise where.fail(path, f"must be a JSON object, not {_kind(value)}")
    role = value.get("role")
    if role is None:
        if "type" in value or "lc" in value:
            if "lc" not in value and value.get("type") not in _LC_TYPES:
                raise where.fail(f"{path}.type", f"unknown message type {shown(value['type'])}")
            return _from_langchain(value, where, path)
        raise where.fail(f"{path}.role", "is missing (a message needs a role)")
    if role not in _ROLES:
        if role in ("human", "ai"):
            return _from_langchain({**value, "type": role}, where, path)
        raise where.fail(
            f"{path}.role",
            f"unknown role {shown(role)} (expected system, developer, user, assistant or tool)",
        )
    content = value.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise where.fail(
            f"{path}.content", f"must be a string or a list of content blocks, not {_kind(content)}"
        )
    if isinstance(content, list):
        for n, block in enumerate(content):
            if not isinstance(block, (str, dict)):
                raise where.fail(
                    f"{path}.content[{n}]", f"must be a string or an object, not {_kind(block)}"
                )
    if role == "tool" and not isinstance(value.get("tool_call_id"), str):
        raise where.fail(f"{path}.tool_call_id", "is missing (a tool message needs it)")
    if "tool_calls" in value and value["tool_calls"] is not None:
        _check_tool_calls(value["tool_calls"], where, path)
    if content is None and role != "assistant":
        return {**value, "content": ""}
    return value


def _messages(value: Any, where: _Where, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise where.fail(path, f"must be a non-empty list of messages, not {_kind(value)}")
    return [openai_message(item, where, f"{path}[{n}]") for n, item in enumerate(value)]


def _tools(value: Any, where: _Where, path: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise where.fail(path, "must be a list of tool objects")
    return value


def _usage(value: Any, where: _Where, path: str) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.fail(path, f"must be an object, not {_kind(value)}")
    try:
        return Usage.parse(value, strict=True)
    except (ValueError, TypeError) as exc:
        raise where.fail(path, str(exc)) from None


def _conversation_id(*places: Any) -> str | None:
    for place in places:
        if isinstance(place, dict):
            for name in _ID_FIELDS:
                value = place.get(name)
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    return str(value)
    return None


def _reply_of(response: Any, where: _Where, path: str) -> tuple[dict[str, Any] | None, Any]:
    """(assistant message, usage mapping) of a logged chat-completions response."""
    if response is None:
        return None, None
    if not isinstance(response, dict):
        raise where.fail(path, f"must be an object, not {_kind(response)}")
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        reply = openai_message(message, where, f"{path}.choices[0].message") if message else None
        return reply, response.get("usage")
    if "role" in response or "type" in response:
        return openai_message(response, where, path), None
    return None, response.get("usage")


def request_from_body(record: Any, where: _Where, default_model: str | None) -> Request:
    """A chat-completions request body (optionally with its response) as a `Request`."""
    if not isinstance(record, dict):
        raise where.fail(None, f"a request must be a JSON object, not {_kind(record)}")
    body, response = record, record.get("response")
    if isinstance(record.get("request"), dict):
        body = record["request"]
    if "messages" not in body:
        raise where.fail("messages", "is missing (a request body needs its messages)")
    messages = _messages(body["messages"], where, "messages")
    tools = _tools(body.get("tools"), where, "tools")
    if not tools and isinstance(body.get("functions"), list):
        functions = _tools(body["functions"], where, "functions")
        tools = [{"type": "function", "function": function} for function in functions]
    reply, logged_usage = _reply_of(response, where, "response")
    if reply is None and record.get("reply") is not None:
        reply = openai_message(record["reply"], where, "reply")
    usage_path = "response.usage" if logged_usage is not None else "usage"
    usage = _usage(
        logged_usage if logged_usage is not None else record.get("usage"), where, usage_path
    )
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise where.fail("model", f"must be a non-empty string, not {_kind(model)}")
    return Request(
        where.source,
        where.line,
        model or default_model,
        messages,
        tools,
        reply,
        usage,
        _conversation_id(body.get("metadata"), record.get("metadata"), body, record),
    )


def _run_messages(inputs: Any, where: _Where) -> list[dict[str, Any]]:
    if not isinstance(inputs, dict):
        raise where.fail("inputs", f"must be an object, not {_kind(inputs)}")
    messages = inputs.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], list):
        messages = messages[0]  # a chat model run logs a batch of message lists
    if messages is None and isinstance(inputs.get("prompts"), list) and inputs["prompts"]:
        messages = [{"role": "user", "content": str(inputs["prompts"][0])}]
    return _messages(messages, where, "inputs.messages")


def _run_output(outputs: Any, where: _Where) -> tuple[dict[str, Any] | None, Any]:
    if not isinstance(outputs, dict):
        return None, None
    generations = outputs.get("generations")
    if isinstance(generations, list) and generations:
        first = generations[0]
        first = first[0] if isinstance(first, list) and first else first
        if isinstance(first, dict) and isinstance(first.get("message"), dict):
            reply = openai_message(first["message"], where, "outputs.generations[0].message")
            llm_output = outputs.get("llm_output")
            usage = llm_output.get("token_usage") if isinstance(llm_output, dict) else None
            if usage is None:
                kwargs = first["message"].get("kwargs", first["message"])
                usage = kwargs.get("usage_metadata") if isinstance(kwargs, dict) else None
            return reply, usage
    return _reply_of(outputs, where, "outputs")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def request_from_run(run: Any, where: _Where, default_model: str | None) -> Request | None:
    """A LangSmith `llm` run as a `Request` (None for chain, tool and other runs)."""
    if not isinstance(run, dict):
        raise where.fail(None, f"a run must be a JSON object, not {_kind(run)}")
    if run.get("run_type", "llm") != "llm":
        return None
    messages = _run_messages(run.get("inputs"), where)
    reply, usage = _run_output(run.get("outputs"), where)
    extra = _object(run.get("extra"))
    params = _object(extra.get("invocation_params"))
    metadata = _object(extra.get("metadata"))
    model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
    if usage is None and isinstance(run.get("prompt_tokens"), int):
        usage = {
            "prompt_tokens": run["prompt_tokens"],
            "completion_tokens": run.get("completion_tokens") or 0,
            "total_tokens": run.get("total_tokens")
            or run["prompt_tokens"] + (run.get("completion_tokens") or 0),
        }
    trace = run.get("trace_id")
    return Request(
        where.source,
        where.line,
        model if isinstance(model, str) and model else default_model,
        messages,
        _tools(params.get("tools"), where, "extra.invocation_params.tools"),
        reply,
        _usage(usage, where, "outputs.usage"),
        _conversation_id(metadata, run) or (f"trace:{trace}" if trace else None),
    )


def conversation_requests(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    source: str,
    default_model: str | None,
) -> Iterator[Request]:
    """Each assistant message of a conversation as one call sent everything before it."""
    replies = [i for i, m in enumerate(messages) if m.get("role") == "assistant" and i > 0]
    if not replies:  # a request without its reply: one call with everything
        yield Request(source, 1, default_model, messages, tools, None, None, source)
        return
    for i in replies:
        yield Request(source, 1, default_model, messages[:i], tools, messages[i], None, source)


class LogReader:
    """Iterate the `Request`s of files, folders, globs, stdin ('-') or a shipped sample.

    Example:
        >>> import json, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "log.jsonl")
        >>> with open(path, "w") as f:
        ...     _ = f.write(json.dumps({"model": "gpt-4o-mini",
        ...                             "messages": [{"role": "user", "content": "Hi"}]}) + "\\n")
        >>> [(r.model, len(r.messages)) for r in LogReader([path])]
        [('gpt-4o-mini', 1)]
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        format: LogFormat = "auto",
        skip_invalid: bool = False,
        default_model: str | None = None,
        sample: str | None = None,
    ) -> None:
        if format not in FORMATS:
            raise InvalidArgumentError(f"format must be one of {FORMATS}, got {shown(format)}")
        if sample is not None and sample not in SAMPLES:
            raise InvalidArgumentError(
                f"sample must be one of {tuple(SAMPLES)}, got {shown(sample)}"
            )
        self.paths = list(paths)
        self.format = format
        self.skip_invalid = skip_invalid
        self.default_model = default_model
        self.sample = sample
        self.stats = ReadStats()

    def size_bytes(self) -> int | None:
        """The size of everything this reader will read, or None when unknown (stdin)."""
        if self.sample is not None:
            return len(
                resources.files("langchain_tokenopt").joinpath(SAMPLES[self.sample]).read_bytes()
            )
        total = 0
        for path in self.paths:
            if path == "-":
                return None
            for file in _expand(path):
                try:
                    total += Path(file).stat().st_size
                except OSError:  # reading it says why
                    continue
        return total

    # -- where the bytes come from

    def _files(self) -> Iterator[tuple[str, IO[bytes]]]:
        if self.sample is not None:
            name = SAMPLES[self.sample]
            data = resources.files("langchain_tokenopt").joinpath(name).read_bytes()
            yield f"<sample:{name}>", io.BytesIO(data)
            return
        for path in self.paths:
            if path == "-":
                yield "<stdin>", sys.stdin.buffer
                continue
            for file in _expand(path):
                try:
                    handle = open(file, "rb")  # noqa: SIM115 (closed below)
                except OSError as exc:
                    raise InvalidRecordError(
                        file, None, None, f"cannot read: {exc.strerror or exc}"
                    ) from exc
                with handle:
                    yield file, handle

    def __iter__(self) -> Iterator[Request]:
        for source, handle in self._files():
            self.stats.sources.append(source)
            yield from self._read(
                source, io.BufferedReader(handle) if not hasattr(handle, "peek") else handle
            )

    # -- one file

    def _read(self, source: str, handle: Any) -> Iterator[Request]:
        head = handle.peek(4096)[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head:
            raise InvalidRecordError(source, None, None, "is empty (expected JSON or JSON Lines)")
        if head[:1] == b"[":
            yield from self._document(source, handle.read())
            return
        if head[:1] != b"{":
            raise InvalidRecordError(
                source,
                1,
                None,
                "not a request log: expected JSON Lines of request bodies, a JSON array, "
                "or a conversation",
            )
        first = handle.readline()
        self.stats.input_bytes += len(first)
        try:
            value = json.loads(first)
        except (ValueError, RecursionError):  # _document says which, and where
            self.stats.input_bytes -= len(first)
            yield from self._document(source, first + handle.read())
            return
        if not handle.peek(1):
            # One JSON object in the file: a conversation object or one request body.
            self.stats.input_bytes -= len(first)
            yield from self._document(source, first)
            return
        yield from self._lines(source, value, handle)

    def _loads(self, source: str, data: bytes, line: int) -> Any:
        text = data.decode("utf-8-sig")
        deep = json_too_deep(text)
        if deep is not None:
            line += text.count("\n", 0, deep)
            raise InvalidRecordError(
                source, line, None, f"JSON nested more than {MAX_DEPTH} levels deep"
            )
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRecordError(
                source,
                line + exc.lineno - 1,
                None,
                f"invalid JSON at column {exc.colno}: {exc.msg}",
            ) from None
        except ValueError as exc:
            raise InvalidRecordError(source, line, None, f"invalid JSON: {exc}") from None

    def _document(self, source: str, data: bytes) -> Iterator[Request]:
        """A whole JSON document: an array of requests or runs, or one conversation."""
        self.stats.input_bytes += len(data)
        try:
            document = self._loads(source, data, 1)
        except InvalidRecordError as exc:
            if not self.skip_invalid:
                raise
            self.stats.skip(exc)
            return
        if isinstance(document, dict):
            document_format = self._format_of(document, whole=True)
            if document_format == "conversation":
                yield from self._conversation(source, [document])
                return
            yield from self._record(document_format, document, _Where(source, 1))
            return
        if not isinstance(document, list):
            raise InvalidRecordError(
                source, 1, None, f"expected a JSON array or object, not {_kind(document)}"
            )
        if not document:
            raise InvalidRecordError(source, 1, None, "holds no records")
        kind = self._format_of(document[0], whole=False)
        if kind == "conversation":
            yield from self._conversation(source, [{"messages": document}])
            return
        text = data.decode("utf-8-sig", errors="replace")
        lines = _item_lines(text, len(document))
        for item, line in zip(document, lines, strict=True):
            yield from self._record(kind, item, _Where(source, line))

    def _lines(self, source: str, first: Any, handle: Any) -> Iterator[Request]:
        kind = self._format_of(first, whole=False)
        if kind == "conversation":  # one message per line: one conversation
            yield from self._message_lines(source, first, handle)
            return
        yield from self._record(kind, first, _Where(source, 1))
        loads = json.loads
        for number, raw in enumerate(handle, start=2):
            self.stats.input_bytes += len(raw)
            if not raw.strip():
                continue
            where = _Where(source, number)
            try:
                try:
                    value = loads(raw)
                except (ValueError, RecursionError):
                    value = self._loads(source, raw, number)  # raises, naming the column or depth
            except InvalidRecordError as exc:
                if not self.skip_invalid:
                    raise
                self.stats.skip(exc)
                continue
            yield from self._record(kind, value, where)

    def _message_lines(self, source: str, first: Any, handle: Any) -> Iterator[Request]:
        messages: list[dict[str, Any]] = []
        numbered = [(1, first)]
        for number, raw in enumerate(handle, start=2):
            self.stats.input_bytes += len(raw)
            if raw.strip():
                try:
                    numbered.append((number, self._loads(source, raw, number)))
                except InvalidRecordError as exc:
                    if not self.skip_invalid:
                        raise
                    self.stats.skip(exc)
        for number, value in numbered:
            try:
                messages.append(openai_message(value, _Where(source, number), "message"))
            except InvalidRecordError as exc:
                if not self.skip_invalid:
                    raise
                self.stats.skip(exc)
        if not messages:
            raise InvalidRecordError(source, None, None, "holds no valid messages")
        self.stats.formats.add("conversation")
        yield from conversation_requests(messages, [], source, self.default_model)

    def _format_of(self, value: Any, *, whole: bool) -> str:
        if self.format != "auto":
            return self.format
        if isinstance(value, dict):
            if "run_type" in value or ("inputs" in value and "outputs" in value):
                return "langsmith"
            if "request" in value or ("messages" in value and not whole):
                return "requests"
            if "messages" in value and "model" in value:  # one request body
                return "requests"
            if "messages" in value:  # one object with messages: a conversation, as before
                return "conversation"
        return "conversation"

    def _record(self, kind: str, value: Any, where: _Where) -> Iterator[Request]:
        try:
            if kind == "langsmith":
                request = request_from_run(value, where, self.default_model)
                if request is None:
                    self.stats.not_model_calls += 1
                    return
            else:
                request = request_from_body(value, where, self.default_model)
        except InvalidRecordError as exc:
            if not self.skip_invalid:
                raise
            self.stats.skip(exc)
            return
        self.stats.formats.add(kind)
        yield request

    def _conversation(self, source: str, documents: list[Any]) -> Iterator[Request]:
        document = documents[0]
        where = _Where(source, 1)
        values = document.get("messages") if isinstance(document, dict) else None
        if not isinstance(values, list) or not values:
            raise where.fail("messages", "must be a non-empty list of messages")
        messages: list[dict[str, Any]] = []
        for n, value in enumerate(values):
            try:
                messages.append(openai_message(value, where, f"messages[{n}]"))
            except InvalidRecordError as exc:
                if not self.skip_invalid:
                    raise
                self.stats.skip(exc)
        if not messages:
            raise where.fail("messages", "holds no valid messages")
        tools = _tools(document.get("tools"), where, "tools")
        self.stats.formats.add("conversation")
        yield from conversation_requests(messages, tools, source, self.default_model)


def _item_lines(text: str, count: int) -> list[int]:
    """The line each top-level item of a JSON array starts on (the array is valid JSON)."""
    decoder = json.JSONDecoder()
    lines: list[int] = []
    index = text.index("[") + 1
    line = 1 + text.count("\n", 0, index)
    position = index
    while len(lines) < count:
        while text[index] in " \t\r\n,":
            index += 1
        line += text.count("\n", position, index)
        lines.append(line)
        _, end = decoder.raw_decode(text, index)
        line += text.count("\n", index, end)
        position = index = end
    return lines


def _expand(path: str) -> list[str]:
    """A file, a folder's log files (sorted) or a glob's matches (sorted)."""
    target = Path(path)
    if target.is_dir():
        files = sorted(str(p) for p in target.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        if not files:
            raise InvalidRecordError(
                path, None, None, "folder holds no .json, .jsonl or .ndjson files"
            )
        return files
    if any(char in path for char in "*?[") and not target.exists():
        matches = sorted(glob.glob(path, recursive=True))
        if not matches:
            raise InvalidRecordError(path, None, None, "no file matches this pattern")
        return [m for m in matches if Path(m).is_file()]
    if not target.exists():
        raise InvalidRecordError(path, None, None, "no such file")
    return [path]
