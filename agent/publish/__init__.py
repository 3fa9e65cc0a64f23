"""Publishing: payloads (in the contract's words, :mod:`contract`), the durable outbox, the MQTT publisher."""
