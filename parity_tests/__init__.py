"""Parity evidence: the same inputs through torch.nn and through losses_jax / models / train."""
