"""What the tracker and the budget share: reading a model call's start from LangChain's
callback arguments, counting its input when the provider reports no usage, and telling
a call made through a provider batch API (priced at the batch rate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from langchain_tokenopt.core.markers import BATCH_KEY
from langchain_tokenopt.core.pricing import Processing
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import CallStart, call_start

__all__ = ["ModelCallHandler", "call_processing"]


def call_processing(call: CallStart, response: LLMResult | None = None) -> Processing:
    """ "batch" when a call went through a provider batch API, else "standard".

    `BatchAPIRunnable` says so twice: `BATCH_KEY` in the metadata of the call's start
    (all the budget sees before upload) and in each answer's `response_metadata`.
    """
    if call.metadata.get(BATCH_KEY):
        return "batch"
    for generations in response.generations if response is not None else ():
        for generation in generations:
            message = getattr(generation, "message", None)
            if getattr(message, "response_metadata", {}).get(BATCH_KEY):
                return "batch"
    return "standard"


class ModelCallHandler(BaseCallbackHandler):
    """A callback handler that sees each model call start as one `CallStart`.

    Subclasses implement `_call_started`; chat and completion models both end up there,
    with the agent named by `agent_key` (see `call_start`). The handler follows chain
    runs to know each call's top-level run (`_roots`) and that run's name, which names
    the agent when nothing more specific does.
    """

    agent_key: Callable[[CallStart], str | None] | None = None

    def __init__(self) -> None:
        self._counters: dict[str, TokenCounter] = {}
        self._roots: dict[UUID, UUID] = {}  # chain run -> its top-level run
        self._root_names: dict[UUID, str] = {}  # top-level run -> its name

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember which top-level run (task) a chain belongs to, and the root's name."""
        if parent_run_id is not None:
            self._roots[run_id] = self._roots.get(parent_run_id, parent_run_id)
            return
        name = kwargs.get("name")
        if isinstance(name, str) and name:
            self._root_names[run_id] = name

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the chain: model calls inside it have read their root already."""
        self._roots.pop(run_id, None)
        self._root_names.pop(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the chain (see `on_chain_end`)."""
        self._roots.pop(run_id, None)
        self._root_names.pop(run_id, None)

    def _root_of(self, parent_run_id: UUID | None) -> UUID | None:
        """The top-level run of a call made inside `parent_run_id` (None: no parent)."""
        if parent_run_id is None:
            return None
        return self._roots.get(parent_run_id, parent_run_id)

    def _call_started(self, call: CallStart) -> None:
        raise NotImplementedError

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Read the call's agent, model and input: `on_llm_end` carries no metadata."""
        kwargs.update(run_id=run_id, parent_run_id=parent_run_id, tags=tags, metadata=metadata)
        self._start(kwargs, messages=messages[0] if messages else [])

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Same as `on_chat_model_start`, for completion (string) models."""
        kwargs.update(run_id=run_id, parent_run_id=parent_run_id, tags=tags, metadata=metadata)
        self._start(kwargs, prompts=prompts)

    def _start(
        self,
        arguments: dict[str, Any],
        *,
        messages: list[BaseMessage] | None = None,
        prompts: list[str] | None = None,
    ) -> None:
        parent_run_id = arguments.pop("parent_run_id")
        root = self._root_of(parent_run_id)
        self._call_started(
            call_start(
                run_id=arguments.pop("run_id"),
                parent_run_id=parent_run_id,
                tags=arguments.pop("tags"),
                metadata=arguments.pop("metadata"),
                kwargs=arguments,
                messages=messages,
                prompts=prompts,
                agent_key=self.agent_key,
                root_name=self._root_names.get(root) if root is not None else None,
            )
        )

    def _counter(self, model: str | None) -> TokenCounter:
        """One memoizing counter per model, reused across calls."""
        key = model or ""
        counter = self._counters.get(key)
        if counter is None:
            counter = TokenCounter(model) if model else TokenCounter()
            self._counters[key] = counter
        return counter

    def _input_tokens(self, call: CallStart) -> int:
        """The call's input tokens (messages with their tools, or prompts)."""
        counter = self._counter(call.model)
        if call.messages is not None:
            return int(counter.count_messages(call.messages, tools=call.tools or None))
        return sum(int(counter.count_text(prompt)) for prompt in call.prompts or ())
