"""Per-request facts the web layer sets for the dialects: the name a client asked for when a
``model_aliases`` glob resolved it (SPEC §4)."""

from __future__ import annotations

from contextvars import ContextVar

# Answers name the alias the client used; ``x-llm-gateway-served-by`` names the configured
# model. Set per request by the route (http/server.py), read by dialects/context.py.
ALIAS: ContextVar[str | None] = ContextVar("llm_gateway_alias", default=None)
