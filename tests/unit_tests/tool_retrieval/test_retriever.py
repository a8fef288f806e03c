"""`ToolRetriever` and `bind_relevant_tools`: which tools get bound, and at what cost.

Models are langchain-core's `GenericFakeChatModel` with a real `bind_tools` (below):
it records the tool schemas each request actually receives.
"""

from __future__ import annotations

import logging
import re
import unittest.mock
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from langchain_tokenopt.core.textindex import TextIndex
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.tool_retrieval.retriever import (
    ToolRetriever,
    split_identifier,
    tool_document,
)
from langchain_tokenopt.tool_retrieval.runnable import bind_relevant_tools
from tests.support.agent_doubles import ScriptedChatModel, scripted

# ------------------------------------------------------------------ registry


@tool
def get_weather(city: str) -> str:
    """Current weather and temperature forecast for a city."""
    return "sunny"


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
    """Convert an amount of money from one currency to another at today's exchange rate."""
    return amount


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email message to a recipient."""
    return "sent"


@tool
def search_flights(origin: str, destination: str, date: str) -> list[str]:
    """Search airline flights between two airports on a date."""
    return []


@tool
def book_hotel(city: str, nights: int) -> str:
    """Reserve a hotel room in a city for some nights."""
    return "booked"


def calculate_triangle_area(base: float, height: float) -> float:
    """Area of a triangle from its base and height."""
    return base * height / 2


class StockQuote(BaseModel):
    """Latest share price of a company listed on a stock exchange."""

    ticker: str = Field(description="Ticker symbol such as AAPL")


PRESENTATION = {
    "type": "function",
    "function": {
        "name": "GeometryPresentation_createPresentation",
        "description": "Initialize the GIS view inside a UI composite.",
        "parameters": {
            "type": "object",
            "properties": {
                "controller": {
                    "type": "string",
                    "description": "Result set controller of the map.",
                },
            },
        },
    },
}

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_record",
        "description": "Fetch one row.",
        "parameters": {
            "type": "object",
            "properties": {
                "isbn": {
                    "type": "string",
                    "description": "International Standard Book Number of a library book.",
                },
            },
        },
    },
}


def registry() -> list[Any]:
    return [
        get_weather,
        convert_currency,
        send_email,
        search_flights,
        book_hotel,
        calculate_triangle_area,
        StockQuote,
        PRESENTATION,
        LOOKUP,
    ]


def names_of(docs_or_matches: Sequence[Any]) -> list[str]:
    return [
        item.metadata["name"] if isinstance(item, Document) else item.name
        for item in docs_or_matches
    ]


# --------------------------------------------------------------- retrieval


def test_split_identifier_splits_snake_camel_dots_and_acronyms() -> None:
    assert split_identifier("calculate_triangle_area") == "calculate triangle area"
    assert split_identifier("GeometryPresentation.createPresentation") == (
        "Geometry Presentation create Presentation"
    )
    assert split_identifier("parseHTTPResponse-v2") == "parse HTTP Response v2"


def test_tool_document_weights_the_name_and_includes_arguments() -> None:
    text = tool_document(convert_to_openai_tool(LOOKUP))
    lines = text.splitlines()
    assert lines[:3] == ["lookup_record", "lookup record", "lookup record"]
    assert "Fetch one row." in lines
    assert "isbn International Standard Book Number of a library book." in lines


def test_retrieves_the_tool_the_request_is_about() -> None:
    retriever = ToolRetriever(registry(), k=1)
    assert names_of(retriever.invoke("What's the weather like in Oslo?")) == ["get_weather"]
    assert names_of(retriever.invoke("How much is 20 dollars in yen?")) != ["get_weather"]
    assert names_of(retriever.invoke("convert 20 USD to JPY currency")) == ["convert_currency"]
    assert names_of(retriever.invoke("area of a triangle with base 3")) == [
        "calculate_triangle_area"
    ]


def test_camel_case_names_are_searchable_by_their_words() -> None:
    retriever = ToolRetriever(registry(), k=1)
    assert names_of(retriever.invoke("create a presentation")) == [
        "GeometryPresentation_createPresentation"
    ]


def test_argument_descriptions_are_indexed() -> None:
    # "book number" appears only in the argument's description
    retriever = ToolRetriever(registry(), k=1)
    assert names_of(retriever.invoke("find the ISBN of this library book")) == ["lookup_record"]


def test_character_ngrams_match_word_variants() -> None:
    retriever = ToolRetriever(registry(), k=1)
    assert names_of(retriever.invoke("triangles")) == ["calculate_triangle_area"]


def test_accepts_basetools_functions_pydantic_classes_and_dicts() -> None:
    retriever = ToolRetriever(registry())
    assert set(retriever.tool_names) == {
        "get_weather",
        "convert_currency",
        "send_email",
        "search_flights",
        "book_hotel",
        "calculate_triangle_area",
        "StockQuote",
        "GeometryPresentation_createPresentation",
        "lookup_record",
    }
    assert names_of(retriever.select("share price of a stock", k=1)) == ["StockQuote"]


def test_documents_carry_name_score_and_exact_schema_tokens() -> None:
    counter = TokenCounter("gpt-4o")
    retriever = ToolRetriever(registry(), k=3)
    docs = retriever.invoke("book a hotel room in Rome for three nights")
    assert docs[0].metadata["name"] == "book_hotel"
    assert docs[0].page_content == "Reserve a hotel room in a city for some nights."
    scores = [doc.metadata["score"] for doc in docs]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores)
    for doc in docs:
        tool_object = retriever.get_tool(doc.metadata["name"])
        assert doc.metadata["schema_tokens"] == counter.count_tools([tool_object])


def _expected_scores(retriever: ToolRetriever, query: str) -> dict[str, float]:
    """Cosine of each registered tool's document (fresh index of the same kind) times
    (its words / the longest document's words) ** 0.1."""
    documents = {
        name: tool_document(convert_to_openai_tool(retriever.get_tool(name)))
        for name in retriever.tool_names
    }
    index = TextIndex(char_ngrams=True, char_ngram_range=(4, 5))
    index.add_many(documents.items())
    lengths = {name: len(re.findall(r"\w+", text)) for name, text in documents.items()}
    longest = max(lengths.values())
    return {
        str(name): cosine * (lengths[str(name)] / longest) ** 0.1
        for name, cosine in index.query(query, k=len(documents))
    }


def test_scores_are_cosines_discounted_for_short_documents() -> None:
    # pivoted length normalization: cosine favours terse tools over detailed ones
    retriever = ToolRetriever(registry(), k=9)
    query = "book a hotel room and a flight, then email the weather"
    expected = _expected_scores(retriever, query)
    matches = retriever.select(query)
    assert len(matches) == len(expected) > 3
    for match in matches:
        assert match.score == pytest.approx(expected[match.name], rel=1e-9)
    # the discount follows the registry: without the longest document, the next one
    # is the reference
    longest = max(
        retriever.tool_names,
        key=lambda name: len(
            re.findall(r"\w+", tool_document(convert_to_openai_tool(retriever.get_tool(name))))
        ),
    )
    retriever.remove_tools([longest])
    expected = _expected_scores(retriever, query)
    matches = retriever.select(query)
    assert len(matches) == len(expected)
    for match in matches:
        assert match.score == pytest.approx(expected[match.name], rel=1e-9)


def _weather_tool(name: str, description: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name."}},
            },
        },
    }


