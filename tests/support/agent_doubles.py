"""Test doubles for agent (middleware) tests: a scripted chat model, travel tools and
a scripted travel conversation.

`ScriptedChatModel` is langchain-core's `GenericFakeChatModel` with a real `bind_tools`
(OpenAI schemas, as `ChatOpenAI` binds them): it replies with the scripted messages
(tool calls included) and records, per model call, the messages and tool names it
was actually sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field


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


# ------------------------------------------------------------ a travel conversation

SYSTEM = "You are a concise travel assistant."
CITIES = ["Oslo", "Rome", "Lima", "Kyiv", "Pune", "Cork", "Nice", "Bern", "Riga", "Doha"]


def question(i: int) -> str:
    return (
        f"Question {i}: I am planning trip number {i} to {CITIES[i % len(CITIES)]} next "
        f"month with my family; what should we pack, and is the weather usually mild there?"
    )


def replies(turns: int) -> list[AIMessage | str]:
    script: list[AIMessage | str] = []
    for i in range(turns):
        if i % 3 == 1:
            script.append(call_tool("get_weather", call_id=f"c{i}", city=CITIES[i % 10]))
        script.append(
            f"Answer {i}: pack layers, a rain jacket and comfortable shoes for "
            f"{CITIES[i % len(CITIES)]}; the weather is usually mild in spring."
        )
    return script


def travel_agent(model: BaseChatModel, middleware: Any) -> Any:
    """An agent with the weather tool, the travel system prompt, `middleware` and a
    checkpointer (so `thread_id` keeps conversations apart)."""
    return create_agent(
        model,
        [get_weather],
        system_prompt=SYSTEM,
        middleware=[middleware],
        checkpointer=InMemorySaver(),
    )
