"""Plumbing the agent and the center both use, and nothing of either: the one redaction function, the error
base and config errors, TOML config reading and validation, MQTT client set-up, systemd's notification
protocol, logging set-up."""