WEATHER_LOOKALIKES = [
    _weather_tool("weather_forecast_detailed", "Detailed weather forecast for a city."),
    _weather_tool("hourly_weather_forecast", "Hourly weather forecast for a city."),
    _weather_tool("weather_alerts", "Severe weather alerts and forecast warnings for a city."),
]
TWO_REQUESTS = (
    "What is the detailed hourly weather forecast for Paris, with any weather alerts? "
    "Also convert 200 dollars to euros."
)


def test_a_request_of_several_sentences_gets_a_tool_for_each_part() -> None:
    retriever = ToolRetriever([*registry(), *WEATHER_LOOKALIKES], k=3)
    # what one cosine over the whole request ranks first: weather tools only
    plain = _expected_scores(retriever, TWO_REQUESTS)
    plain_top = sorted(plain, key=lambda name: -plain[name])[:3]
    assert "convert_currency" not in plain_top
    assert all("weather" in name for name in plain_top)
    chosen = names_of(retriever.select(TWO_REQUESTS))
    assert len(chosen) == 3
    assert chosen[0] == plain_top[0]  # the best match of the whole request stays first
    assert "convert_currency" in chosen
    # one sentence asking for the same things is one part: ranked by score alone
    one_part = TWO_REQUESTS.replace("? Also", ", also")
    expected = _expected_scores(retriever, one_part)
    assert names_of(retriever.select(one_part)) == sorted(expected, key=lambda n: -expected[n])[:3]


