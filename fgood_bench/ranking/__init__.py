"""Ranking engine: classifier-ranked ID / holdout-OOD splits (paper section 3.1, Appendix A and B)."""

from fgood_bench.ranking.benchmarks import BENCHMARKS, Benchmark, get_benchmark
from fgood_bench.ranking.build import BuildRequest, build_splits, read_predictions
from fgood_bench.ranking.scores import ClassScores, class_scores, prediction_entropy

__all__ = [
    "BENCHMARKS", "Benchmark", "BuildRequest", "ClassScores", "build_splits", "class_scores", "get_benchmark",
    "prediction_entropy", "read_predictions",
]
