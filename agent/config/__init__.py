"""Agent configuration: a TOML file validated into one typed tree."""

from agent.config.load import load_config, parse_config
from agent.config.model import AgentConfig, CameraConfig, HealthConfig, StreamConfig
from common.mqtt import MqttConfig

__all__ = [
    "AgentConfig",
    "CameraConfig",
    "HealthConfig",
    "MqttConfig",
    "StreamConfig",
    "load_config",
    "parse_config",
]
