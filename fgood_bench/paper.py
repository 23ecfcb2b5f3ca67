"""Every number fgood-bench takes from the paper, once, each with its citation.

"Fine-grained OOD Detection with Mixup Outlier Exposure" (Zhang et al.). Where the paper is
silent the value follows the authors' reference code, zjysteven/MixOE at commit 1222147
(``train/*.py``), or the paper a method comes from; the comment beside each value says which.
Nothing else in the package writes these numbers: recipes, benchmarks, the input geometry, the
scorers' defaults and the evaluation protocol are read from here (docs/architecture.md).
This module imports nothing heavy: the command line reads it to print its help.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgood_bench.errors import FgoodError

# ------------------------------------------------------------------------------- input geometry
# Appendix D.1 (and the reference's ``trn.Resize((512, 512))``): resize to 512 x 512, crop 448.
FINE_GRAINED_RESIZE = 512
FINE_GRAINED_CROP = 448
# Appendix H.2: "resize images such that the smallest side has 256 pixels", "cropped them to 224x224".
INET_RESIZE = 256
INET_CROP = 224
# The ImageNet normalisation of torchvision's weights, which the reference and OpenOOD use.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The reference's training transform: ColorJitter(brightness=32/255, saturation=0.5).
JITTER_BRIGHTNESS = 32 / 255
JITTER_SATURATION = 0.5


# ------------------------------------------------------------------------------- training recipes
@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    arch: str
    weights: str | None  # a torchvision weights name, or None: from scratch
    epochs: int | None  # standard training; None: the benchmark's (Benchmark.epochs, Appendix D.1)
    lr: float  # standard training
    batch_size: int  # ID images per step
    rotation_batch_size: int
    outlier_batch_size: int
    fine_tune_epochs: int
    fine_tune_lr: float
    fine_tuned: tuple[str, ...]  # methods that fine-tune the standard model (--init) by default
    image_size: int  # the crop
    resize: int  # the resize before the crop
    resize_mode: str  # 'square': Resize((s, s)); 'shorter': the shorter side to s (tools.geometry.Geometry)
    weight_decay: float  # standard training
    fine_tune_weight_decay: float


FINE_GRAINED = Recipe(
    name="fine-grained",
    source="paper Appendix D.1; MixOE reference train/*.py where the paper is silent",
    arch="resnet50",  # section 5.1: "ResNet-50s"
    weights="IMAGENET1K_V1",  # D.1: ImageNet weights; train_baseline.py: resnet50(pretrained=True), torchvision's V1
    epochs=None,  # D.1: 60 (bird, car, aircraft) or 30 (flower, dog)
    lr=1e-3,  # D.1
    batch_size=32,  # D.1
    rotation_batch_size=16,  # D.1: "we reduce the batch size to 16" for rotation
    outlier_batch_size=32,  # D.1: "32 as the batch size of outliers"
    fine_tune_epochs=10,  # D.1
    fine_tune_lr=1e-3,  # D.1
    fine_tuned=("oe", "energy-oe", "mixupoe"),  # D.1: "we by default fine-tune the standard models"
    image_size=FINE_GRAINED_CROP,  # D.1: resized to 512 x 512, cropped to 448 x 448
    resize=FINE_GRAINED_RESIZE,
    resize_mode="square",  # D.1 and the reference's trn.Resize((512, 512))
    weight_decay=1e-5,  # the paper is silent; train/train_*.py: --decay default 0.00001
    fine_tune_weight_decay=1e-5,  # the same: train_oe.py / train_mixoe.py fine-tune with --decay 0.00001
)

INET = Recipe(
    name="inet",
    source="paper Appendix H.2; MixOE reference train/*.py where the paper is silent",
    arch="resnet18",  # H.2
    weights=None,  # H.2 trains the standard model (90 epochs, lr 0.1); ImageNet weights have seen INet-A and -B
    epochs=90,  # H.2
    lr=0.1,  # H.2
    batch_size=256,  # H.2
    rotation_batch_size=256,  # H.2 gives one ID batch size for every method
    outlier_batch_size=512,  # H.2: "batch size to 256 and 512 for ID samples and outlier samples" (every method)
    fine_tune_epochs=10,  # H.2
    fine_tune_lr=1e-3,  # H.2
    fine_tuned=("oe", "energy-oe", "mixupoe", "rotation"),  # H.2: "we also let Rotation adopt fine-tuning"
    image_size=INET_CROP,  # H.2
    resize=INET_RESIZE,  # H.2
    resize_mode="shorter",  # H.2: the smallest side to 256
    # H.2 trains from scratch at lr 0.1 "following common practice on ImageNet" and gives no weight decay;
    # that practice is torchvision's ImageNet reference recipe (references/classification/train.py,
    # --wd default 1e-4), which the 90 epochs, lr 0.1 and batch 256 of H.2 also match
    weight_decay=1e-4,
    fine_tune_weight_decay=1e-5,  # fine-tuning at lr 1e-3: the reference's value for it (train_*.py --decay)
)


def recipe_for(benchmark: str) -> Recipe:
    """INet-A/B's recipe for benchmarks named ``inet*`` (as build-splits names them), else D.1's."""
    return INET if benchmark.lower().startswith("inet") else FINE_GRAINED


# The cosine schedule's last learning rate: the paper says "cosine learning rate schedule" (D.1, H.2);
# the reference's train_*.py anneal to lr_min = 1e-6 (cosine_annealing(step, total, 1, 1e-6 / lr)).
COSINE_FINAL_LR = 1e-6

# ---------------------------------------------------------------------------- method hyperparameters
# Appendix D.3 (fine-grained) and H.2 (INet-A/B), by the paper's names; the training stage's Hyper
# takes them (training/methods.py).
FINE_GRAINED_HYPER = {"beta": 5.0, "alpha": 1.0, "m_in": -15.0, "m_out": -5.0, "energy_weight": 0.1}  # D.3
DOG_BETA = 1.0  # D.3: beta 1.0 for Dog (OE's beta and MixupOE's beta_in-out)
INET_HYPER = {"beta": 5.0, "alpha": 0.4, "coarse": True, "m_in": -27.0, "m_out": -5.0, "energy_weight": 0.05}  # H.2
INET_OE_BETA = 0.5  # H.2: OE's beta on INet-A/B
ROTATION_WEIGHT = 1.0  # the paper is silent; the reference's train_rot.py --beta default (and OpenOOD's RotPred)


def paper_hyper_values(benchmark: str, method: str) -> dict:
    """The hyperparameter values of the paper for ``method`` on ``benchmark`` (a paper benchmark name)."""
    if benchmark.lower().startswith("inet"):
        return {**INET_HYPER, **({"beta": INET_OE_BETA} if method == "oe" else {})}
    return {**FINE_GRAINED_HYPER, **({"beta": DOG_BETA} if benchmark == "dog" else {})}


# ------------------------------------------------------------------------------------ benchmarks
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
    num_classes: int  # Table 3
    num_id: int  # Table 3
    epochs: int  # Appendix D.1
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
    """The paper benchmark whose recipe (epochs, beta, INet-A/B's recipe, geometry) a benchmark
    manifest gets: its own name when it is one (bird ... aircraft, inet-*), else the paper
    benchmark built from the same dataset, so that a renamed build (``build-splits bird --name
    bird-s1``) keeps bird's; ImageNet-derived ones get INet-A/B's ("inet"). None: no paper benchmark."""
    if name in BENCHMARKS or name.lower().startswith("inet"):
        return name
    if dataset == "imagenet":
        return "inet"
    return next((b.name for b in BENCHMARKS.values() if b.dataset == dataset), None)


def recipe_of_manifest(name: str, dataset: str) -> Recipe:
    """The recipe of a benchmark manifest (named ``name``, built from ``dataset``)."""
    return recipe_for(paper_benchmark(name, dataset) or name)


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise FgoodError(
            f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)} or rank any dataset with dataset and num_id (--dataset ID --num-id K)"
        ) from None


# ------------------------------------------------------------------------------ evaluation protocol
PAPER_BASE_RATE = 5.0  # Appendix C: "the base rate between ID and OOD samples is set to 5:1"
PAPER_CONVENTION = "paper"  # Appendix C: OOD positive; AUPR as the OE code computes it (sklearn average precision)
PAPER_REPEATS = 10  # not in the paper: seeded ID:OOD subsampling draws averaged (fgood-bench's choice, stated in results)

# ------------------------------------------------------------------------------------ scorers
ODIN_TEMPERATURE = 1000.0  # Appendix D.3; Liang et al. 2018
ODIN_EPSILON = 0.0  # Appendix D.2 uses no input perturbation
ENERGY_TEMPERATURE = 1.0  # Appendix D.3; Liu et al. 2020
GRAM_ORDERS = 10  # Sastry & Oore 2020: orders 1..10
# Share of each class's id_train images held out as ID validation images when a benchmark has no
# id_val split: Sastry & Oore's Gram code normalises the deviations on a random 10 % of the ID
# images it does not score (VectorInstitute/gram-ood-detection, ``detect``).
VALIDATION_FRACTION = 0.1
