"""JSON Schemas of the MQTT contract, version 1 (health, event, agent, stats)."""
