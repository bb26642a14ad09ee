"""Hermetic test infrastructure: sample distributions and a loopback package index."""
