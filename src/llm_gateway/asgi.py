"""The ASGI app built from the environment: ``uvicorn llm_gateway.asgi:app``.

This is what runs on Lambda behind the Web Adapter (streaming mode, ``src/run.sh``). Lambda may
freeze the environment as soon as a response's last byte is out, so budgets are settled before
that byte is released (``settle_inline``). ``llm-gateway serve``, a long-running server, builds
its own app and settles after the response instead.
"""

# ruff: noqa: E402 (the collector is paused before the imports below, on purpose)
import gc

# Paused while the app loads, as llm_gateway.app.resume_collector explains; create_app turns
# it back on.
gc.disable()

from llm_gateway.app import create_app

app = create_app(settle_inline=True)
