"""Chat messages as plain text, and any chat-model input as a message list.

Every component that reads what a conversation says (summaries, cache keys, tool
retrieval, routing) goes through these few functions, so they agree on what the text
of a message is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.prompt_values import PromptValue

from langchain_tokenopt.core.validation import check_depth
from langchain_tokenopt.errors import ArgumentTypeError

#: Longest tool-call argument text kept in a placeholder, in characters.
_TOOL_ARGS_MAX_CHARS = 80


_BLOCK_PLACEHOLDERS = {
    "image": "[image]",
    "image_url": "[image]",
    "input_image": "[image]",
    "audio": "[audio]",
    "input_audio": "[audio]",
    "video": "[video]",
    "file": "[file]",
    "input_file": "[file]",
    "document": "[file]",
    "reasoning": "",
    "thinking": "",
}


def _shorten(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def content_to_text(content: str | list[Any]) -> str:
    """Plain text of message content; non-text blocks become short placeholders.

    Images become "[image]", audio "[audio]", files "[file]", tool-use blocks
    "[tool call: name(args…)]"; reasoning blocks are left out.

    Example:
        >>> content_to_text([{"type": "text", "text": "Look:"},
        ...                  {"type": "image_url", "image_url": {"url": "x"}}])
        'Look: [image]'
    """
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
            continue
        if not isinstance(block, Mapping):
            parts.append(f"[{type(block).__name__}]")
            continue
        kind = str(block.get("type", ""))
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif kind in ("tool_use", "tool_call", "function_call"):
            parts.append(_tool_call_placeholder(str(block.get("name", "")), block.get("input")))
        elif kind in _BLOCK_PLACEHOLDERS:
            if _BLOCK_PLACEHOLDERS[kind]:
                parts.append(_BLOCK_PLACEHOLDERS[kind])
        else:
            parts.append(f"[{kind or 'content'}]")
    return " ".join(p for p in parts if p)


def _tool_call_placeholder(name: str, args: Any) -> str:
    if args in (None, {}, ""):
        rendered = ""
    elif isinstance(args, str):
        rendered = args
    else:
        rendered = json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)
    return f"[tool call: {name}({_shorten(rendered, _TOOL_ARGS_MAX_CHARS)})]"


def role_label(message: BaseMessage) -> str:
    """The speaker of a message as a transcript names it ("User", "Assistant", "Tool x")."""
    if isinstance(message, HumanMessage):
        return "User"
    if isinstance(message, AIMessage):
        return "Assistant"
    if isinstance(message, SystemMessage):
        return "System"
    if isinstance(message, ToolMessage):
        return f"Tool {message.name}" if message.name else "Tool"
    if isinstance(message, FunctionMessage):
        return f"Function {message.name}"
    if isinstance(message, ChatMessage):
        return message.role.capitalize()
    return message.type.capitalize()


def message_to_text(message: BaseMessage) -> str:
    """The text of one message without its speaker, tool calls as placeholders.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> message_to_text(AIMessage("", tool_calls=[
        ...     {"name": "get_weather", "args": {"city": "Paris"}, "id": "1"}]))
        '[tool call: get_weather({"city": "Paris"})]'
    """
    text = content_to_text(message.content)
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = " ".join(_tool_call_placeholder(c["name"], c["args"]) for c in message.tool_calls)
        text = f"{text} {calls}".strip()
    return text


def render_transcript(messages: Sequence[BaseMessage]) -> str:
    """Messages as "Speaker: text" lines; messages without text are left out."""
    lines = []
    for message in messages:
        text = message_to_text(message)
        if text:
            lines.append(f"{role_label(message)}: {text}")
    return "\n".join(lines)


def text_parts(content: Any) -> list[str]:
    """The text blocks of message content, in order; anything else is left out.

    Example:
        >>> text_parts(["a", {"type": "text", "text": "b"}, {"type": "image_url"}])
        ['a', 'b']
    """
    if isinstance(content, str):
        return [content]
    parts: list[str] = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return parts


def text_only(content: Any) -> str | None:
    """Content that is only text, joined by newlines; None when it holds anything else.

    Example:
        >>> text_only([{"type": "text", "text": "a"}, "b"]).split()
        ['a', 'b']
        >>> text_only([{"type": "image"}]) is None
        True
    """
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                return None
            parts.append(text)
        else:
            return None
    return "\n".join(parts)


def as_messages(value: LanguageModelInput, *, taker: str = "A chat model") -> list[BaseMessage]:
    """The messages a chat model would receive for `value` (str, messages, PromptValue).

    Raises `TypeError` naming `taker` and what it accepts for anything else.

    Example:
        >>> [m.type for m in as_messages([("system", "Be brief."), ("human", "Hi")])]
        ['system', 'human']
    """
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return [HumanMessage(value)]
    if isinstance(value, Sequence):
        check_depth(value, "the messages")
        try:
            return convert_to_messages(value)
        except (ValueError, TypeError, NotImplementedError, KeyError) as exc:
            raise ArgumentTypeError(
                f"{taker} takes a str, a list of messages (or (role, text) tuples / dicts) "
                f"or a PromptValue; this list cannot be read as messages: {exc}"
            ) from exc
    raise ArgumentTypeError(
        f"{taker} takes a str, a list of messages (or (role, text) tuples / dicts) "
        f"or a PromptValue; got {type(value).__name__}."
    )


def message_list(value: Any, name: str = "messages") -> list[BaseMessage]:
    """`value` (a list of messages, dicts or (role, text) pairs, or a PromptValue) as
    messages; `ArgumentTypeError` naming `name` for anything else, a bare str included.

    Example:
        >>> [m.type for m in message_list([("human", "Hi")])]
        ['human']
    """
    if isinstance(value, (str, bytes, Mapping, BaseMessage)) or not isinstance(
        value, (Sequence, PromptValue)
    ):
        raise ArgumentTypeError(
            f"{name} must be a list of messages (or (role, text) pairs / dicts) or a "
            f"PromptValue, got {type(value).__name__}"
        )
    return as_messages(value, taker=f"{name}:")