def test_scores_of_a_several_part_request_are_the_best_of_whole_and_parts() -> None:
    retriever = ToolRetriever([*registry(), *WEATHER_LOOKALIKES], k=5)
    whole = _expected_scores(retriever, TWO_REQUESTS)
    parts = [_expected_scores(retriever, part) for part in re.split(r"(?<=\?) ", TWO_REQUESTS)]
    for match in retriever.select(TWO_REQUESTS):
        best = max(whole.get(match.name, 0.0), *(part.get(match.name, 0.0) for part in parts))
        assert match.score == pytest.approx(best, rel=1e-9)
        assert 0.0 < match.score <= 1.0


def test_a_tool_the_request_names_ranks_first() -> None:
    retriever = ToolRetriever([*registry(), *WEATHER_LOOKALIKES], k=2)
    query = "Use weather_alerts to get the detailed hourly weather forecast for Paris."
    plain = _expected_scores(retriever, query)
    assert max(plain, key=lambda name: plain[name]) != "weather_alerts"
    assert names_of(retriever.select(query))[0] == "weather_alerts"
    # camelCase and a dotted name count too; a plain word ("search") is not a name
    flights = {
        "type": "function",
        "function": {"name": "flightStatus", "description": "Status of a flight."},
    }
    search = {"type": "function", "function": {"name": "search", "description": "Web search."}}
    retriever = ToolRetriever([*registry(), flights, search], k=1)
    assert names_of(retriever.select("call flightStatus: weather in Paris?")) == ["flightStatus"]
    assert names_of(retriever.select("search the weather forecast in Paris")) == ["get_weather"]
    # a name that is not registered is just words
    assert names_of(retriever.select("use no_such_tool for the weather")) == ["get_weather"]


def test_a_named_tool_still_respects_k_the_budget_and_the_registry() -> None:
    retriever = ToolRetriever([*registry(), *WEATHER_LOOKALIKES], k=1)
    retriever.remove_tools(["weather_alerts"])
    assert names_of(retriever.select("Use weather_alerts for Paris weather.")) == ["get_weather"]
    assert retriever.select("Use get_weather for Paris.", k=0) == []
    budget = retriever.schema_tokens("convert_currency") - 1
    assert "convert_currency" not in names_of(
        retriever.select("Use convert_currency for 5 dollars.", token_budget=budget)
    )


def test_a_request_of_many_sentences_is_read_in_a_bounded_number_of_parts() -> None:
    from langchain_tokenopt.tool_retrieval import retriever as tools_module

    sentences = [f"Day {i}: what weather should we expect?" for i in range(30)]
    parts = tools_module._request_parts(" ".join(sentences))
    assert len(parts) == tools_module._MAX_PARTS
    assert " ".join(parts) == " ".join(sentences)  # grouped, nothing dropped
    assert tools_module._request_parts("One line.\n\nAnother; a third? Yes!") == [
        "One line.",
        "Another;",
        "a third?",
        "Yes!",
    ]
    assert tools_module._request_parts("巴黎天气怎么样？把100美元换成欧元。") == [
        "巴黎天气怎么样？",
        "把100美元换成欧元。",
    ]
    assert tools_module._request_parts(" ... ?! ") == []
    retriever = ToolRetriever(registry(), k=2)
    many = " ".join(sentences) + " Then convert 200 dollars to euros."
    assert set(names_of(retriever.select(many))) == {"get_weather", "convert_currency"}


REQUEST_WORDS = "weather forecast Paris hourly alerts convert dollars euros email flights hotel"
REQUEST_MARKS = "get_weather sendEmail ΟΔΟΣ İstanbul a 42 --- ... 。 ？"
REQUEST_SPACES = [" ", "\n", "\n\n", "\t", "\u3000", "\xa0", ". ", "? ", "! ", "; "]
REQUEST_PIECES = st.lists(
    st.sampled_from([*REQUEST_WORDS.split(), *REQUEST_MARKS.split(), *REQUEST_SPACES]),
    max_size=60,
).map("".join)
PIECE_RETRIEVERS = [ToolRetriever([*registry(), *WEATHER_LOOKALIKES], k=3) for _ in range(2)]


