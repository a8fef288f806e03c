"""Normalized cache keys: what the model sees decides the key, nothing else.

Requests are built the way langchain-core builds them (`dumps(messages)` and the
`llm_string` of a real `ChatOpenAI`, captured by a cache that answers every lookup,
so no request leaves the process).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_tokenopt.cache.keys import digest, normalize_request, request_key
from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.requestkey import normalized_llm_string, request_digest
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError


class Capture(BaseCache):
    """Records each (prompt, llm_string) and answers it, so no request is sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        self.requests.append((prompt, llm_string))
        return [ChatGeneration(message=AIMessage("captured"))]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        raise AssertionError("never called: every lookup hits")

    def clear(self, **kwargs: Any) -> None:
        self.requests.clear()


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city."""
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """Return the local time in a city."""
    return f"noon in {city}"


class Answer(BaseModel):
    text: str


def openai_request(
    messages: list[BaseMessage], *, bind: dict[str, Any] | None = None, **settings: Any
) -> tuple[str, str]:
    """The (prompt, llm_string) langchain-core hands a cache for this ChatOpenAI call."""
    settings.setdefault("model", "gpt-4o-mini")
    settings.setdefault("base_url", "http://127.0.0.1:9/v1")
    settings.setdefault("api_key", "test")
    capture = Capture()
    model = ChatOpenAI(cache=capture, **settings)
    runnable: Any = model.bind(**bind) if bind else model
    runnable.invoke(messages)
    (request,) = capture.requests
    return request


def key_of(request: tuple[str, str]) -> str:
    return request_key(*request)


CONVERSATION: list[BaseMessage] = [
    SystemMessage("You are terse."),
    HumanMessage("Weather in Paris and Rome?"),
    AIMessage(
        "",
        tool_calls=[
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_A"},
            {"name": "get_weather", "args": {"city": "Rome"}, "id": "call_B"},
        ],
    ),
    ToolMessage("sunny", tool_call_id="call_A"),
    ToolMessage("rainy", tool_call_id="call_B"),
    AIMessage("Paris is sunny, Rome rainy."),
    HumanMessage("And tomorrow?"),
]


def replayed(messages: list[BaseMessage], suffix: str) -> list[BaseMessage]:
    """`messages` as another session sends them: new ids, metadata, hit markers, and
    tool-call ids renamed consistently."""
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage):
            calls = [{**call, "id": f"{call['id']}-{suffix}"} for call in message.tool_calls]
            out.append(
                message.model_copy(
                    update={
                        "id": f"run-{suffix}",
                        "tool_calls": calls,
                        "response_metadata": {
                            "id": f"chatcmpl-{suffix}",
                            "system_fingerprint": suffix,
                            CACHE_HIT_KEY: True,
                        },
                        "usage_metadata": {
                            "input_tokens": 5,
                            "output_tokens": len(suffix),
                            "total_tokens": 5 + len(suffix),
                            "total_cost": 0,
                        },
                    }
                )
            )
        elif isinstance(message, ToolMessage):
            out.append(
                message.model_copy(
                    update={"tool_call_id": f"{message.tool_call_id}-{suffix}", "artifact": suffix}
                )
            )
        else:
            out.append(message.model_copy(update={"id": f"msg-{suffix}"}))
    return out


# -- what does not change the key ------------------------------------------------


def test_ids_metadata_hit_markers_and_tool_call_id_spelling_do_not_change_the_key() -> None:
    assert key_of(openai_request(CONVERSATION)) == key_of(
        openai_request(replayed(CONVERSATION, "x7"))
    )


@pytest.mark.parametrize(
    "transport",
    [
        {"base_url": "http://10.0.0.1:8080/v1"},
        {"timeout": 12.5},
        {"max_retries": 9},
        {"api_key": "another-key"},
        {"organization": "org-1"},
    ],
    ids=lambda d: next(iter(d)),
)
def test_transport_settings_do_not_change_the_key(transport: dict[str, Any]) -> None:
    plain = openai_request(CONVERSATION)
    moved = openai_request(CONVERSATION, **transport)
    assert key_of(plain) == key_of(moved)
    assert request_key(*plain, mode="exact") != request_key(*moved, mode="exact") or (
        transport.keys() == {"api_key"}  # the key's value is never in llm_string
    )


# -- what does ---------------------------------------------------------------------


def _with(messages: list[BaseMessage], index: int, message: BaseMessage) -> list[BaseMessage]:
    return [*messages[:index], message, *messages[index + 1 :]]


WEATHER_SCHEMA = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
DIFFERENT_REQUESTS: dict[str, tuple[dict[str, Any], list[BaseMessage]]] = {
    "temperature": ({"temperature": 0.7}, CONVERSATION),
    "model": ({"model": "gpt-4o"}, CONVERSATION),
    "max_tokens": ({"max_tokens": 10}, CONVERSATION),
    "tools": ({"bind": {"tools": [WEATHER_SCHEMA]}}, CONVERSATION),
    "response_format": ({"bind": {"response_format": {"type": "json_object"}}}, CONVERSATION),
    "stop": ({"bind": {"stop": ["\n"]}}, CONVERSATION),
    "earlier human turn": ({}, _with(CONVERSATION, 1, HumanMessage("Weather in Paris and Oslo?"))),
    "earlier answer": ({}, _with(CONVERSATION, 5, AIMessage("Paris is sunny, Rome is rainy."))),
    "system prompt": ({}, _with(CONVERSATION, 0, SystemMessage("You are verbose."))),
    "tool result": ({}, _with(CONVERSATION, 3, ToolMessage("stormy", tool_call_id="call_A"))),
    "tool call arguments": (
        {},
        _with(
            CONVERSATION,
            2,
            AIMessage(
                "",
                tool_calls=[
                    {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_A"},
                    {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_B"},
                ],
            ),
        ),
    ),
    "which result answers which call": (
        {},
        _with(
            _with(CONVERSATION, 3, ToolMessage("sunny", tool_call_id="call_B")),
            4,
            ToolMessage("rainy", tool_call_id="call_A"),
        ),
    ),
    "tool error status": (
        {},
        _with(CONVERSATION, 3, ToolMessage("sunny", tool_call_id="call_A", status="error")),
    ),
    "message name": ({}, _with(CONVERSATION, 6, HumanMessage("And tomorrow?", name="bob"))),
    "last question": ({}, _with(CONVERSATION, 6, HumanMessage("And yesterday?"))),
}


@pytest.mark.parametrize("name", DIFFERENT_REQUESTS)
def test_requests_a_model_answers_differently_never_share_a_key(name: str) -> None:
    settings, messages = DIFFERENT_REQUESTS[name]
    assert key_of(openai_request(CONVERSATION)) != key_of(openai_request(messages, **settings))


def test_different_tools_and_structured_output_get_different_keys() -> None:
    model_kwargs = {"base_url": "http://127.0.0.1:9/v1", "api_key": "t", "model": "gpt-4o-mini"}
    builders: list[Callable[[ChatOpenAI], Runnable[Any, Any]]] = [
        lambda m: m.bind_tools([get_weather]),
        lambda m: m.bind_tools([get_time]),
        lambda m: m.bind_tools([get_weather, get_time]),
        lambda m: m.with_structured_output(Answer, method="json_schema"),
        lambda m: m.with_structured_output(Answer, method="function_calling"),
    ]
    captured = []
    for build in builders:
        capture = Capture()
        # the canned "captured" answer may not parse: the key is taken before that
        with contextlib.suppress(Exception):
            build(ChatOpenAI(cache=capture, **model_kwargs)).invoke([HumanMessage("hi")])
        captured.append(key_of(capture.requests[0]))
    assert len(set(captured)) == len(captured)


# -- the tool-call id bijection ----------------------------------------------------


def test_a_string_that_looks_like_a_placeholder_is_not_one() -> None:
    """A content equal to a renamed id's placeholder stays apart from the id."""
    calls = [{"name": "f", "args": {}, "id": "call_1"}]
    with_id = [AIMessage("", tool_calls=calls), ToolMessage("\x000", tool_call_id="call_1")]
    with_text = [AIMessage("", tool_calls=calls), ToolMessage("call_1", tool_call_id="call_1")]
    assert key_of(openai_request(with_id)) != key_of(openai_request(with_text))


