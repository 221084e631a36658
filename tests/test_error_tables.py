"""One error vocabulary: every failure carries a neutral code, and each dialect words each code
in one table. These pin the tables, byte for byte, for every factory in ``core/errors.py``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core import errors as e
from llm_gateway.core.errors import ErrorCode, ErrorKind, GatewayError
from llm_gateway.dialects.anthropic.encoding import MessageEncoder
from llm_gateway.dialects.anthropic.errors import TABLE
from llm_gateway.dialects.anthropic.errors import error_body as anthropic_error_body
from llm_gateway.dialects.openai.encoding import OpenAIStreamEncoder
from llm_gateway.dialects.openai.errors import ERRORS, classify
from llm_gateway.dialects.openai.errors import error_body as openai_error_body
from llm_gateway.dialects.openai.responses.encoding import ResponseEncoder
from llm_gateway.dialects.openai.responses.errors import error_body as responses_error_body
from llm_gateway.dialects.openai.responses.errors import response_error
from llm_gateway.dialects.tgi.encoding import TGIStreamEncoder
from llm_gateway.dialects.tgi.errors import error_body as tgi_error_body
from llm_gateway.http.sse import wire


def error_body(error: GatewayError) -> tuple[int, dict[str, Any]]:
    """The OpenAI dialect's status and body, as the client reads it."""
    status, body = openai_error_body(error)
    return status, orjson.loads(body)


def tgi_body(error: GatewayError) -> Any:
    return orjson.loads(tgi_error_body(error)[1])


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_a_row_in_the_anthropic_table(code):
    assert code in TABLE


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_a_row_in_the_openai_table(code):
    assert code in ERRORS


