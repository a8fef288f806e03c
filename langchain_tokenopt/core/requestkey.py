"""What a model sees of a request: the one notion of "identical" for caches and trackers.

Two requests are the same when a model cannot tell them apart: the same roles,
contents, names, tool calls and tool results (tool-call ids only through their
pairing), the same tool schemas, model, sampling parameters and response format. What
the provider never sees, or what does not change the answer, is left out: message ids,
`response_metadata` (finish reason, provider ids, a cache's hit marker),
`usage_metadata` (including LangChain's `total_cost: 0` on replays), tool artifacts,
and transport settings (base URL, timeouts, retries, API key names, HTTP clients).

Tool-call ids are renumbered by first appearance: the provider sees them, but they are
opaque random tokens that it draws anew for every response (a replayed conversation
and a live one carry different ids for the same calls), so only which result answers
which call can change an answer. The renumbering is a bijection on the ids of one
request, so two requests share a canonical form only if they are equal up to a
consistent renaming of their ids.

`TokenOptCache` keys entries by `canonical_messages_from_prompt` and
`normalized_llm_string`; `UsageTracker` recognises repeated calls with
`request_digest`, built from the same message view.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_tokenopt.core.boundedjson import MAX_JSON_BYTES, MAX_JSON_DEPTH, nesting_exceeds

__all__ = [
    "TRANSPORT_SETTINGS",
    "canonical_json",
    "canonical_messages",
    "canonical_messages_from_prompt",
    "message_view",
    "normalized_llm_string",
    "request_digest",
    "settings_view",
]

#: Model settings that decide how a request travels, not what the model answers. A
#: base URL is among them: the model name decides the model (a proxy that serves
#: another model under the same name needs its own cache namespace or `key="exact"`).
TRANSPORT_SETTINGS = frozenset(
    {
        # where the request goes
        "base_url",
        "openai_api_base",
        "api_base",
        "anthropic_api_url",
        "openai_proxy",
        "proxy",
        # who pays (the key's name and the organization), never what is answered
        "api_key",
        "openai_api_key",
        "anthropic_api_key",
        "google_api_key",
        "openai_organization",
        "organization",
        # how long and how often to try
        "timeout",
        "request_timeout",
        "default_request_timeout",
        "max_retries",
        # Python objects of the process
        "http_client",
        "http_async_client",
        "client",
        "async_client",
        "root_client",
        "root_async_client",
        "rate_limiter",
        "cache",
        "callbacks",
        "callback_manager",
        "verbose",
        "tags",
        "metadata",
        "custom_get_token_ids",
    }
)

# Message fields a provider never receives (or that a replay changes): dropped.
_INVISIBLE_FIELDS = frozenset(
    {
        "id",
        "type",
        "response_metadata",
        "usage_metadata",
        "artifact",
        "example",
        "tool_call_chunks",
        "chunk_position",
    }
)

# Message class names (langchain_core.load) and `BaseMessage.type` values -> kind.
_ROLES = {
    "HumanMessage": "human",
    "AIMessage": "ai",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "ChatMessage": "chat",
    "FunctionMessage": "function",
    "RemoveMessage": "remove",
}
_ROLES.update({f"{name}Chunk": role for name, role in _ROLES.items()})
_ROLES.update({role: role for role in list(_ROLES.values())})
_ROLES["developer"] = "developer"

# Placeholders of tool-call ids start with this character; other strings that start
# with it are escaped by doubling it, so no string can pass for a placeholder.
_MARK = "\x00"


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal for equal values, whatever the key order.

    Example:
        >>> canonical_json({"b": 1, "a": [True, None]})
        '{"a":[true,null],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, dict, tuple, str)) and not value)


def message_view(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """What a model sees of one message: its kind and the fields a provider receives.

    `kind` is the message class's role ("human", "ai", "tool", ...; a `ChatMessage`'s
    own `role` stays among its fields). `fields` are the message's fields
    (`vars(message)`, or the `kwargs` of its `langchain_core.load` form); empty values
    count as absent, as `dumps` omits them.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> reply = AIMessage("hi", id="run-1", response_metadata={"finish_reason": "stop"})
        >>> message_view("ai", vars(reply))
        {'kind': 'ai', 'content': 'hi'}
    """
    view: dict[str, Any] = {"kind": kind}
    for name, value in fields.items():
        if name in _INVISIBLE_FIELDS or (name != "content" and _empty(value)):
            continue
        view[name] = value
    return view


def _tool_call_ids(views: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Tool-call ids in order of first appearance -> their placeholders."""
    ids: dict[str, str] = {}

    def note(value: Any) -> None:
        if isinstance(value, str) and value not in ids:
            ids[value] = f"{_MARK}{len(ids)}"

    for view in views:
        for name in ("tool_calls", "invalid_tool_calls"):
            calls = view.get(name)
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, Mapping):
                        note(call.get("id"))
        note(view.get("tool_call_id"))
    return ids


