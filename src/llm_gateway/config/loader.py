"""Finding and reading the models file; errors name the file, the model and the field.

Sources, first found wins: an explicit path (``--config``), ``GATEWAY_CONFIG`` (a path),
``GATEWAY_CONFIG_JSON`` (inline JSON, for Lambda), ``GATEWAY_CONFIG_SSM`` (an SSM parameter
holding JSON or YAML).

>>> load_config_text('{"models": [{"name": "m", "endpoint": "bad name"}]}', "inline").__class__
Traceback (most recent call last):
...
llm_gateway.config.loader.ConfigError: Invalid configuration in inline: model 'm' (models[0]), field 'endpoint': String should match pattern '^[a-zA-Z0-9](-*[a-zA-Z0-9])*$'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llm_gateway.config.schema import GatewayConfig


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


def _describe(error: dict[str, Any], data: Any, source: str) -> str:
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        models = data.get("models") if isinstance(data, dict) else None
        if isinstance(models, list) and index < len(models) and isinstance(models[index], dict):
            name = models[index].get("name")
        where = f"model '{name}' (models[{index}]), " if name else f"models[{index}], "
        loc = loc[2:]
    field = ".".join(str(part) for part in loc if "[" not in str(part))
    message = error["msg"].removeprefix("Value error, ")
    if field:
        return f"Invalid configuration in {source}: {where}field '{field}': {message}"
    return (
        f"Invalid configuration in {source}: {where.rstrip(', ')}{': ' if where else ''}{message}"
    )


def parse_config(data: Any, source: str) -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid configuration in {source}: expected a mapping with 'models'")
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(dict(exc.errors(include_url=False)[0]), data, source)) from None


def load_config_text(text: str, source: str) -> GatewayConfig:
    """Parse YAML or JSON text (JSON is YAML, but JSON errors read better from ``json``)."""
    if text.lstrip().startswith("{"):  # JSON (Lambda's inline config): no YAML parser needed
        try:
            return parse_config(json.loads(text), source)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Invalid configuration in {source}: not valid JSON: {exc}") from None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Invalid configuration in {source}: not valid JSON or YAML: {exc}"
        ) from None
    return parse_config(data, source)


def load_config_file(path: str | os.PathLike[str]) -> GatewayConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read configuration file {file}: {exc.strerror or exc}") from None
    config = load_config_text(text, str(file))
    return _resolve_tokenizers(config, file.parent)


def _resolve_tokenizers(config: GatewayConfig, base: Path) -> GatewayConfig:
    """Tokenizer paths in a file are relative to the file."""
    models = [
        m.model_copy(update={"tokenizer": str(base / m.tokenizer)})
        if m.tokenizer and not Path(m.tokenizer).is_absolute()
        else m
        for m in config.models
    ]
    if all(a is b for a, b in zip(models, config.models, strict=True)):
        return config
    return GatewayConfig.model_validate(
        {**config.model_dump(), "models": [m.model_dump() for m in models]}
    )


def load_config_ssm(name: str) -> GatewayConfig:
    import boto3  # only on Lambda deployments that keep the config in SSM

    try:
        response = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
    except Exception as exc:
        raise ConfigError(f"Cannot read configuration from SSM parameter {name}: {exc}") from None
    return load_config_text(response["Parameter"]["Value"], f"SSM parameter {name}")


def config_source(env: Mapping[str, str], path: str | None = None) -> str | None:
    """Which source :func:`load_config` would use, or ``None`` when none is set."""
    if path:
        return path
    for key in ("GATEWAY_CONFIG", "GATEWAY_CONFIG_JSON", "GATEWAY_CONFIG_SSM"):
        if env.get(key):
            return key
    return None


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> GatewayConfig:
    env = os.environ if env is None else env
    return with_jwt_env(_load(path, env), env)


def with_jwt_env(config: GatewayConfig, env: Mapping[str, str]) -> GatewayConfig:
    """``GATEWAY_JWT_ISSUER``, ``GATEWAY_JWT_AUDIENCE`` (comma-separated) and
    ``GATEWAY_JWT_CLIENT_ID`` set ``auth.jwt``'s fields over the file's (SPEC §4), so a stack
    parameter can turn sign-in on without a models file change."""
    names = {
        "issuer": "GATEWAY_JWT_ISSUER",
        "audience": "GATEWAY_JWT_AUDIENCE",
        "client_id": "GATEWAY_JWT_CLIENT_ID",
    }
    overrides: dict[str, Any] = {
        field: env[var].strip() for field, var in names.items() if env.get(var, "").strip()
    }
    if not overrides:
        return config
    if "audience" in overrides:
        overrides["audience"] = [a.strip() for a in overrides["audience"].split(",") if a.strip()]
    data = config.model_dump(exclude_unset=True)
    auth = dict(data.get("auth") or {})
    auth["jwt"] = {**(auth.get("jwt") or {}), **overrides}
    data["auth"] = auth
    return parse_config(data, "GATEWAY_JWT_* environment variables")


def _load(path: str | None, env: Mapping[str, str]) -> GatewayConfig:
    if path:
        return load_config_file(path)
    if env.get("GATEWAY_CONFIG"):
        return load_config_file(env["GATEWAY_CONFIG"])
    if env.get("GATEWAY_CONFIG_JSON"):
        return load_config_text(env["GATEWAY_CONFIG_JSON"], "GATEWAY_CONFIG_JSON")
    if env.get("GATEWAY_CONFIG_SSM"):
        return load_config_ssm(env["GATEWAY_CONFIG_SSM"])
    raise ConfigError(
        "No model configuration: pass --config FILE or set GATEWAY_CONFIG, "
        "GATEWAY_CONFIG_JSON or GATEWAY_CONFIG_SSM"
    )
