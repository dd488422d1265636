"""amp-tools benchmarks: guard overhead, ledger throughput and scale, cold start, demo wall time.

Run them all with ``.venv/bin/python -m benchmarks`` (see `benchmarks.run`). They live apart from
the tests and print ratios measured in one run; nothing here asserts on time.
"""
