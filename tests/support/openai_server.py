"""A local OpenAI-compatible HTTP server for end-to-end tests of `ChatOpenAI`.

CONTRACT STUB (to be implemented by the foundation work).

Fixture `openai_server` (function scope) yields a `FakeOpenAIServer`:
- `.base_url`: "http://127.0.0.1:<port>/v1" for `ChatOpenAI(base_url=..., api_key="test")`.
- `.requests`: list of the JSON bodies received on /v1/chat/completions, in order.
- `.enqueue(content="...", *, tool_calls=None, usage=None, finish_reason=None)`:
  the next request gets this reply; `tool_calls` is a list of
  `{"name": str, "arguments": dict, "id": str | None}`; `usage` overrides the token
  numbers (`prompt_tokens`, `completion_tokens`, `cached_tokens`, `reasoning_tokens`).
- With nothing queued, the reply echoes the last user message ("echo: <text>").
- Default usage: prompt_tokens computed with tiktoken for the request's model,
  completion_tokens for the reply, `prompt_tokens_details.cached_tokens` and
  `completion_tokens_details.reasoning_tokens` present (0 unless set).
- `stream: true` answers as server-sent events with content deltas, tool-call deltas,
  and a final usage chunk only when `stream_options.include_usage` is true.
- `.fail_next(status=500 | 429, times=1)`: the next request(s) get that HTTP error.
"""
