"""Analytical cost of training and inference under parallelism."""
