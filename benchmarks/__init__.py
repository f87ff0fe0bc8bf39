"""Developer benchmarks of the index alone (scale, updates), outside the installed package."""
