"""fgood-bench: build, publish and validate fine-grained out-of-distribution detection benchmarks."""

__version__ = "0.1.0"
