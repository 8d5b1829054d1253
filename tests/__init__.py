"""Tests of behaviour that is ours to define (not comparisons with torch)."""
