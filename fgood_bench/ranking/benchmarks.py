"""The paper's five fine-grained benchmarks (Table 3) and their standard-training epochs (Appendix D.1)."""

from __future__ import annotations

from dataclasses import dataclass

from fgood_bench.errors import FgoodError


@dataclass(frozen=True)
class Benchmark:
    name: str
    dataset: str
    num_classes: int
    num_id: int
    epochs: int
    # Official splits the ranking classifier trains on and that form ``id_train``. FGVC-Aircraft
    # uses train + val: Table 3's 6,000 ID training images are 90 of the 100 classes' trainval.
    train_splits: tuple[str, ...] = ("train",)


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("bird", "cub", 200, 100, epochs=60),
        Benchmark("dog", "thudogs", 130, 100, epochs=30),
        Benchmark("flower", "flowers102", 102, 90, epochs=30),
        Benchmark("car", "stanford_cars", 196, 100, epochs=60),
        Benchmark("aircraft", "fgvc_aircraft", 100, 90, epochs=60, train_splits=("train", "val")),
    )
}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise FgoodError(
            f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)} or rank any dataset with --dataset ID --num-id K"
        ) from None