ids = st.text(alphabet="abcXYZ_0-\x00", min_size=1, max_size=6)
texts = st.text(alphabet="ab \x00c", max_size=6)


@st.composite
def tool_conversations(draw: st.DrawFn) -> list[BaseMessage]:
    """A human question, then rounds of tool calls and their results."""
    messages: list[BaseMessage] = [HumanMessage(draw(texts) or "q")]
    for _ in range(draw(st.integers(1, 3))):
        call_ids = draw(st.lists(ids, min_size=1, max_size=3, unique=True))
        calls = [{"name": "f", "args": {"x": draw(texts)}, "id": i} for i in call_ids]
        messages.append(AIMessage(draw(texts), tool_calls=calls))
        order = draw(st.permutations(call_ids))
        messages += [ToolMessage(draw(texts), tool_call_id=i) for i in order]
    return messages


def rename(messages: list[BaseMessage], mapping: dict[str, str]) -> list[BaseMessage]:
    """Every string equal to an id, renamed (ids are opaque tokens: a text that
    repeats one, as a model quoting a call id, is renamed with it)."""

    def new(text: Any) -> Any:
        return mapping.get(text, text) if isinstance(text, str) else text

    out: list[BaseMessage] = []
    for m in messages:
        if isinstance(m, AIMessage):
            calls = [
                {**c, "id": new(c["id"]), "args": {k: new(v) for k, v in c["args"].items()}}
                for c in m.tool_calls
            ]
            out.append(AIMessage(new(m.content), tool_calls=calls))
        elif isinstance(m, ToolMessage):
            out.append(ToolMessage(new(m.content), tool_call_id=new(m.tool_call_id)))
        else:
            out.append(m.model_copy(update={"content": new(m.content)}))
    return out


