"""Benchmarks (`make bench`): they print figures and ratios; tests never time anything."""