def _select_as_read_whole(reference: ToolRetriever, request: str, k: int) -> list[Any]:
    """`select` as before `query_joined` and the dense main weights of `similarities`:
    the request read whole (`query`), the stored weights computed for each call."""
    from langchain_tokenopt.core import textindex

    reference_index = reference._index
    setattr(  # noqa: B010 (an instance attribute shadowing the method)
        reference_index,
        "query_joined",
        lambda parts, k: reference_index.query(request, k=k),
    )
    with unittest.mock.patch.object(textindex, "_DENSE_WEIGHTS", 0):
        return [(match.name, match.score) for match in reference.select(request, k=k)]


@given(request=REQUEST_PIECES)
def test_a_request_read_part_by_part_ranks_exactly_as_read_whole(request: str) -> None:
    fast, reference = PIECE_RETRIEVERS
    expected = _select_as_read_whole(reference, request, 4)
    assert [(match.name, match.score) for match in fast.select(request, k=4)] == expected


def test_real_requests_read_part_by_part_rank_exactly_as_read_whole() -> None:
    import json
    from pathlib import Path

    import langchain_tokenopt
    from langchain_tokenopt.tool_retrieval import retriever as tools_module

    path = Path(langchain_tokenopt.__file__).parent / "data" / "sample_requests.jsonl"
    registries: dict[str, list[Any]] = {"ours": [*registry(), *WEATHER_LOOKALIKES]}
    requests: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        if sample.get("tools"):
            registries[json.dumps(sample["tools"], sort_keys=True)] = sample["tools"]
        for message in sample["messages"]:
            content = message["content"]
            if message["role"] == "user" and isinstance(content, str):
                requests[content] = None
            elif message["role"] == "user":
                requests.update(
                    dict.fromkeys(block["text"] for block in content if "text" in block)
                )
    parted = [request for request in requests if len(tools_module._request_parts(request)) > 1]
    assert len(registries) >= 2 and len(parted) >= 10
    for tools in registries.values():
        fast, reference = ToolRetriever(tools, k=3), ToolRetriever(tools, k=3)
        for request in requests:
            expected = _select_as_read_whole(reference, request, 3)
            assert [(match.name, match.score) for match in fast.select(request)] == expected


@given(
    request=REQUEST_PIECES,
    registered=st.lists(
        st.sampled_from(["get_weather", "sendEmail", "send_email", "e-mail", "a.b", "x"])
    ),
)
def test_registered_names_are_the_named_tools_that_are_registered(
    request: str, registered: list[str]
) -> None:
    from langchain_tokenopt.tool_retrieval import retriever as tools_module

    names = dict.fromkeys(registered)
    expected = [name for name in tools_module._named_tools(request) if name in names]
    assert tools_module._registered_names(request, names) == expected


def test_a_request_is_read_once_when_its_parts_hold_all_its_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    retriever = ToolRetriever(registry(), k=2)
    joined: list[list[str]] = []
    read_joined = retriever._index.query_joined

    def spy(parts: list[str], k: int) -> Any:
        joined.append(parts)
        return read_joined(parts, k=k)

    monkeypatch.setattr(retriever._index, "query_joined", spy)
    retriever.select("Weather in Paris?\n\nAlso convert 200 dollars to euros.")
    assert joined == [["Weather in Paris?", "Also convert 200 dollars to euros."]]
    # a line of dashes is no part, and a full-width stop joins words with no space
    # between them: the request is read whole
    for request in ("Weather in Paris?\n---\nConvert dollars.", "巴黎天气？把美元换成欧元。"):
        retriever.select(request)
    assert len(joined) == 1


def test_get_tool_returns_the_registered_object() -> None:
    retriever = ToolRetriever(registry())
    assert retriever.get_tool("get_weather") is get_weather
    assert retriever.get_tool("calculate_triangle_area") is calculate_triangle_area
    assert retriever.get_tool("lookup_record") is LOOKUP
    with pytest.raises(KeyError, match="no_such_tool"):
        retriever.get_tool("no_such_tool")


