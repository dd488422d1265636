"""The test suite: a package, so shared helpers import by their dotted names (`tests.ledger._ledger_helpers`)
in the test processes and in the worker processes they spawn."""
