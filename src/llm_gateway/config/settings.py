"""Environment switches (names fixed by SPEC §4) and tuning knobs, read once at start-up.

>>> s = Settings.from_env({"GATEWAY_API_KEYS": "k1, k2", "GATEWAY_LOG_PROMPTS": "true"})
>>> s.api_keys, s.log_prompts, s.max_body_bytes
(('k1', 'k2'), True, 1048576)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    pass


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{key} must be true or false, not {raw!r}")


def _number(env: Mapping[str, str], key: str, default: float, *, minimum: float = 0) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{key} must be a number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{key} must be >= {minimum}, not {raw!r}")
    return value


def _list(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(key, "").split(",") if part.strip())


def aws_region(env: Mapping[str, str] | None = None) -> str | None:
    """The region for the gateway's boto3 clients: ``AWS_REGION`` when set (Lambda sets it, the
    README and the AWS CLI v2 honour it, over ``AWS_DEFAULT_REGION``), else ``None`` for
    botocore's own chain (``AWS_DEFAULT_REGION``, the profile's ``region``), which does not
    read ``AWS_REGION``.

    >>> aws_region({"AWS_REGION": "eu-west-1"}), aws_region({"AWS_DEFAULT_REGION": "us-east-1"})
    ('eu-west-1', None)
    """
    env = os.environ if env is None else env
    return env.get("AWS_REGION", "").strip() or None


@dataclass(frozen=True)
class Settings:
    api_keys: tuple[str, ...] = ()  # GATEWAY_API_KEYS: empty = no in-app key check
    cors_origins: tuple[str, ...] = ()  # GATEWAY_CORS_ORIGINS: empty = no CORS headers
    log_prompts: bool = False  # GATEWAY_LOG_PROMPTS
    max_body_bytes: int = 1024 * 1024  # GATEWAY_MAX_BODY_BYTES
    max_messages: int = 1000  # GATEWAY_MAX_MESSAGES: chat messages per request
    max_input_chars: int = 1_000_000  # GATEWAY_MAX_INPUT_CHARS: prompt characters per request
    # SSE comment heartbeats while the upstream is silent; API Gateway drops a stream after
    # 30 s without bytes, TGI's own keep-alive is 15 s.
    heartbeat_seconds: float = 10.0  # GATEWAY_HEARTBEAT_SECONDS
    # How long a stream waits for its first token before committing HTTP 200 and a comment.
    # Failures inside this window are answered with a proper HTTP status.
    stream_commit_seconds: float = 1.0  # GATEWAY_STREAM_COMMIT_SECONDS
    connect_timeout: float = 5.0  # GATEWAY_UPSTREAM_CONNECT_TIMEOUT
    read_timeout: float = 70.0  # GATEWAY_UPSTREAM_READ_TIMEOUT (AWS: >= 70 s for InvokeEndpoint)
    max_attempts: int = 3  # GATEWAY_UPSTREAM_MAX_ATTEMPTS, before the first byte only
    max_connections: int = 256  # GATEWAY_UPSTREAM_MAX_CONNECTIONS
    # Generations in flight per process (TGI's own default); over it requests are refused at
    # once instead of queueing behind busy upstream threads.
    max_concurrent_requests: int = 128  # GATEWAY_MAX_CONCURRENT_REQUESTS
    # Observability (Powertools' own variables also apply, e.g. POWERTOOLS_METRICS_DISABLED).
    metrics_namespace: str = (
        "LLMGateway"  # GATEWAY_METRICS_NAMESPACE / POWERTOOLS_METRICS_NAMESPACE
    )
    metrics_key_dimension: bool = False  # GATEWAY_METRICS_KEY_DIMENSION: api_key_id as a dimension
    service_name: str = "llm-gateway"  # POWERTOOLS_SERVICE_NAME
    log_level: str = "INFO"  # GATEWAY_LOG_LEVEL / POWERTOOLS_LOG_LEVEL
    # The API Gateway limit of the mode: buffered (Mangum) answers must finish inside 29 s; the
    # Lambda handler sets 28 unless configured. None: no limit besides Lambda's own deadline.
    request_timeout: float | None = None  # GATEWAY_REQUEST_TIMEOUT_SECONDS
    ui: bool = False  # GATEWAY_UI: serve the chat page at /ui/ (llm-gateway serve turns it on)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        heartbeat = _number(env, "GATEWAY_HEARTBEAT_SECONDS", cls.heartbeat_seconds, minimum=0.05)
        if heartbeat >= 30:
            raise SettingsError(
                "GATEWAY_HEARTBEAT_SECONDS must be below 30 (API Gateway idle limit)"
            )
        return cls(
            api_keys=_list(env, "GATEWAY_API_KEYS"),
            cors_origins=_list(env, "GATEWAY_CORS_ORIGINS"),
            log_prompts=_bool(env, "GATEWAY_LOG_PROMPTS", False),
            max_body_bytes=int(
                _number(env, "GATEWAY_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1)
            ),
            max_messages=int(_number(env, "GATEWAY_MAX_MESSAGES", cls.max_messages, minimum=1)),
            max_input_chars=int(
                _number(env, "GATEWAY_MAX_INPUT_CHARS", cls.max_input_chars, minimum=1)
            ),
            heartbeat_seconds=heartbeat,
            stream_commit_seconds=_number(
                env, "GATEWAY_STREAM_COMMIT_SECONDS", cls.stream_commit_seconds
            ),
            connect_timeout=_number(
                env, "GATEWAY_UPSTREAM_CONNECT_TIMEOUT", cls.connect_timeout, minimum=0.1
            ),
            read_timeout=_number(
                env, "GATEWAY_UPSTREAM_READ_TIMEOUT", cls.read_timeout, minimum=0.1
            ),
            max_attempts=int(
                _number(env, "GATEWAY_UPSTREAM_MAX_ATTEMPTS", cls.max_attempts, minimum=1)
            ),
            max_connections=int(
                _number(env, "GATEWAY_UPSTREAM_MAX_CONNECTIONS", cls.max_connections, minimum=1)
            ),
            max_concurrent_requests=int(
                _number(
                    env, "GATEWAY_MAX_CONCURRENT_REQUESTS", cls.max_concurrent_requests, minimum=1
                )
            ),
            metrics_namespace=env.get("GATEWAY_METRICS_NAMESPACE")
            or env.get("POWERTOOLS_METRICS_NAMESPACE")
            or cls.metrics_namespace,
            metrics_key_dimension=_bool(env, "GATEWAY_METRICS_KEY_DIMENSION", False),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or cls.service_name,
            log_level=(
                env.get("GATEWAY_LOG_LEVEL") or env.get("POWERTOOLS_LOG_LEVEL") or "INFO"
            ).upper(),
            ui=_bool(env, "GATEWAY_UI", False),
            request_timeout=(
                _number(env, "GATEWAY_REQUEST_TIMEOUT_SECONDS", 0.0, minimum=0.1)
                if env.get("GATEWAY_REQUEST_TIMEOUT_SECONDS")
                else None
            ),
        )
