"""The two seams (docs/architecture.md): a dialect and a backend plug in with one registration
each, and errors on a route are rendered by the dialect that owns it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request

from llm_gateway import app as composition
from llm_gateway.backends import BACKENDS
from llm_gateway.backends.tgi.generate import TGIGenerate
from llm_gateway.config import ConfigError, Settings
from llm_gateway.core.errors import GatewayError, request_error
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.dialects.context import GatewayContext
from llm_gateway.http.dialect import DialectBase, Endpoint
from llm_gateway.http.replies import JSONReply, Reply
from llm_gateway.local import BackgroundServer
from tests.conftest import MODELS, gateway_config


class EchoDialect(DialectBase):
    """A toy dialect: one route, its own error shape (the other hooks: the defaults)."""

    name = "echo"
    fallback_prefixes = ("/echo/",)

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        return 418, orjson.dumps({"echo_error": error.message})

    async def echo(self, request: Request) -> Reply:
        model = self.ctx.model(request.query_params.get("model"))
        if request.query_params.get("fail"):
            raise request_error("asked to fail")
        return JSONReply({"model": model.name})

    def endpoints(self) -> Sequence[Endpoint]:
        return [Endpoint("GET", "/echo/model", self.echo, "Which model answers")]


class ShoutingBackend(TGIGenerate):
    """A toy backend: TGI's protocol with the prompt upper-cased."""

    name = "shouting"

    def generate_body(self, inputs: str, parameters: GenerateParameters, **kw: Any) -> bytes:
        return super().generate_body(inputs.upper(), parameters, **kw)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(composition, "DIALECTS", (*composition.DIALECTS, EchoDialect))
    monkeypatch.setitem(BACKENDS, "shouting", ShoutingBackend)


def test_a_dialect_and_a_backend_plug_in_with_one_line_each(registered, emulator):
    models = [*MODELS, {"name": "loud", "endpoint": "tgi3-endpoint", "backend": "shouting"}]
    app = composition.create_app(gateway_config(models), Settings())
    server = BackgroundServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            assert c.get("/echo/model", params={"model": "tgi082"}).json() == {"model": "tgi082"}
            # Errors on the dialect's routes, and unknown paths under its prefix, are its own.
            failed = c.get("/echo/model", params={"fail": "1"})
            assert failed.status_code == 418 and failed.json() == {"echo_error": "asked to fail"}
            assert c.get("/echo/nothing-here").json() == {"echo_error": "Not Found"}
            # The other dialects keep theirs.
            assert "error_type" in c.get("/nothing-here").json()
            assert c.get("/v1/nothing-here").json()["error"]["type"] == "invalid_request_error"
            r = c.post(
                "/models/loud/generate",
                json={"inputs": "quiet", "parameters": {"max_new_tokens": 2}},
            )
            assert r.status_code == 200
        sent = emulator.stats_for("tgi3-endpoint").recent[-1]["body"]
        assert orjson.loads(sent)["inputs"] == "QUIET"
    finally:
        server.stop()


def test_an_unknown_backend_fails_at_start_up_naming_the_model():
    models = [{"name": "m", "endpoint": "e", "backend": "carrier-pigeon"}]
    with pytest.raises(ConfigError, match=r"model 'm' .*'backend': 'carrier-pigeon'"):
        composition.create_app(gateway_config(models, default="m"), Settings())
