"""Bind only the tools a request needs: a TF-IDF `BaseRetriever` over tool schemas."""

from langchain_tokenopt.tool_retrieval.retriever import ToolMatch, ToolRetriever
from langchain_tokenopt.tool_retrieval.runnable import RelevantToolsRunnable, bind_relevant_tools

__all__ = ["RelevantToolsRunnable", "ToolMatch", "ToolRetriever", "bind_relevant_tools"]
