"""`CostRouterMiddleware`: send each model call of an agent to the tier a
`ModelRouter` picks, falling through to the next tier when one fails."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables.config import ensure_config

from langchain_tokenopt.core.markers import ROUTE_EVENT, ROUTE_KEY
from langchain_tokenopt.errors import ArgumentTypeError
from langchain_tokenopt.middleware._base import (
    AsyncHandler,
    Handler,
    Middleware,
    ModelRequest,
    ModelResponse,
    adispatch_event,
    dispatch_event,
    sent_messages,
)
from langchain_tokenopt.routing.router import ModelRouter, RouteDecision, Tier
from langchain_tokenopt.routing.stats import RouterStats

__all__ = ["CostRouterMiddleware"]

logger = logging.getLogger(__name__)

#: Routers bound to distinct tool lists kept at once (least recently used go first).
_TOOL_ROUTERS = 64


class CostRouterMiddleware(Middleware):
    """Send each model call of an agent to the tier a `ModelRouter` chooses.

    For every call the router's scorer rates the request (system prompt, messages and
    the tools bound to this call), the router picks the cheapest tier whose quality
    meets the need (relaxed as its budget runs low) and the call goes to that tier's
    chat model instead of the agent's. A tier that raises one of the router's
    `fallback_on` errors falls through to the next tier of the decision, exactly as
    `ModelRouter.invoke` does. The answer carries the decision in
    `response_metadata[ROUTE_KEY]`, the custom event `ROUTE_EVENT` is dispatched, and
    `stats()` adds the decisions up (`RouterStats`).

    The agent's own model (`create_agent(model, ...)`) is never called while this
    middleware is installed: pass any tier's model there.

    Args:
        router: the `ModelRouter` with the tiers, scorer, budget and fall-through rules.

    Example:
        >>> from langchain.agents import create_agent
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> mini = GenericFakeChatModel(messages=iter(["Hello!"]))
        >>> big = GenericFakeChatModel(messages=iter(["A long answer."]))
        >>> router = ModelRouter(tiers=[Tier(mini, quality=0.3, model_name="gpt-4o-mini"),
        ...                             Tier(big, quality=1.0, model_name="gpt-4o")])
        >>> agent = create_agent(big, middleware=[CostRouterMiddleware(router)])
        >>> agent.invoke({"messages": [("user", "hi, thanks!")]})["messages"][-1].content
        'Hello!'
    """

    def __init__(self, router: ModelRouter) -> None:
        super().__init__()
        if not isinstance(router, ModelRouter):
            raise ArgumentTypeError(f"router must be a ModelRouter, not {type(router).__name__}.")
        self.router = router
        self._tiers = {tier.name: tier for tier in router.tiers}
        self._with_tools: OrderedDict[tuple[int, ...], ModelRouter] = OrderedDict()
        self._lock = threading.Lock()

    def stats(self) -> RouterStats:
        """The router's `stats()`: answers per tier, fallbacks, estimated cost saved.

        The middleware records its decisions in the router it was given, so these
        include any requests that router answered directly too.
        """
        return self.router.stats()

    # -- steps ----------------------------------------------------------------------------

    def _router_for(self, tools: Sequence[Any]) -> ModelRouter:
        """The router with this call's tools (they count in scores and cost estimates)."""
        if not tools:
            return self.router
        key = tuple(id(tool) for tool in tools)
        with self._lock:
            router = self._with_tools.get(key)
            if router is not None:
                self._with_tools.move_to_end(key)
                return router
        router = self.router.bind_tools(list(tools))
        with self._lock:
            self._with_tools[key] = router
            while len(self._with_tools) > _TOOL_ROUTERS:
                self._with_tools.popitem(last=False)
        return router

    def _record(
        self,
        decision: RouteDecision,
        answered: Tier | None,
        failed: list[str],
        response: ModelResponse[Any] | None = None,
    ) -> dict[str, Any]:
        """Count the decision in the router's stats (priced from the answer's reported
        usage when it has one); returns its metadata."""
        answer = None
        if response is not None:
            answer = next((m for m in response.result if isinstance(m, AIMessage)), None)
        name = None if answered is None else answered.name
        return self.router.record(decision, name, failed, answer)

    @staticmethod
    def _stamp(response: ModelResponse[Any], metadata: dict[str, Any]) -> ModelResponse[Any]:
        """The response with the decision in each answer's `response_metadata`."""
        result = [
            m.model_copy(update={"response_metadata": {**m.response_metadata, ROUTE_KEY: metadata}})
            if isinstance(m, AIMessage)
            else m
            for m in response.result
        ]
        return ModelResponse(result=result, structured_response=response.structured_response)

    @staticmethod
    def _failed(tier: Tier, error: BaseException, left: int) -> None:
        logger.warning(
            "Tier %r failed (%s: %s): %s",
            tier.name,
            type(error).__name__,
            error,
            "falling through to the next tier" if left else "no tier left",
        )

    # -- the recipe: route, try each tier of the decision in order, record --------------

    def wrap_model_call(self, request: ModelRequest[Any], handler: Handler) -> ModelResponse[Any]:
        """Call the chosen tier's model; on a failure, the next tier of the decision."""
        config = ensure_config()
        decision = self._router_for(request.tools).route(sent_messages(request), config)
        failed: list[str] = []
        last_error: BaseException | None = None
        for position, name in enumerate(decision.order):
            tier = self._tiers[name]
            try:
                response = handler(request.override(model=tier.model))
            except self.router.fallback_on as exc:
                failed.append(name)
                last_error = exc
                self._failed(tier, exc, len(decision.order) - position - 1)
                continue
            metadata = self._record(decision, tier, failed, response)
            dispatch_event(ROUTE_EVENT, metadata, config)
            return self._stamp(response, metadata)
        dispatch_event(ROUTE_EVENT, self._record(decision, None, failed), config)
        assert last_error is not None
        raise last_error

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: AsyncHandler
    ) -> ModelResponse[Any]:
        """Async `wrap_model_call` (a SQLite or Redis budget is read in a thread)."""
        config = ensure_config()
        decision = await self._router_for(request.tools).aroute(sent_messages(request), config)
        failed: list[str] = []
        last_error: BaseException | None = None
        for position, name in enumerate(decision.order):
            tier = self._tiers[name]
            try:
                response = await handler(request.override(model=tier.model))
            except self.router.fallback_on as exc:
                failed.append(name)
                last_error = exc
                self._failed(tier, exc, len(decision.order) - position - 1)
                continue
            metadata = self._record(decision, tier, failed, response)
            await adispatch_event(ROUTE_EVENT, metadata, config)
            return self._stamp(response, metadata)
        await adispatch_event(ROUTE_EVENT, self._record(decision, None, failed), config)
        assert last_error is not None
        raise last_error
