"""The paper's five fine-grained benchmarks (Table 3) and their standard-training epochs (Appendix D.1)."""

from __future__ import annotations

from dataclasses import dataclass

from fgood_bench.errors import FgoodError


@dataclass(frozen=True)
class Protocol:
    """Roles of a dataset's official splits: the ranking classifier trains on ``train_splits``,
    which also form ``id_train``; it is scored on ``eval_splits`` (None: test, or val where the
    dataset has no test split), which form ``id_test`` and ``ood_test``."""

    train_splits: tuple[str, ...] = ("train",)
    eval_splits: tuple[str, ...] | None = None
    source: str = "the dataset's official splits"


# Flowers-102 as the paper used it (Table 3: 5,878 ID training images). The official train and
# train + val splits of 90 classes hold 900 and 1,800 images; the official test split minus 12
# held-out classes' test images gives 5,878 when those classes hold 271 test images (the real
# imagelabels.mat / setid.mat: 20-238 test images a class, the 12 smallest hold 245), i.e. the
# held-out classes are among the smallest, consistent with a ranking classifier trained on that
# class-imbalanced split. Training on the large test split is common practice for Flowers-102.
FLOWER_PAPER = Protocol(("test",), ("train", "val"),
                        "paper Table 3 (5,878 = 6,149 official test images - 271 of the 12 held-out classes)")


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
    # Other split roles to choose from (build-splits --split-protocol), the first is the default;
    # none: 'official' only (train_splits, scored on test).
    protocols: tuple[tuple[str, Protocol], ...] = ()

    def protocol(self, name: str | None) -> tuple[str, Protocol]:
        choices = dict(self.protocols) or {"official": Protocol(self.train_splits)}
        choices.setdefault("official", Protocol(self.train_splits))
        name = name or next(iter(choices))
        if name not in choices:
            raise FgoodError(f"--split-protocol {name}: {self.name} offers {', '.join(choices)}")
        return name, choices[name]


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("bird", "cub", 200, 100, epochs=60),
        Benchmark("dog", "thudogs", 130, 100, epochs=30),
        Benchmark("flower", "flowers102", 102, 90, epochs=30, protocols=(("paper", FLOWER_PAPER),)),
        Benchmark("car", "stanford_cars", 196, 100, epochs=60),
        Benchmark("aircraft", "fgvc_aircraft", 100, 90, epochs=60, train_splits=("train", "val")),
    )
}


def paper_benchmark(name: str, dataset: str) -> str | None:
    """The paper benchmark whose training recipe (epochs, beta, INet-A/B's recipe) a benchmark
    manifest gets: its own name when it is one (bird ... aircraft, inet-*), else the paper
    benchmark built from the same dataset, so that a renamed build (``build-splits bird --name
    bird-s1``) keeps bird's; ImageNet-derived ones get INet-A/B's ("inet"). None: no paper benchmark."""
    if name in BENCHMARKS or name.lower().startswith("inet"):
        return name
    if dataset == "imagenet":
        return "inet"
    return next((b.name for b in BENCHMARKS.values() if b.dataset == dataset), None)


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise FgoodError(
            f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)} or rank any dataset with --dataset ID --num-id K"
        ) from None
