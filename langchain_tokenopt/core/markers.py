"""Keys that components write into LangChain metadata and others read.

They live in the core so that a component never imports another one.
"""

from __future__ import annotations

#: `response_metadata` flag on a message answered from a `TokenOptCache`.
CACHE_HIT_KEY = "tokenopt_cache_hit"
#: `response_metadata` entry with the `ModelRouter` decision (tier, score, reason).
ROUTE_KEY = "tokenopt_route"
#: Name of the custom callback event the router dispatches for each decision.
ROUTE_EVENT = "tokenopt_route"
#: `response_metadata` entry on a message answered through a provider batch API
#: (`{"provider": ..., "batch_id": ..., "custom_id": ...}`), and `metadata` flag on the
#: callbacks' start of such a call: trackers and budgets price it at the batch rate.
BATCH_KEY = "tokenopt_batch"
