"""Performance benchmarks of the catalog sync. Not part of the test suite.

Run everything with ``python -m benchmarks.run`` (see ``docs/performance.md``).
"""
