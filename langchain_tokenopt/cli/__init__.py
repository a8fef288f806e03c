"""The `tokenopt` command line: analyze, count, report, demo."""

from langchain_tokenopt.cli.app import main

__all__ = ["main"]
