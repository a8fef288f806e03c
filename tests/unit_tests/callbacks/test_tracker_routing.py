"""The usage tracker records ModelRouter decisions next to the calls they routed."""

from __future__ import annotations

import itertools

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.routing.router import ModelRouter, Tier


class NamedFake(GenericFakeChatModel):
    model_name: str


def reply(text: str) -> AIMessage:
    usage = {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25}
    return AIMessage(text, usage_metadata=usage)


def router() -> ModelRouter:
    mini = NamedFake(model_name="gpt-4o-mini", messages=itertools.repeat(reply("mini")))
    big = NamedFake(model_name="gpt-4o", messages=itertools.repeat(reply("big")))
    return ModelRouter(
        tiers=[Tier(big, quality=1.0, name="big"), Tier(mini, quality=0.5, name="mini")]
    )


def test_tracker_records_each_routing_decision_linked_to_the_routed_call() -> None:
    tracker = UsageTracker()
    answer = router().invoke("What is the capital of France?", config={"callbacks": [tracker]})

    assert answer.content == "mini"
    [route] = tracker.routes
    assert route["tier"] == "mini"
    assert route["model"] == "gpt-4o-mini"
    assert route["reason"]
    [event] = tracker.events
    assert event.model == "gpt-4o-mini"
    assert event.parent_run_id == route["run_id"]


async def test_tracker_records_async_routing_decisions_and_reset_forgets_them() -> None:
    tracker = UsageTracker()
    await router().ainvoke("Hi there", config={"callbacks": [tracker]})
    assert [route["tier"] for route in tracker.routes] == ["mini"]
    tracker.reset()
    assert tracker.routes == []


def test_other_custom_events_are_ignored() -> None:
    from langchain_core.callbacks.manager import dispatch_custom_event
    from langchain_core.runnables import RunnableLambda

    tracker = UsageTracker()

    def emit(_: str) -> str:
        dispatch_custom_event("something_else", {"tier": "x"})
        return "done"

    RunnableLambda(emit).invoke("go", config={"callbacks": [tracker]})
    assert tracker.routes == []