def all_ids(messages: list[BaseMessage]) -> list[str]:
    found = []
    for m in messages:
        if isinstance(m, AIMessage):
            found += [c["id"] for c in m.tool_calls if c["id"]]
    return list(dict.fromkeys(found))


@given(tool_conversations(), st.randoms(use_true_random=False))
def test_keys_are_equal_under_a_consistent_renaming_of_tool_call_ids(
    messages: list[BaseMessage], random: Any
) -> None:
    found = all_ids(messages)
    fresh = [f"call_{random.randrange(10**9)}_{n}" for n in range(len(found))]
    renamed = rename(messages, dict(zip(found, fresh, strict=True)))
    assert request_key(dumps(messages), "llm") == request_key(dumps(renamed), "llm")


@given(tool_conversations(), tool_conversations())
def test_keys_differ_unless_the_requests_are_equal_up_to_renaming(
    a: list[BaseMessage], b: list[BaseMessage]
) -> None:
    """Same key <=> some bijection of ids turns one request into the other."""
    same_key = request_key(dumps(a), "llm") == request_key(dumps(b), "llm")
    ids_a, ids_b = all_ids(a), all_ids(b)
    equal_up_to_renaming = len(ids_a) == len(ids_b) and dumps(
        rename(a, dict(zip(ids_a, ids_b, strict=True)))
    ) == dumps(b)
    assert same_key == equal_up_to_renaming


@given(tool_conversations(), st.integers(0, 100), texts)
def test_changing_any_text_of_a_conversation_changes_its_key(
    messages: list[BaseMessage], pick: int, extra: str
) -> None:
    index = pick % len(messages)
    changed = [*messages]
    target = changed[index]
    changed[index] = target.model_copy(update={"content": f"{target.content}!{extra}"})
    assert request_key(dumps(messages), "llm") != request_key(dumps(changed), "llm")


# -- normalize_request: the material semantic matching compares ---------------------


def test_normalize_request_splits_off_the_last_question() -> None:
    a = normalize_request(*openai_request(CONVERSATION))
    b = normalize_request(*openai_request(_with(CONVERSATION, 6, HumanMessage("And later?"))))
    replay = normalize_request(*openai_request(replayed(CONVERSATION, "q")))
    assert (a.last_human_text, b.last_human_text) == ("And tomorrow?", "And later?")
    assert a.context == b.context == replay.context
    assert a.key != b.key and a.key == replay.key == key_of(openai_request(CONVERSATION))


def test_normalize_request_has_no_text_when_a_tool_result_is_last() -> None:
    request = normalize_request(*openai_request(CONVERSATION[:4]))
    assert request.last_human_text is None


def test_a_text_prompt_is_its_own_text() -> None:
    request = normalize_request("Tell me a joke", "llm")
    assert request.last_human_text == "Tell me a joke"
    assert request.key == request_key("Tell me a joke", "llm")
    assert request.key != request_key(dumps([HumanMessage("Tell me a joke")]), "llm")


