"""Training recipes: the paper's where it states them, the authors' reference code where it is silent.

Two recipes: the five fine-grained benchmarks (Appendix D.1) and the coarse INet-A/B benchmarks
(Appendix H.2). The MixOE reference is zjysteven/MixOE at commit 1222147 (``train/*.py``).
Every value names its source; docs/training.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgood_bench.errors import FgoodError


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    arch: str
    weights: str | None  # a torchvision weights name, or None: from scratch
    epochs: int | None  # standard training; None: the benchmark's (ranking/benchmarks.py, Appendix D.1)
    lr: float  # standard training
    batch_size: int  # ID images per step
    rotation_batch_size: int
    outlier_batch_size: int
    fine_tune_epochs: int
    fine_tune_lr: float
    fine_tuned: tuple[str, ...]  # methods that fine-tune the standard model (--init) by default
    image_size: int  # the crop
    resize_mode: str  # 'square': Resize((s, s)); 'shorter': the shorter side to s (data.Geometry)
    weight_decay: float


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
    image_size=448,  # D.1: resized to 512 x 512, cropped to 448 x 448
    resize_mode="square",  # D.1 and the reference's trn.Resize((512, 512))
    weight_decay=1e-5,  # the paper is silent; train/train_*.py: --decay default 0.00001
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
    outlier_batch_size=512,  # H.2
    fine_tune_epochs=10,  # H.2
    fine_tune_lr=1e-3,  # H.2
    fine_tuned=("oe", "energy-oe", "mixupoe", "rotation"),  # H.2: "we also let Rotation adopt fine-tuning"
    image_size=224,  # H.2: "cropped them to the size 224x224"
    resize_mode="shorter",  # H.2: "resize images such that the smallest side has 256 pixels"
    weight_decay=1e-5,  # H.2 is silent; the reference's --decay default
)


def recipe_for(benchmark: str) -> Recipe:
    """INet-A/B's recipe for benchmarks named ``inet*`` (as build-splits names them), else D.1's."""
    return INET if benchmark.lower().startswith("inet") else FINE_GRAINED


IMAGENET_DERIVED = ("imagenet",)  # dataset ids whose classes every torchvision weights file has seen


def check_weights_leak(weights: str | None, dataset: str, benchmark: str, allow: bool) -> None:
    """Refuse pretrained weights for a benchmark built from ImageNet: they were trained on its OOD classes."""
    if weights in (None, "none") or dataset not in IMAGENET_DERIVED or allow:
        return
    raise FgoodError(
        f"--weights {weights}: pretrained weights have seen {benchmark}'s OOD classes ({benchmark} is built from "
        f"ImageNet, which torchvision's weights are trained on); train with --weights none (Appendix H.2), or "
        f"force it with --allow-pretrained-leak"
    )
