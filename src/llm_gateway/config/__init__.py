"""Configuration: the models file (:mod:`.schema`, :mod:`.loader`) and environment switches
(:mod:`.settings`)."""

from llm_gateway.config.loader import ConfigError, config_source, load_config, load_config_text
from llm_gateway.config.schema import ChatTemplate, GatewayConfig, ModelConfig
from llm_gateway.config.settings import Settings, SettingsError

__all__ = [
    "ChatTemplate",
    "ConfigError",
    "GatewayConfig",
    "ModelConfig",
    "Settings",
    "SettingsError",
    "config_source",
    "load_config",
    "load_config_text",
]
