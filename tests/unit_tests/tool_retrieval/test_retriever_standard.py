"""LangChain's standard retriever suite on `ToolRetriever` (no network: tools are local).

The suite checks that `k` set on the constructor or passed to `invoke` gives exactly
that many `Document`s, so the example query matches every registered tool.
"""

from __future__ import annotations

from typing import Any

from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_tokenopt.tool_retrieval.retriever import ToolRetriever


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


@tool
def get_city_time(city: str) -> str:
    """Local time in a city."""
    return "noon"


@tool
def city_population(city: str) -> int:
    """How many people live in a city."""
    return 1


@tool
def city_hotels(city: str, nights: int) -> list[str]:
    """Hotels with free rooms in a city."""
    return []


class TestToolRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return ToolRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"tools": [get_weather, get_city_time, city_population, city_hotels], "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "what is the weather and the time in this city?"
