"""The MQTT contract of camwatch, version 1: what a ward's agent publishes and the center reads.

Both sides import this package, and nothing of each other: topic names,
their QoS and retain flags, and their parser (:mod:`contract.topics`); the
words the payloads use, with one severity order (:mod:`contract.vocab`);
the payloads as typed models (:mod:`contract.payloads`), from which
:mod:`contract.generate` writes the JSON Schemas (``schemas/``) and the
AsyncAPI 3.0 document (``asyncapi.json``). A change here is a change on the
wire: version 1 stays version 1.
"""
