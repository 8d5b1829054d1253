"""Parity evidence: the same inputs through torch.nn and through losses_jax / models / train.

``python -m parity_tests`` prints the report; the pytest suites here assert it. Every comparison
goes through ``losses_jax.testing``, the public API for checking one's own torch -> JAX ports.
"""
