"""The reliability tests use the shared engine fixtures (`engine_name`, `ledger_target`) of tests/conftest.py
and the ledger tests' helpers (`_ledger_helpers`: PostgreSQL URL, the CI=true rule, schema isolation), which
tests/conftest.py puts on sys.path (spawned workers inherit it)."""
