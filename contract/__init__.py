"""The MQTT contract of camwatch, version 1: what a ward's agent publishes and the center reads.

Both sides import this package, and nothing of each other: topic names and
their parser (:mod:`contract.topics`), and the words the payloads use, with
one severity order (:mod:`contract.vocab`). A change here is a change on
the wire: version 1 stays version 1.
"""
