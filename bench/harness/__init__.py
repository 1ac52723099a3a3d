"""The benchmark harness behind bench/run.py (not part of the product)."""