def test_k_caps_results_and_a_call_can_override_it() -> None:
    retriever = ToolRetriever(registry(), k=2)
    query = "city weather hotel flights email currency"
    assert len(retriever.invoke(query)) == 2
    assert len(retriever.invoke(query, k=4)) == 4
    assert len(retriever.select(query, k=1)) == 1
    assert retriever.select(query, k=0) == []


def test_a_query_about_nothing_registered_gets_no_tools() -> None:
    retriever = ToolRetriever(registry(), k=5)
    assert retriever.invoke("zzzz qqqq") == []
    assert retriever.invoke("") == []


def test_a_long_query_is_read_at_its_head_and_tail() -> None:
    retriever = ToolRetriever(registry(), k=5)
    filler = "zzzz " * 1000
    with_middle = retriever.select(f"{filler} weather forecast {filler} convert this currency")
    without_middle = retriever.select(f"{filler} {filler} convert this currency")
    assert with_middle == without_middle
    assert with_middle[0].name == "convert_currency"


def test_retrieval_is_the_same_sync_and_async() -> None:
    import asyncio

    retriever = ToolRetriever(registry(), k=3)
    query = "flights from Paris to Rome"
    assert names_of(asyncio.run(retriever.ainvoke(query))) == names_of(retriever.invoke(query))


# ------------------------------------------------------------------- budget


def test_selection_never_exceeds_the_token_budget() -> None:
    counter = TokenCounter("gpt-4o")
    retriever = ToolRetriever(registry(), k=9)
    query = "weather currency email flights hotel triangle stock presentation book"
    everything = retriever.select(query)
    assert len(everything) == 9
    full_cost = counter.count_tools([match.tool for match in everything])
    for budget in range(0, full_cost + 20, 7):
        matches = retriever.select(query, token_budget=budget)
        cost = counter.count_tools([match.tool for match in matches])
        assert cost <= budget
        # greedy: no skipped tool would still have fitted
        chosen = {match.name for match in matches}
        for other in everything:
            if other.name not in chosen:
                assert counter.count_tools([*(m.tool for m in matches), other.tool]) > budget


def test_budget_skips_a_tool_too_large_for_the_next_best_that_fits() -> None:
    big = {
        "type": "function",
        "function": {
            "name": "weather_report",
            "description": "Weather report. " + "Very detailed. " * 60,
            "parameters": {"type": "object", "properties": {}},
        },
    }
    retriever = ToolRetriever([big, get_weather], k=2)
    assert names_of(retriever.select("weather report")) == ["weather_report", "get_weather"]
    budget = retriever.schema_tokens("get_weather") + 5
    assert retriever.schema_tokens("weather_report") > budget
    assert names_of(retriever.select("weather report", token_budget=budget)) == ["get_weather"]


def test_budget_set_on_the_retriever_applies_to_invoke() -> None:
    retriever = ToolRetriever(registry(), k=5, token_budget=0)
    assert retriever.invoke("weather in Oslo") == []


# ----------------------------------------------------------- always_include


def test_always_included_tools_come_first_even_past_k() -> None:
    retriever = ToolRetriever(registry(), k=1, always_include=("send_email",))
    matches = retriever.select("weather in Oslo")
    assert names_of(matches) == ["send_email", "get_weather"]
    assert matches[0].score == 0.0
    # an always-included tool that also matches is not counted twice
    names = names_of(retriever.select("send an email message"))
    assert names[0] == "send_email"
    assert names.count("send_email") == 1
    assert len(names) == 2


def test_always_include_must_name_registered_tools() -> None:
    with pytest.raises(ValueError, match="not in the registry"):
        ToolRetriever(registry(), always_include=("nope",))


def test_always_included_tool_over_budget_is_kept_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    retriever = ToolRetriever(registry(), always_include=("send_email",))
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.tool_retrieval.retriever"):
        matches = retriever.select("weather", token_budget=1)
    assert names_of(matches) == ["send_email"]
    assert "budget" in caplog.text


# ----------------------------------------------------------------- registry


