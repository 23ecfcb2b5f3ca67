"""fgood-bench: build, publish and validate fine-grained out-of-distribution detection benchmarks."""

__version__ = "0.1.0"

_LAZY = {
    "load_split": "fgood_bench.manifests.loading",
    "load_benchmark": "fgood_bench.manifests.loading",
    "SplitDataset": "fgood_bench.manifests.loading",
    "Manifest": "fgood_bench.manifests.manifest",
    "verify_manifest": "fgood_bench.manifests.verify",
    "load_index": "fgood_bench.datasets",
    "load_dataset": "fgood_bench.datasets",  # the former name of load_index
    "evaluate_model": "fgood_bench.evaluation.api",
    "load_model": "fgood_bench.evaluation.api",
    "evaluate_scores": "fgood_bench.evaluation.api",
}


def __getattr__(name: str):
    """The public API, imported on first use (keeps ``fgood-bench --help`` from importing torch)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fgood_bench' has no attribute {name!r}")
