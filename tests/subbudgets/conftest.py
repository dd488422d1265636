"""The sub-budget tests use the shared engine fixtures of tests/conftest.py (`backend`, `target`); spawned race
workers import this folder's helpers as `tests.subbudgets._race_support`."""