def _renamed(value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        placeholder = ids.get(value)
        if placeholder is not None:
            return placeholder
        return _MARK + value if value.startswith(_MARK) else value
    if isinstance(value, Mapping):
        return {key: _renamed(item, ids) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_renamed(item, ids) for item in value]
    return value


def canonical_messages(views: list[dict[str, Any]]) -> list[Any]:
    """`views` with tool-call ids renumbered by first appearance (see the module doc).

    Example:
        >>> a = [{"kind": "ai", "tool_calls": [{"id": "call_x", "name": "f"}]},
        ...      {"kind": "tool", "tool_call_id": "call_x", "content": "ok"}]
        >>> b = [{"kind": "ai", "tool_calls": [{"id": "call_y", "name": "f"}]},
        ...      {"kind": "tool", "tool_call_id": "call_y", "content": "ok"}]
        >>> canonical_messages(a) == canonical_messages(b)
        True
    """
    if not any(
        "tool_calls" in v or "tool_call_id" in v or "invalid_tool_calls" in v for v in views
    ):
        return list(views)  # no tool call: nothing to renumber
    ids = _tool_call_ids(views)
    if not ids:
        return list(views)
    renamed: list[Any] = _renamed(views, ids)
    return renamed


def canonical_messages_from_prompt(prompt: str) -> list[Any] | None:
    """The canonical message list of a chat model's cache prompt, or None.

    langchain-core passes `dumps(messages)` to `BaseCache.lookup`; each element is
    ``{"lc": 1, "type": "constructor", "id": [..., "AIMessage"], "kwargs": {...}}``.
    An element in any other shape is kept whole (compared exactly). None when the
    prompt is not such a list (a text LLM's prompt), is nested deeper than
    `MAX_JSON_DEPTH` or larger than `MAX_JSON_BYTES`: the caller then compares it as
    it is.

    Example:
        >>> from langchain_core.load import dumps
        >>> from langchain_core.messages import HumanMessage
        >>> canonical_messages_from_prompt(dumps([HumanMessage("hi", id="m-1")]))
        [{'kind': 'human', 'content': 'hi'}]
    """
    if not prompt.startswith("[{") or len(prompt) > MAX_JSON_BYTES:
        return None
    if nesting_exceeds(prompt, MAX_JSON_DEPTH):
        return None
    try:
        elements = json.loads(prompt)
    except ValueError:
        return None
    if not isinstance(elements, list):
        return None
    views: list[Any] = []
    for element in elements:
        role = _serialized_role(element)
        if role is None:
            views.append({"serialized": element})
        else:
            views.append(message_view(role, element["kwargs"]))
    return canonical_messages(views)


def _serialized_role(element: Any) -> str | None:
    if not (isinstance(element, dict) and element.get("type") == "constructor"):
        return None
    ident, kwargs = element.get("id"), element.get("kwargs")
    if not (isinstance(ident, list) and ident and isinstance(kwargs, dict)):
        return None
    return _ROLES.get(ident[-1]) if isinstance(ident[-1], str) else None


def settings_view(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` without transport settings and secrets (see `TRANSPORT_SETTINGS`).

    Example:
        >>> settings_view({"model": "gpt-4o", "temperature": 0, "max_retries": 6})
        {'model': 'gpt-4o', 'temperature': 0}
    """
    return {
        name: value
        for name, value in settings.items()
        if name not in TRANSPORT_SETTINGS and not (type(value) is dict and _is_secret(value))
    }


def _is_secret(value: Any) -> bool:
    """A `langchain_core.load` secret marker: where a key comes from, never the key."""
    return isinstance(value, dict) and value.get("lc") == 1 and value.get("type") == "secret"


@lru_cache(maxsize=256)
def normalized_llm_string(llm_string: str) -> str:
    """The parts of LangChain's `llm_string` that decide the answer, canonically.

    A serializable chat model's `llm_string` is ``json(model) + "---" +
    str(sorted(call kwargs))``: the model's class and settings, then what the call
    bound (tools, response format, stop). Transport settings and secret names are
    dropped from both; a part that cannot be read is kept as it is (exact). Memoized:
    an application has few distinct `llm_string`s.

    Example:
        >>> a = '{"id": ["m"], "kwargs": {"model": "x", "base_url": "http://a"}}---[]'
        >>> b = '{"id": ["m"], "kwargs": {"model": "x", "base_url": "http://b"}}---[]'
        >>> normalized_llm_string(a) == normalized_llm_string(b)
        True
    """
    model: Any = None
    params_text = llm_string
    if llm_string.startswith("{") and not nesting_exceeds(llm_string, MAX_JSON_DEPTH):
        try:
            model, end = json.JSONDecoder().raw_decode(llm_string)
        except ValueError:
            model = None
        else:
            if llm_string.startswith("---", end):
                params_text = llm_string[end + 3 :]
            else:
                model = None
    if isinstance(model, dict) and isinstance(model.get("kwargs"), dict):
        model = {**model, "kwargs": settings_view(model["kwargs"])}
    else:
        model, params_text = None, llm_string
    return canonical_json({"model": model, "params": _params(params_text)})


def _params(text: str) -> Any:
    """`str(sorted(params.items()))` read back and cleaned; the text itself if unreadable."""
    if not text.startswith("[") or nesting_exceeds(text, MAX_JSON_DEPTH):
        return {"text": text}
    try:
        items = ast.literal_eval(text)  # literals only: never runs code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return {"text": text}
    if not (
        isinstance(items, list)
        and all(isinstance(item, tuple) and len(item) == 2 for item in items)
        and all(isinstance(name, str) for name, _ in items)
    ):
        return {"text": text}
    kept = settings_view(dict(items))
    # repr, not JSON: literal_eval may return tuples, sets and bytes, and repr keeps
    # 1, 1.0 and True apart.
    return {"repr": repr(sorted(kept.items()))}


def request_digest(
    messages: Sequence[BaseMessage] | None,
    prompts: Sequence[str] | None,
    settings: Mapping[str, Any],
) -> str:
    """A hash equal for two model calls exactly when a model sees the same request.

    The message view is the one `TokenOptCache` keys on; `settings` are the call's
    invocation parameters (model, sampling parameters, tools, response format), without
    transport settings.

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage
        >>> turn = [HumanMessage("hi"), AIMessage("hello", id="a")]
        >>> replay = [HumanMessage("hi"), AIMessage("hello", id="b",
        ...           response_metadata={"tokenopt_cache_hit": True})]
        >>> params = {"model": "gpt-4o", "temperature": 0}
        >>> request_digest(turn, None, params) == request_digest(replay, None, params)
        True
        >>> request_digest(turn, None, params) == request_digest(turn, None, {"model": "o3"})
        False
    """
    views = None
    if messages is not None:
        views = canonical_messages(
            [message_view(_ROLES.get(m.type, m.type), vars(m)) for m in messages]
        )
    material = (views, None if prompts is None else list(prompts), settings_view(settings))
    # repr, not canonical JSON: four times cheaper on the tracker's path, and as
    # strict (dicts built by the same code list their keys in the same order; an
    # object whose repr shows its address is never equal to another).
    text = repr(material)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