def test_added_tools_are_indexed_incrementally(monkeypatch: pytest.MonkeyPatch) -> None:
    retriever = ToolRetriever(registry(), k=1)
    index = retriever._index
    indexed: list[list[str]] = []
    real_add_many = index.add_many

    def recording_add_many(items: Any) -> None:
        items = list(items)
        indexed.append([key for key, _ in items])
        real_add_many(items)

    monkeypatch.setattr(index, "add_many", recording_add_many)

    @tool
    def play_music(song: str) -> str:
        """Play a song on the speakers."""
        return "playing"

    retriever.add_tools([play_music])
    assert indexed == [["play_music"]]  # only the new tool was indexed
    assert retriever._index is index
    assert names_of(retriever.invoke("play a song")) == ["play_music"]


def test_removed_tools_are_never_retrieved_again() -> None:
    retriever = ToolRetriever(registry(), k=3)
    assert "get_weather" in names_of(retriever.invoke("weather forecast"))
    assert retriever.remove_tools(["get_weather", "unknown"]) == ["get_weather"]
    assert "get_weather" not in names_of(retriever.invoke("weather forecast"))
    assert retriever.remove_tools([book_hotel]) == ["book_hotel"]
    assert "book_hotel" not in retriever.tool_names
    with pytest.raises(KeyError):
        retriever.get_tool("get_weather")


def test_a_tool_with_a_registered_name_replaces_it() -> None:
    retriever = ToolRetriever(registry(), k=1)
    replacement = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Tide tables for a harbour."},
    }
    retriever.add_tools([replacement])
    assert retriever.get_tool("get_weather") is replacement
    [doc] = retriever.invoke("tide tables")
    assert doc.metadata["name"] == "get_weather"
    assert doc.page_content == "Tide tables for a harbour."
    assert len(retriever.tool_names) == len(registry())


