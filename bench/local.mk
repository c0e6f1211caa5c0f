# Benchmarks: make bench (issue 7).
