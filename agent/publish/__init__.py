"""Publishing: the MQTT contract (topics, payloads, schemas) and the publisher."""
