"""Offline stand-ins for providers: a loopback OpenAI-compatible server for demos and tests.

`FakeOpenAIServer` serves `/v1/chat/completions` (and OpenAI's / Anthropic's batch
endpoints) on 127.0.0.1, so `ChatOpenAI(base_url=server.base_url, api_key="offline")`
runs end to end without a network or a key. The notebooks run on it.

Example:
    >>> from langchain_tokenopt.testing import FakeOpenAIServer
    >>> with FakeOpenAIServer() as server:
    ...     server.enqueue("Paris")
    ...     server.base_url.startswith("http://127.0.0.1:")
    True
"""

from langchain_tokenopt.testing.openai_server import FakeOpenAIServer

__all__ = ["FakeOpenAIServer"]