def test_unreadable_or_deep_prompts_are_compared_as_they_are() -> None:
    deep = "[{" + '"a":[' * 300 + "]" * 300 + "}]"
    for prompt in ("[{not json", deep):
        assert request_key(prompt, "llm") == request_key(prompt, "llm")
        assert request_key(prompt, "llm") != request_key(prompt + " ", "llm")


# -- the cache ----------------------------------------------------------------------


def test_a_replayed_conversation_hits_the_normalized_cache_only() -> None:
    answer = [ChatGeneration(message=AIMessage("Tomorrow: sunny in both."))]
    normalized, exact = TokenOptCache(), TokenOptCache(key="exact")
    first, again = openai_request(CONVERSATION), openai_request(replayed(CONVERSATION, "s2"))
    for cache in (normalized, exact):
        cache.update(*first, answer)
    assert normalized.lookup(*again) is not None
    assert exact.lookup(*again) is None
    assert exact.lookup(*first) is not None


def test_exact_keys_are_the_keys_of_earlier_releases() -> None:
    cache = TokenOptCache(key="exact")
    cache.update("p", "llm", [Generation(text="t")])
    assert cache.store.get(f"tokenopt:cache:e:{digest('llm', 'p')}") is not None


def test_key_must_be_normalized_or_exact() -> None:
    with pytest.raises(InvalidArgumentError, match="normalized"):
        TokenOptCache(key="fuzzy")  # type: ignore[arg-type]


def test_a_fake_models_replayed_turns_hit() -> None:
    """Through `invoke`: the second session's turns are all served by the cache."""
    replies = iter([AIMessage(f"answer {n}") for n in range(10)])
    model = GenericFakeChatModel(messages=replies, cache=TokenOptCache())
    for _ in range(2):
        messages: list[BaseMessage] = []
        for turn in ("one", "two", "three"):
            messages += [HumanMessage(turn)]
            messages.append(model.invoke(messages))
    assert next(replies).content == "answer 3"  # 3 answers used for 6 calls


# -- one notion of identical: the tracker's prompt_hash agrees with the cache key ----


@given(tool_conversations(), tool_conversations(), st.booleans())
def test_the_trackers_digest_agrees_with_the_cache_key(
    a: list[BaseMessage], b: list[BaseMessage], replay: bool
) -> None:
    if replay:
        b = replayed(a, "r")
    same_key = request_key(dumps(a), "llm") == request_key(dumps(b), "llm")
    same_digest = request_digest(a, None, {}) == request_digest(b, None, {})
    assert same_key == same_digest


def test_chatopenais_llm_string_is_read_not_compared_whole() -> None:
    """Pins langchain-core's `llm_string` layout (docs/internals.md): the model's JSON,
    "---", then `str(sorted(call kwargs))`; a part it cannot read is compared whole."""
    _, llm_string = openai_request(CONVERSATION, bind={"tools": [WEATHER_SCHEMA]})
    normalized = json.loads(normalized_llm_string(llm_string))
    assert normalized["model"]["kwargs"]["model_name"] == "gpt-4o-mini"
    assert "openai_api_base" not in normalized["model"]["kwargs"]
    assert "get_weather" in normalized["params"]["repr"]


def test_an_unreadable_llm_string_is_compared_whole() -> None:
    for llm_string in ("{broken---[]", '{"a": 1}---[(unreadable', "not a model at all"):
        normalized = json.loads(normalized_llm_string(llm_string))
        assert llm_string in (normalized["params"].get("text"), llm_string)
        assert request_key("p", llm_string) != request_key("p", llm_string + "x")


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_prompt_and_llm_string_get_a_key(prompt: str, llm_string: str) -> None:
    key = request_key(prompt, llm_string)
    assert len(key) == 64 and key == request_key(prompt, llm_string)
    assert key != request_key(prompt + "x", llm_string)


@given(st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda c: st.lists(c)))
def test_json_looking_garbage_never_breaks_a_key(value: Any) -> None:
    for prompt in (f"[{{{value!r}", json.dumps([{"lc": 1, "kwargs": value}])):
        assert len(request_key(prompt, f"{{}}---[{value!r}]")) == 64


def test_a_key_that_is_not_a_string_is_a_type_error() -> None:
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ArgumentTypeError, match="key"):
        TokenOptCache(key=deep)  # type: ignore[arg-type]
