"""Benchmarks of the harness against the floor and the alternatives: ``python -m benchmarks``."""
