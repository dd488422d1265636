"""The reliability tests use the shared engine fixtures (`engine_name`, `ledger_target`) of tests/conftest.py
and the ledger tests' helpers (`tests.ledger._ledger_helpers`: PostgreSQL URL, the CI=true rule, schema
isolation), which their spawned workers import by the same dotted names."""
