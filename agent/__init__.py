"""camwatch ward agent: camera health and events from RTSP to MQTT."""

__version__ = "0.1.0"
