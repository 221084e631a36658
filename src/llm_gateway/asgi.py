"""The ASGI app built from the environment: ``uvicorn llm_gateway.asgi:app``.

This is what runs on Lambda behind the Web Adapter (streaming mode) and what
``llm-gateway serve`` runs locally.
"""

from llm_gateway.app import create_app

app = create_app()
