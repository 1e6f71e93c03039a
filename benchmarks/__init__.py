"""Benchmarks: scripts that print their figures, the last line as JSON."""
