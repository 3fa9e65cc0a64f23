"""The monitoring-center service: MQTT ingest (ack after commit), storage (SQLite or PostgreSQL), timelines
and uptime, and the web pages and API operators use, in Vietnamese and English."""