def test_a_bad_tool_raises_and_registers_nothing() -> None:
    retriever = ToolRetriever([get_weather])
    with pytest.raises(TypeError, match="Tool 1"):
        retriever.add_tools([send_email, 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a tool"):
        retriever.add_tools([send_email, "send_email"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a function tool"):
        retriever.add_tools([{"type": "web_search_preview"}])
    with pytest.raises(TypeError, match="iterable"):
        retriever.add_tools(send_email)  # type: ignore[arg-type]
    assert retriever.tool_names == ["get_weather"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"k": -1}, ValueError),
        ({"k": "3"}, TypeError),
        ({"k": True}, TypeError),
        ({"token_budget": 2.5}, TypeError),
        ({"token_budget": -5}, ValueError),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ToolRetriever(registry(), **kwargs)


def test_bad_select_arguments_are_rejected() -> None:
    retriever = ToolRetriever(registry())
    with pytest.raises(TypeError):
        retriever.select(["weather"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        retriever.select("weather", k=-1)
    with pytest.raises(TypeError):
        retriever.select("weather", token_budget=1.5)  # type: ignore[arg-type]


# ------------------------------------------------------------------ binding


def fake_model(replies: int = 5) -> ScriptedChatModel:
    return scripted(["ok here you go"] * replies)


def weather_call_history() -> list[BaseMessage]:
    return [
        HumanMessage("What's the weather in Oslo?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1"),
        AIMessage("It is sunny in Oslo."),
    ]


def test_binds_only_the_selected_tools() -> None:
    model = fake_model()
    runnable = bind_relevant_tools(model, registry(), k=2)
    reply = runnable.invoke("Convert 20 euros to US dollars")
    assert reply.content == "ok here you go"
    assert model.requests[-1] is not None
    assert len(model.requests[-1]) == 2
    assert model.requests[-1][0] == "convert_currency"


def test_keeps_tools_already_called_in_the_conversation() -> None:
    model = fake_model()
    runnable = bind_relevant_tools(model, registry(), k=1)
    history = [*weather_call_history(), HumanMessage("Send an email to Ann about it")]
    runnable.invoke(history)
    assert model.requests[-1] == ["get_weather", "send_email"]


def test_never_binds_a_called_tool_that_is_no_longer_registered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = fake_model()
    retriever = ToolRetriever(registry(), k=1)
    retriever.remove_tools(["get_weather"])
    runnable = bind_relevant_tools(model, retriever)
    history = [*weather_call_history(), HumanMessage("Send an email to Ann about it")]
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.tool_retrieval.retriever"):
        runnable.invoke(history)
    assert model.requests[-1] == ["send_email"]
    assert "get_weather" in caplog.text
    assert "not in the registry" in caplog.text


def test_recent_turns_inform_a_follow_up_question() -> None:
    history = [
        HumanMessage("What's the weather forecast in Oslo?"),
        AIMessage("Rain in Oslo."),
        HumanMessage("And in Bergen tomorrow?"),
    ]
    with_context = bind_relevant_tools(fake_model(), registry(), k=1, recent_turns=2)
    without = bind_relevant_tools(fake_model(), registry(), k=1, recent_turns=0)
    assert names_of(with_context.select_tools(history)) == ["get_weather"]
    assert "get_weather" not in names_of(without.select_tools(history))


def test_the_latest_message_outweighs_recent_turns() -> None:
    history = [
        HumanMessage("What's the weather forecast in Oslo?"),
        AIMessage("Rain in Oslo."),
        HumanMessage("Convert 20 euros to dollars"),
    ]
    runnable = bind_relevant_tools(fake_model(), registry(), k=1)
    assert names_of(runnable.select_tools(history)) == ["convert_currency"]
    both = bind_relevant_tools(fake_model(), registry(), k=2)
    assert names_of(both.select_tools(history)) == ["convert_currency", "get_weather"]


def test_accepts_prompt_values_and_dicts_with_messages() -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    model = fake_model()
    chain = prompt | bind_relevant_tools(model, registry(), k=1)
    chain.invoke({"question": "Search flights from Paris to Rome"})
    assert model.requests[-1] == ["search_flights"]

    runnable = bind_relevant_tools(model, registry(), k=1)
    runnable.invoke({"messages": [("user", "book a hotel room in Rome")]})
    assert model.requests[-1] == ["book_hotel"]


def test_with_no_relevant_tool_the_model_is_called_without_tools() -> None:
    model = fake_model()
    bind_relevant_tools(model, registry()).invoke("zzzz qqqq")
    assert model.requests == [None]


def test_token_budget_limits_what_is_bound() -> None:
    counter = TokenCounter("gpt-4o")
    model = fake_model()
    retriever = ToolRetriever(registry())
    budget = retriever.schema_tokens("search_flights") + 2
    runnable = bind_relevant_tools(model, retriever, k=5, token_budget=budget)
    runnable.invoke("search flights to a city with a hotel and good weather")
    bound = model.requests[-1]
    assert bound is not None and bound
    assert counter.count_tools([retriever.get_tool(name) for name in bound]) <= budget


def test_streaming_binds_the_same_tools() -> None:
    model = fake_model()
    runnable = bind_relevant_tools(model, registry(), k=1)
    chunks = list(runnable.stream("weather in Oslo please"))
    assert "".join(str(chunk.content) for chunk in chunks) == "ok here you go"
    assert len(chunks) > 1
    assert model.requests == [["get_weather"]]


async def test_async_invoke_and_stream_bind_the_same_tools() -> None:
    model = fake_model()
    runnable = bind_relevant_tools(model, registry(), k=1)
    reply = await runnable.ainvoke("weather in Oslo please")
    assert reply.content == "ok here you go"
    chunks = [chunk async for chunk in runnable.astream("convert 5 euros to yen currency")]
    assert "".join(str(chunk.content) for chunk in chunks) == "ok here you go"
    assert model.requests == [["get_weather"], ["convert_currency"]]


def test_bind_kwargs_reach_bind_tools() -> None:
    model = fake_model()
    runnable = bind_relevant_tools(model, registry(), k=1, tool_choice="any")
    bound, _ = runnable._prepare("weather in Oslo")
    assert bound.kwargs["tool_choice"] == "any"  # type: ignore[attr-defined]


def test_batch_selects_per_input() -> None:
    model = fake_model()
    runnable = bind_relevant_tools(model, registry(), k=1)
    runnable.batch(["weather in Oslo", "send an email to Bob"], config={"max_concurrency": 1})
    assert model.requests == [["get_weather"], ["send_email"]]


@pytest.mark.parametrize("bad", [42, {"question": "hi"}, [object()]])
def test_unreadable_input_raises_type_error(bad: Any) -> None:
    runnable = bind_relevant_tools(fake_model(), registry())
    with pytest.raises(TypeError):
        runnable.invoke(bad)


def test_bind_relevant_tools_rejects_a_non_chat_model() -> None:
    with pytest.raises(TypeError, match="chat model"):
        bind_relevant_tools("gpt-4o", registry())  # type: ignore[arg-type]
