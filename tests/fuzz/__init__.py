"""Fuzz tests: random inputs against independent oracles (see strategies.py and each test_fuzz_*.py)."""
