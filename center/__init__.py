"""The monitoring-center service: MQTT ingest, storage, uptime, web dashboard (being built: issue 6)."""
