"""Shared parts of the middleware tests, and what every middleware module promises.

`ScriptedChatModel` is langchain-core's `GenericFakeChatModel` with a real `bind_tools`
(OpenAI schemas, as `ChatOpenAI` binds them): it replies with the scripted messages
(tool calls included) and records, per model call, the messages and tool names it
was actually sent. The other middleware test files import it from here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

ROOT = Path(__file__).resolve().parents[2]


class ScriptedChatModel(GenericFakeChatModel):
    """Replies with `messages` in order; `calls[i]` is what call i was sent."""

    calls: list[dict[str, Any]] = Field(default_factory=list)
    model_name: str = "gpt-4o-mini"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        schemas = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=schemas, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools") or []
        self.calls.append(
            {"messages": list(messages), "tools": [t["function"]["name"] for t in tools]}
        )
        return super()._generate(messages, stop, run_manager, **kwargs)


def scripted(replies: Iterable[AIMessage | str]) -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter(list(replies)))


def call_tool(name: str, call_id: str = "c1", **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def with_usage(message: AIMessage, input_tokens: int, output_tokens: int) -> AIMessage:
    return message.model_copy(
        update={
            "usage_metadata": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
        }
    )


# ------------------------------------------------------------------------ tools


@tool
def get_weather(city: str) -> str:
    """Current weather and temperature forecast for a city."""
    return f'{{\n    "city":   "{city}",\n    "sky":    "sunny",\n    "celsius":  21\n}}'


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
    """Convert an amount of money from one currency to another at today's exchange rate."""
    return f"{amount} {from_currency} is {amount * 160} {to_currency}"


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email message to a recipient."""
    return "sent"


@tool
def search_flights(origin: str, destination: str, date: str) -> str:
    """Search airline flights between two airports on a date."""
    return "[]"


@tool
def book_hotel(city: str, nights: int) -> str:
    """Book a hotel room in a city for a number of nights."""
    return "booked"


TOOLS = [get_weather, convert_currency, send_email, search_flights, book_hotel]


def tool_names(messages: Sequence[BaseMessage]) -> list[str]:
    return [m.name or "" for m in messages if isinstance(m, ToolMessage)]


# ------------------------------------------------------------------------ tests


def test_scripted_model_records_what_each_call_was_sent() -> None:
    model = scripted([call_tool("get_weather", city="Oslo"), "done"])
    bound = model.bind_tools([get_weather])
    first = bound.invoke("weather?")
    assert isinstance(first, AIMessage)
    assert first.tool_calls[0]["name"] == "get_weather"
    assert model.calls[0]["tools"] == ["get_weather"]
    assert model.invoke("again").content == "done"
    assert model.calls[1]["tools"] == []


def test_importing_middleware_without_langchain_names_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["langchain"] = None  # as if the langchain package were not installed
        sys.modules["langchain.agents"] = None
        sys.modules["langchain.agents.middleware"] = None
        from langchain_tokenopt.errors import MissingExtraError
        try:
            import langchain_tokenopt.middleware
        except MissingExtraError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "pip install 'langchain-tokenopt[langchain]'" in done.stdout