@pytest.mark.parametrize(
    ("make", "status", "kind", "code"),
    [
        (
            lambda: e.validation_error("`top_k` must be strictly positive", param="top_k"),
            400,
            "invalid_request_error",
            "invalid_value",
        ),
        (
            lambda: e.context_length_error("`inputs` must have less than 1024 tokens. Given: 2000"),
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (
            lambda: e.request_error("Failed to deserialize the JSON body"),
            400,
            "invalid_request_error",
            "invalid_value",
        ),
        (
            lambda: e.template_error("roles must alternate"),
            400,
            "invalid_request_error",
            "template_error",
        ),
        (lambda: e.model_not_found("nope"), 404, "invalid_request_error", "model_not_found"),
        (lambda: e.route_error(404, "Not Found"), 404, "invalid_request_error", "not_found"),
        (
            lambda: e.route_error(405, "Method Not Allowed"),
            405,
            "invalid_request_error",
            "method_not_allowed",
        ),
        (lambda: e.payload_too_large(10), 413, "invalid_request_error", "payload_too_large"),
        (lambda: e.invalid_token("expired"), 401, "invalid_request_error", "invalid_token"),
        (lambda: e.model_not_allowed("m"), 403, "invalid_request_error", "permission_denied"),
        (lambda: e.issuer_unavailable(), 503, "server_error", "unavailable"),
        (
            lambda: e.unsupported_media_type("text/plain"),
            415,
            "invalid_request_error",
            "unsupported_media_type",
        ),
        (lambda: e.unauthenticated("no key"), 401, "invalid_request_error", "invalid_api_key"),
        (lambda: e.gateway_overloaded(), 503, "server_error", "overloaded"),
        (
            lambda: e.overloaded_error("SageMaker is throttling"),
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (lambda: e.model_warming("m"), 503, "server_error", "model_warming"),
        (lambda: e.unavailable_error("not ready"), 503, "server_error", "unavailable"),
        (lambda: e.timeout_error("slow"), 504, "server_error", "timeout"),
        (lambda: e.deadline_error(), 504, "server_error", "timeout"),
        (lambda: e.upstream_error("Model 'm' failed"), 502, "server_error", "upstream"),
        (lambda: e.incomplete_stream(), 502, "server_error", "incomplete_generation_stream"),
        (lambda: e.internal_error(), 502, "server_error", "internal"),
    ],
)
def test_openai_words_each_factory_by_its_code(make, status, kind, code):
    # Made in the test, not at collection: a mutation run collects once for every mutant.
    error = make()
    got_status, body = error_body(error)
    assert (got_status, body["error"]["type"], body["error"]["code"]) == (status, kind, code)
    assert body["error"]["message"] == error.message


def test_a_containers_own_4xx_keeps_its_status_and_blames_the_request():
    error = GatewayError("too big", status=413, error_type="validation", kind=ErrorKind.CLIENT)
    assert error.code is ErrorCode.INVALID_PARAMETER
    status, body = error_body(error)
    assert status == 413 and body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("status", [424, 500, 501])
def test_a_failed_model_is_a_502_never_a_bare_500(status):
    error = GatewayError("boom", status=status, error_type="generation", kind=ErrorKind.UPSTREAM)
    got, body = error_body(error)
    assert got == 502 and body["error"] == {
        "message": "boom",
        "type": "server_error",
        "param": None,
        "code": "generation",  # the container's own type passes through
    }


def test_the_tgi_dialect_keeps_tgis_words():
    assert tgi_body(e.gateway_overloaded()) == {
        "error": "Model is overloaded",
        "error_type": "overloaded",
    }
    assert tgi_body(e.context_length_error("too long")) == {
        "error": "Input validation error: too long",
        "error_type": "validation",
    }


def test_codes_are_inferred_for_errors_built_by_hand():
    def made(error_type: str, status: int, kind: ErrorKind) -> ErrorCode:
        return GatewayError("x", status=status, error_type=error_type, kind=kind).code

    assert made("validation", 422, ErrorKind.CLIENT) is ErrorCode.INVALID_PARAMETER
    assert made("authentication", 401, ErrorKind.AUTH) is ErrorCode.UNAUTHENTICATED
    assert made("generation", 424, ErrorKind.UPSTREAM) is ErrorCode.UPSTREAM
    assert made("weird", 503, ErrorKind.THROTTLED) is ErrorCode.UNAVAILABLE
    assert made("weird", 429, ErrorKind.THROTTLED) is ErrorCode.THROTTLED
    assert made("weird", 504, ErrorKind.TIMEOUT) is ErrorCode.TIMEOUT
    assert made("weird", 404, ErrorKind.CLIENT) is ErrorCode.INVALID_REQUEST


# Every factory's every field, as clients see them: the TGI dialect's body is (message,
# error_type) and its status; headers and Retry-After are on every dialect's answer.
CLIENT, AUTH, UPSTREAM = ErrorKind.CLIENT, ErrorKind.AUTH, ErrorKind.UPSTREAM
THROTTLED, TIMEOUT, STREAM = ErrorKind.THROTTLED, ErrorKind.TIMEOUT, ErrorKind.STREAM
C = ErrorCode


@pytest.mark.parametrize(
    ("make", "fields"),
    [
        (
            lambda: e.validation_error("`top_k` must be strictly positive"),
            ("Input validation error: `top_k` must be strictly positive", 422, "validation"),
        ),
        (
            lambda: e.context_length_error("too long"),
            (
                "Input validation error: too long",
                422,
                "validation",
                CLIENT,
                C.CONTEXT_LENGTH,
                "inputs",
            ),
        ),
        (
            lambda: e.request_error("bad JSON"),
            ("bad JSON", 422, "validation", CLIENT, C.INVALID_REQUEST),
        ),
        (
            lambda: e.invalid_parameter("n must be 1", param="n"),
            ("n must be 1", 400, "validation", CLIENT, C.INVALID_PARAMETER, "n"),
        ),
        (
            lambda: e.model_not_found("nope"),
            (
                "Model 'nope' is not served by this gateway",
                404,
                "model_not_found",
                CLIENT,
                C.MODEL_NOT_FOUND,
                "model",
            ),
        ),
        (
            lambda: e.template_error("roles must alternate"),
            ("Template error: roles must alternate", 422, "template_error", CLIENT, C.TEMPLATE),
        ),
        (
            lambda: e.incomplete_stream(),
            (
                "Incomplete generation stream",
                500,
                "incomplete_generation_stream",
                STREAM,
                C.UPSTREAM,
            ),
        ),
        (lambda: e.upstream_error("failed"), ("failed", 502, "upstream", UPSTREAM, C.UPSTREAM)),
        (
            lambda: e.upstream_error("late", status=504, kind=TIMEOUT),
            ("late", 504, "upstream", TIMEOUT, C.TIMEOUT),
        ),
        (lambda: e.timeout_error("slow"), ("slow", 504, "timeout", TIMEOUT, C.TIMEOUT)),
        (
            lambda: e.deadline_error(),
            (
                "The request did not finish within the gateway's time limit",
                504,
                "timeout",
                TIMEOUT,
                C.TIMEOUT,
            ),
        ),
        (
            lambda: e.overloaded_error("SageMaker is throttling"),
            ("SageMaker is throttling", 429, "overloaded", THROTTLED, C.THROTTLED, None, 1),
        ),
        (
            lambda: e.overloaded_error("busy", retry_after=None),
            ("busy", 429, "overloaded", THROTTLED, C.THROTTLED, None, None),
        ),
        (
            lambda: e.gateway_overloaded(),
            ("Model is overloaded", 429, "overloaded", THROTTLED, C.OVERLOADED, None, 1),
        ),
        (
            lambda: e.model_warming("m"),
            (
                "Model 'm' is scaling up from zero; this usually takes 5 to 10 minutes. "
                "Retry shortly.",
                503,
                "unavailable",
                THROTTLED,
                C.WARMING,
                None,
                30,
                {"x-should-retry": "true"},
            ),
        ),
        (
            lambda: e.unavailable_error("not ready"),
            ("not ready", 503, "unavailable", THROTTLED, C.UNAVAILABLE, None, 5),
        ),
        (
            lambda: e.unauthenticated("no key"),
            ("no key", 401, "authentication", AUTH, C.UNAUTHENTICATED),
        ),
        (
            lambda: e.payload_too_large(10),
            (
                "Request body is larger than the limit of 10 bytes",
                413,
                "payload_too_large",
                CLIENT,
                C.PAYLOAD_TOO_LARGE,
            ),
        ),
        (
            lambda: e.unsupported_media_type("text/plain"),
            (
                "Expected request with `Content-Type: application/json` (the body was declared "
                "as `text/plain`)",
                415,
                "unsupported_media_type",
                CLIENT,
                C.UNSUPPORTED_MEDIA_TYPE,
            ),
        ),
        (
            lambda: e.unsupported_media_type(None),
            (
                "Expected request with `Content-Type: application/json` (the body was declared "
                "as none)",
                415,
                "unsupported_media_type",
                CLIENT,
                C.UNSUPPORTED_MEDIA_TYPE,
            ),
        ),
        (
            lambda: e.route_error(404, "Not Found"),
            ("Not Found", 404, "not_found", CLIENT, C.NOT_FOUND),
        ),
        (
            lambda: e.route_error(405, "Method Not Allowed"),
            ("Method Not Allowed", 405, "method_not_allowed", CLIENT, C.METHOD_NOT_ALLOWED),
        ),
        (
            lambda: e.route_error(400, "Bad Request"),
            ("Bad Request", 400, "http", CLIENT, C.INVALID_REQUEST),
        ),
        (
            lambda: e.internal_error(),
            ("Internal gateway error", 500, "internal", UPSTREAM, C.INTERNAL),
        ),
    ],
)
def test_every_factory_field_by_field(make, fields):
    error = make()
    # (message, status, error_type, kind, code, param, retry_after, headers); omitted: defaults.
    defaults = (None, None, None, CLIENT, C.INVALID_PARAMETER, None, None, {})
    expected = (*fields, *defaults[len(fields) :])
    got = (
        error.message,
        error.status,
        error.error_type,
        error.kind,
        error.code,
        error.param,
        error.retry_after,
        error.headers,
    )
    assert got == expected
    assert type(error.code) is ErrorCode
    assert str(error) == error.message
    assert tgi_error_body(error)[0] == error.status
    assert tgi_body(error) == {
        "error": error.message,
        "error_type": error.error_type,
    }


def test_a_validation_error_names_its_field_and_a_context_error_blames_the_prompt():
    assert e.validation_error("x", param="top_k").param == "top_k"
    assert e.context_length_error("x").param == "inputs"
    assert e.context_length_error("x", param="max_new_tokens").param == "max_new_tokens"
    assert e.request_error("x", status=400, param="messages").status == 400
    assert e.request_error("x", param="messages").param == "messages"
    assert e.model_warming("m", retry_after=90).retry_after == 90
    assert e.unavailable_error("x", retry_after=None).retry_after is None


def test_a_gateway_error_reads_as_itself():
    assert repr(e.gateway_overloaded()) == "GatewayError(429, 'overloaded', 'Model is overloaded')"
    error = GatewayError("x", status=400, error_type="validation", kind=ErrorKind.CLIENT)
    assert error.headers == {} and error.param is None and error.retry_after is None
    # A code given as its string value is the same code.
    assert (
        GatewayError(
            "x", status=400, error_type="weird", kind=ErrorKind.CLIENT, code="context_length"
        ).code
        is ErrorCode.CONTEXT_LENGTH
    )


@pytest.mark.parametrize(
    ("error_type", "status", "kind", "code"),
    [
        ("validation", 500, ErrorKind.UPSTREAM, C.INVALID_PARAMETER),  # the type wins
        ("template_error", 422, ErrorKind.CLIENT, C.TEMPLATE),
        ("batch_size_exceeded", 422, ErrorKind.CLIENT, C.BATCH_TOO_LARGE),
        ("model_not_found", 404, ErrorKind.CLIENT, C.MODEL_NOT_FOUND),
        ("not_found", 404, ErrorKind.CLIENT, C.NOT_FOUND),
        ("method_not_allowed", 405, ErrorKind.CLIENT, C.METHOD_NOT_ALLOWED),
        ("unsupported_media_type", 415, ErrorKind.CLIENT, C.UNSUPPORTED_MEDIA_TYPE),
        ("payload_too_large", 413, ErrorKind.CLIENT, C.PAYLOAD_TOO_LARGE),
        ("authentication", 401, ErrorKind.AUTH, C.UNAUTHENTICATED),
        ("permission", 403, ErrorKind.AUTH, C.FORBIDDEN),
        ("overloaded", 429, ErrorKind.THROTTLED, C.THROTTLED),
        ("unavailable", 503, ErrorKind.THROTTLED, C.UNAVAILABLE),
        ("timeout", 504, ErrorKind.TIMEOUT, C.TIMEOUT),
        ("internal", 500, ErrorKind.UPSTREAM, C.INTERNAL),
        # No known type: the kind and the status decide.
        ("weird", 400, ErrorKind.CLIENT, C.INVALID_PARAMETER),
        ("weird", 422, ErrorKind.CLIENT, C.INVALID_PARAMETER),
        ("weird", 413, ErrorKind.CLIENT, C.INVALID_REQUEST),
        ("weird", 403, ErrorKind.AUTH, C.UNAUTHENTICATED),
        ("weird", 500, ErrorKind.TIMEOUT, C.TIMEOUT),
        ("weird", 429, ErrorKind.THROTTLED, C.THROTTLED),
        ("weird", 503, ErrorKind.THROTTLED, C.UNAVAILABLE),
        ("weird", 500, ErrorKind.STREAM, C.UPSTREAM),
        ("generation", 424, ErrorKind.UPSTREAM, C.UPSTREAM),
    ],
)
def test_the_code_of_every_tgi_type_and_kind(error_type, status, kind, code):
    assert GatewayError("x", status=status, error_type=error_type, kind=kind).code is code


# After the head, each dialect's one error event is its error body, from the same table: a
# client reads the same words mid-stream as before it. (Responses: ``response.failed``, whose
# ``code`` OpenAI's SDKs know from a fixed list, read off OpenAI's table.)
STREAM_ERRORS = [
    (lambda: e.validation_error("bad", param="max_new_tokens"), "server_error"),
    (lambda: e.overloaded_error("SageMaker is throttling"), "rate_limit_exceeded"),
    (lambda: e.model_warming("m"), "server_error"),
    (lambda: e.timeout_error("slow"), "server_error"),
    (lambda: e.deadline_error(), "server_error"),
    (lambda: e.incomplete_stream(), "server_error"),
    (lambda: e.upstream_error("Model 'm' failed «é»"), "server_error"),
    (lambda: e.internal_error(), "server_error"),
    (
        lambda: GatewayError("busy", status=429, error_type="weird", kind=ErrorKind.THROTTLED),
        "rate_limit_exceeded",
    ),
]


@pytest.mark.parametrize(("make", "responses_code"), STREAM_ERRORS)
def test_a_stream_error_event_is_the_dialects_error_body(make, responses_code):
    error = make()
    tgi = wire(TGIStreamEncoder(details=False).error(error))
    assert tgi == b"data: " + tgi_error_body(error)[1] + b"\n\n"

    chat = OpenAIStreamEncoder(
        chat=True,
        completion_id="chatcmpl-1",
        model="m",
        created=0,
        stops=[],
        include_usage=False,
        logprobs=False,
        prompt_tokens=lambda finish: (1, True),
    )
    openai_body = openai_error_body(error)[1]
    assert wire(chat.error(error)) == b"data: " + openai_body + b"\n\ndata: [DONE]\n\n"

    messages = MessageEncoder(
        message_id="msg_1",
        model="m",
        input_tokens=1,
        estimated=True,
        stops=[],
        client_stops=[],
    )
    out = wire(messages.error(error))
    assert out.startswith(b"event: message_start\n")  # owed before any other event
    assert out.endswith(b"\n\nevent: error\ndata: " + anthropic_error_body(error)[1] + b"\n\n")

    response = ResponseEncoder(
        request_id="1", echo={"model": "m"}, stops=[], prompt_tokens=lambda finish: (1, True)
    )
    failed = orjson.loads(wire(response.error(error)).split(b"data: ")[-1])
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"] == response_error(error)
    assert response_error(error) == {
        "code": responses_code,
        "message": error.message,
        "param": None,
        "type": error.error_type,
    }


def test_the_responses_code_follows_openais_table_not_the_errors_own_status():
    """The gateway's own cap is 429 in TGI's words but 503 in OpenAI's table: a server error."""
    error = e.gateway_overloaded()
    assert (error.status, classify(error)[0]) == (429, 503)
    assert response_error(error)["code"] == "server_error"


@pytest.mark.parametrize(
    ("param", "named"),
    [
        ("max_new_tokens", "max_output_tokens"),
        ("max_tokens", "max_output_tokens"),
        ("inputs", "input"),
        ("messages", "input"),
        ("temperature", "temperature"),
        (None, None),
    ],
)
def test_responses_errors_are_openais_naming_the_responses_field(param, named):
    error = e.validation_error("bad", param=param)
    status, body = responses_error_body(error)
    openai_status, openai_body = error_body(error)
    assert status == openai_status == 400
    assert orjson.loads(body) == {"error": {**openai_body["error"], "param": named}}


@pytest.mark.parametrize(
    "error_body_of",
    [tgi_error_body, openai_error_body, responses_error_body, anthropic_error_body],
    ids=["tgi", "openai", "responses", "anthropic"],
)
@pytest.mark.parametrize(("make", "_code"), STREAM_ERRORS)
def test_every_dialect_answers_status_and_json_bytes(error_body_of, make, _code):
    """One signature for every dialect: ``error_body(error) -> (status, bytes)``."""
    status, body = error_body_of(make())
    assert type(status) is int and 400 <= status < 600
    assert type(body) is bytes and isinstance(orjson.loads(body), dict)
