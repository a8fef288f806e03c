"""The one reader of `tokenopt` input: files, stdin, the built-in sample and chat transcripts.

`read_input` reads a file, stdin or the sample as text (naming what it cannot read);
`read_transcript` turns that text into model calls, or raises ValueError naming the
source, line and field of what it cannot read. `count` falls back to plain text on
that error; `analyze` reports it.

Example:
    >>> transcript = read_transcript(
    ...     '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]')
    >>> transcript.kind, transcript.messages, len(transcript.calls)
    ('conversation', 2, 1)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    convert_to_messages,
    messages_from_dict,
)

from langchain_tokenopt.core.validation import MAX_DEPTH, instance_of, json_too_deep, shown
from langchain_tokenopt.errors import InvalidArgumentError, TokenOptError

__all__ = [
    "SAMPLE_CONVERSATION",
    "InputError",
    "ModelCall",
    "Transcript",
    "TranscriptKind",
    "read_input",
    "read_transcript",
]

#: The built-in sample conversation, shipped inside the package.
SAMPLE_CONVERSATION = "data/sample_conversation.json"

TranscriptKind = Literal["conversation", "requests"]

_ROLES = ("system", "developer", "user", "human", "assistant", "ai", "tool", "function")
_LC_TYPES = ("system", "human", "ai", "tool", "function", "chat", "developer")


class InputError(TokenOptError, ValueError):
    """Input a command cannot read; the message names it (the command exits with 2)."""


def read_input(file: str | None, *, sample: bool = False) -> tuple[str, str]:
    """(display name, text) of a file, stdin ('-') or the built-in sample conversation."""
    if sample:
        resource = resources.files("langchain_tokenopt").joinpath(SAMPLE_CONVERSATION)
        return f"<sample:{SAMPLE_CONVERSATION}>", resource.read_text(encoding="utf-8")
    if file is None or file == "-":
        name, data = "<stdin>", sys.stdin.buffer.read()
    else:
        name = file
        try:
            with open(file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise InputError(f"cannot read {file!r}: {exc.strerror or exc}") from exc
    try:
        return name, data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


# ---------------------------------------------------------------------- transcripts


@dataclass(frozen=True)
class ModelCall:
    """One model call: what it was sent, and its reply when the log has it."""

    messages: list[BaseMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    reply: AIMessage | None = None


@dataclass(frozen=True)
class Transcript:
    """A conversation (each assistant message is one call, sent everything before it)
    or a log of independent requests, as model calls."""

    source: str
    kind: TranscriptKind
    calls: list[ModelCall]
    messages: int
    tools: int
    conversation: list[BaseMessage] = field(default_factory=list)
    """Every message of a conversation, in order (empty for a log of requests)."""
    skipped: tuple[str, ...] = ()
    """What `read_transcript(skip_invalid=True)` left out, each naming its line."""


class _Located:
    """A JSON value and the line it starts on."""

    __slots__ = ("line", "value")

    def __init__(self, line: int, value: Any) -> None:
        self.line = line
        self.value = value


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _array_items(text: str, start: int) -> list[_Located]:
    """The items of the JSON array at `start` (a valid document), with their lines."""
    decoder = json.JSONDecoder()
    items: list[_Located] = []
    index = _skip_space(text, start + 1)
    while index < len(text) and text[index] != "]":
        value, end = decoder.raw_decode(text, index)
        items.append(_Located(_line_of(text, index), value))
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip_space(text, index + 1)
    return items


def _member_start(text: str, start: int, key: str) -> int | None:
    """Offset of the value of `key` in the JSON object at `start` (a valid document)."""
    decoder = json.JSONDecoder()
    index = _skip_space(text, start + 1)
    while index < len(text) and text[index] != "}":
        name, end = decoder.raw_decode(text, index)
        index = _skip_space(text, _skip_space(text, end) + 1)  # past ':'
        if name == key:
            return index
        _, end = decoder.raw_decode(text, index)
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip_space(text, index + 1)
    return None


class _Reader:
    """Turns located JSON values into messages, with errors naming source, line, field."""

    def __init__(self, source: str, skip_invalid: bool = False) -> None:
        self.source = source
        self.skip_invalid = skip_invalid
        self.skipped: list[str] = []

    def skip(self, error: InvalidArgumentError) -> None:
        """Note an unreadable item, or raise its error when not skipping."""
        if not self.skip_invalid:
            raise error
        self.skipped.append(str(error))

    def fail(self, line: int | None, message: str) -> InvalidArgumentError:
        where = f"{self.source}, line {line}" if line is not None else self.source
        return InvalidArgumentError(f"{where}: {message}")

    def message(self, item: _Located, path: str = "") -> BaseMessage:
        value, line = item.value, item.line
        name = f"{path}." if path else ""
        if not isinstance(value, dict):
            raise self.fail(
                line, f"{path or 'a message'} must be a JSON object, not {_kind(value)}"
            )
        if "lc" in value and "kwargs" in value:
            return self._serialized(value, line, path)
        if isinstance(value.get("data"), dict) and "type" in value:
            try:
                return messages_from_dict([value])[0]
            except (KeyError, ValueError, TypeError) as exc:
                raise self.fail(
                    line, f"field '{name}data': not a LangChain message: {exc}"
                ) from None
        role_field = "role" if "role" in value else "type" if "type" in value else None
        if role_field is None:
            raise self.fail(line, f"field '{name}role' is missing (a message needs a role)")
        role = value[role_field]
        if role not in _ROLES + _LC_TYPES:
            raise self.fail(
                line,
                f"field '{name}{role_field}': unknown role {shown(role)} (expected one of "
                "system, user, assistant, tool)",
            )
        content = value.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise self.fail(
                line,
                f"field '{name}content' must be a string or a list of content blocks, "
                f"not {_kind(content)}",
            )
        if role == "tool" and not isinstance(value.get("tool_call_id"), str):
            raise self.fail(
                line, f"field '{name}tool_call_id' is missing (a tool message needs it)"
            )
        self._check_tool_calls(value.get("tool_calls"), line, name)
        data = dict(value)
        if data.get("content") is None:
            data["content"] = ""
        try:
            return convert_to_messages([data])[0]
        except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
            detail = str(exc).splitlines()[0]
            raise self.fail(line, f"{path or 'message'} is not a chat message: {detail}") from None

    def _serialized(self, value: dict[str, Any], line: int, path: str) -> BaseMessage:
        from langchain_core.load import load

        try:
            revived = load(value, allowed_objects="messages")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self.fail(
                line, f"{path or 'message'} is not a LangChain message: {exc}"
            ) from None
        if not isinstance(revived, BaseMessage):
            raise self.fail(
                line, f"{path or 'message'} is a {type(revived).__name__}, not a message"
            )
        return revived

    def _check_tool_calls(self, calls: Any, line: int, name: str) -> None:
        if calls is None:
            return
        if not isinstance(calls, list):
            raise self.fail(line, f"field '{name}tool_calls' must be a list, not {_kind(calls)}")
        for position, call in enumerate(calls):
            where = f"{name}tool_calls[{position}]"
            if not isinstance(call, dict):
                raise self.fail(line, f"field '{where}' must be an object, not {_kind(call)}")
            function = call.get("function", call)
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise self.fail(line, f"field '{where}.function.name' is missing")
            arguments = function.get("arguments", function.get("args", {}))
            if isinstance(arguments, str):
                try:
                    json.loads(arguments or "{}")
                except json.JSONDecodeError as exc:
                    raise self.fail(
                        line, f"field '{where}.function.arguments' is not valid JSON ({exc.msg})"
                    ) from None
            elif not isinstance(arguments, dict):
                raise self.fail(
                    line, f"field '{where}.function.arguments' must be a JSON object or string"
                )

    def tools(self, value: Any, line: int | None, path: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
            raise self.fail(line, f"field '{path}' must be a list of tool objects")
        return list(value)

    def messages(self, items: list[_Located], path: str) -> list[BaseMessage]:
        if not items:
            raise self.fail(None, f"'{path}' holds no messages")
        messages: list[BaseMessage] = []
        for n, item in enumerate(items):
            try:
                messages.append(self.message(item, f"{path}[{n}]"))
            except InvalidArgumentError as exc:
                self.skip(exc)
        if not messages:
            raise self.fail(None, f"'{path}' holds no valid messages")
        return messages


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def read_transcript(
    text: str, source: str = "<input>", *, skip_invalid: bool = False
) -> Transcript:
    """Read a chat transcript, or raise `InvalidArgumentError` (a ValueError) naming
    `source`, the line and the field.

    Accepted:
      * a JSON list of messages, or an object ``{"messages": [...], "tools": [...]}``;
      * JSON Lines with one message per line;
      * JSON Lines with one request body per line (``{"messages": [...], "tools":
        [...]}``, as logged from a chat completions API): each line is one call.

    Messages are OpenAI chat messages (``role``, ``content``, ``tool_calls``,
    ``tool_call_id``) or LangChain message dicts (``messages_to_dict``, ``dumpd``, or
    ``{"type": "human", "content": ...}``).

    With `skip_invalid=True`, a message (or a JSON Lines line, or a request) that
    cannot be read is left out and described in the transcript's `skipped`; the
    text must still be JSON, with at least one readable message.

    Example:
        >>> read_transcript('{"role": "user", "content": "Hi"}\\n{"role": "robot"}', "a.jsonl")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_tokenopt.errors.InvalidArgumentError: a.jsonl, line 2: field 'role': ...
    """
    instance_of(text, "text", str, "the transcript as a str (JSON or JSON Lines)")
    instance_of(source, "source", str, "a str naming where the text came from")
    reader = _Reader(source, skip_invalid)
    stripped = text.lstrip("\ufeff")
    start = _skip_space(stripped, 0)
    if start == len(stripped):
        raise reader.fail(None, "the file is empty (expected a JSON list of chat messages)")
    if stripped[start] not in "[{":
        raise reader.fail(
            _line_of(stripped, start),
            "not a chat transcript: expected a JSON list of messages, an object with "
            "'messages', or JSON Lines with one message or request per line",
        )
    too_deep = json_too_deep(stripped)
    if too_deep is not None:
        raise reader.fail(
            _line_of(stripped, too_deep),
            f"JSON nested more than {MAX_DEPTH} levels deep at column "
            f"{too_deep - stripped.rfind(chr(10), 0, too_deep)} (a chat transcript is "
            "far shallower)",
        )
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as exc:
        if stripped[start] == "{" and _first_line_is_json(stripped):
            return _read_lines(reader, stripped)
        raise reader.fail(exc.lineno, f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        if stripped[start] == "{" and _first_line_is_json(stripped):
            return _read_lines(reader, stripped)
        raise reader.fail(None, f"invalid JSON: {exc}") from None
    if isinstance(document, list):
        if all(isinstance(item, dict) and "messages" in item for item in document) and document:
            raise reader.fail(
                _line_of(stripped, start),
                "a list of request bodies: write them as JSON Lines (one per line)",
            )
        messages = reader.messages(_array_items(stripped, start), "messages")
        return _conversation(reader, messages, [])
    if "messages" in document:
        offset = _member_start(stripped, start, "messages")
        if not isinstance(document["messages"], list) or offset is None:
            raise reader.fail(_line_of(stripped, start), "field 'messages' must be a list")
        messages = reader.messages(_array_items(stripped, offset), "messages")
        tools = reader.tools(document.get("tools"), _line_of(stripped, start), "tools")
        return _conversation(reader, messages, tools)
    message = reader.message(_Located(_line_of(stripped, start), document))
    return _conversation(reader, [message], [])


def _first_line_is_json(text: str) -> bool:
    first = text.strip().splitlines()[0]
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _read_lines(reader: _Reader, text: str) -> Transcript:
    located: list[_Located] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            located.append(_Located(number, json.loads(line)))
        except ValueError as exc:  # also an integer of more than 4,300 digits
            detail = (
                f"invalid JSON at column {exc.colno}: {exc.msg}"
                if isinstance(exc, json.JSONDecodeError)
                else f"invalid JSON: {exc}"
            )
            reader.skip(reader.fail(number, detail))
    requests = [
        item for item in located if isinstance(item.value, dict) and "messages" in item.value
    ]
    if requests and len(requests) != len(located):
        for odd in (item for item in located if item not in requests):
            reader.skip(
                reader.fail(
                    odd.line,
                    "a line without 'messages' in a log of requests (one request per line)",
                )
            )
    if not requests:
        messages = []
        for item in located:
            try:
                messages.append(reader.message(item))
            except InvalidArgumentError as exc:
                reader.skip(exc)
        if not messages:
            raise reader.fail(None, "no valid messages")
        return _conversation(reader, messages, [])
    calls: list[ModelCall] = []
    total_messages = 0
    tool_names: set[str] = set()
    for item in requests:
        try:
            call = _request(reader, item)
        except InvalidArgumentError as exc:
            reader.skip(exc)
            continue
        total_messages += len(call.messages)
        tool_names.update(json.dumps(tool, sort_keys=True) for tool in call.tools)
        calls.append(call)
    if not calls:
        raise reader.fail(None, "no valid requests")
    return Transcript(
        reader.source,
        "requests",
        calls,
        total_messages,
        len(tool_names),
        skipped=tuple(reader.skipped),
    )


def _request(reader: _Reader, item: _Located) -> ModelCall:
    """One request body of a JSON Lines log as a model call."""
    body = item.value
    if not isinstance(body["messages"], list) or not body["messages"]:
        raise reader.fail(item.line, "field 'messages' must be a non-empty list")
    messages = [
        reader.message(_Located(item.line, value), f"messages[{n}]")
        for n, value in enumerate(body["messages"])
    ]
    return ModelCall(messages, reader.tools(body.get("tools"), item.line, "tools"))


def _conversation(
    reader: _Reader, messages: list[BaseMessage], tools: list[dict[str, Any]]
) -> Transcript:
    calls = [
        ModelCall(messages[:i], tools, message)
        for i, message in enumerate(messages)
        if isinstance(message, AIMessage) and i > 0
    ]
    if not calls:  # a request without its reply: one call with everything
        calls = [ModelCall(messages, tools)]
    return Transcript(
        reader.source,
        "conversation",
        calls,
        len(messages),
        len(tools),
        messages,
        tuple(reader.skipped),
    )
