"""The payment-lifecycle tests use the shared engine fixtures (`engine_name`, `ledger_target`) of
tests/conftest.py, on SQLite and on PostgreSQL."""
