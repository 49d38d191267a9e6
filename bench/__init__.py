"""The benchmark harness: ``python -m bench.run`` (``make bench``) → ``bench/RESULTS.md``."""
