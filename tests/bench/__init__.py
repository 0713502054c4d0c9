"""Benchmarks (``python -m tests.bench.run``); modules here are not collected by pytest."""
