"""Side-by-side benchmarks against torch on the same machine, in the same run (``python -m benchmarks``)."""
