"""Simulated cameras and brokers for the demo, tests and benchmarks (all on 127.0.0.1)."""
