"""The levers the analysis replays, one module each, behind `Lever` (levers.base)."""

from __future__ import annotations

from langchain_tokenopt.analysis.levers.base import Conversation, Lever, Step
from langchain_tokenopt.analysis.levers.cache import CacheLever
from langchain_tokenopt.analysis.levers.compression import CompressionLever
from langchain_tokenopt.analysis.levers.dedup import DedupLever
from langchain_tokenopt.analysis.levers.history import HistoryLever
from langchain_tokenopt.analysis.levers.routing import RoutingLever
from langchain_tokenopt.analysis.levers.tools import ToolBindingLever

__all__ = [
    "CacheLever",
    "CompressionLever",
    "Conversation",
    "DedupLever",
    "HistoryLever",
    "Lever",
    "RoutingLever",
    "Step",
    "ToolBindingLever",
]
