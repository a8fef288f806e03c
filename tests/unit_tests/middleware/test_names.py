"""Our middleware and langchain's live side by side: no name is shared, none shadows."""

from __future__ import annotations

import langchain.agents.middleware as upstream
import pytest
from langchain.agents.middleware import AgentMiddleware

import langchain_tokenopt
import langchain_tokenopt.middleware as ours

# Our names that once clashed (exactly, or one letter apart) with langchain's own.
RENAMED = {
    "CostRouterMiddleware": "ModelRouterMiddleware",
    "SummaryRecallMiddleware": "SummarizationMiddleware",
}


def _star(module: object) -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)  # type: ignore[attr-defined]
    namespace.pop("__builtins__")
    return namespace


@pytest.mark.parametrize("ours_first", [True, False])
def test_star_imports_of_both_packages_shadow_nothing(ours_first: bool) -> None:
    first, second = (ours, upstream) if ours_first else (upstream, ours)
    namespace = {**_star(first), **_star(second)}
    assert not set(ours.__all__) & set(upstream.__all__)
    for name in ours.__all__:
        assert namespace[name] is getattr(ours, name)
    for name in upstream.__all__:
        assert namespace[name] is getattr(upstream, name)


def test_the_old_clashing_names_are_gone_from_our_package() -> None:
    for new, upstream_name in RENAMED.items():
        assert getattr(ours, new).__module__.startswith("langchain_tokenopt.middleware.")
        assert upstream_name not in ours.__all__
        assert not hasattr(ours, upstream_name)
        assert upstream_name not in dir(langchain_tokenopt)
    assert not hasattr(ours, "SummarizingMiddleware")
    assert not hasattr(ours, "ModelRouterMiddleware")


def test_every_middleware_name_in_an_agent_is_distinct_from_langchains() -> None:
    # create_agent refuses two middleware with one `name` (the class name by default).
    ours_names = {
        cls.__name__
        for cls in map(ours.__dict__.get, ours.__all__)
        if isinstance(cls, type) and issubclass(cls, AgentMiddleware)
    }
    upstream_names = {
        name
        for name in upstream.__all__
        if isinstance(getattr(upstream, name), type)
        and issubclass(getattr(upstream, name), AgentMiddleware)
    }
    assert set(RENAMED) <= ours_names
    assert not ours_names & upstream_names
    assert {"ModelRouterMiddleware", "SummarizationMiddleware"} & upstream_names
