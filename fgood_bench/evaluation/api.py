"""Score any classifier, or any score function, on a benchmark from Python.

Both functions run ``fgood-bench evaluate``'s own pipeline (:func:`fgood_bench.evaluation.evaluate.evaluate`:
the same image sets, forward pass, scorers, metrics and results table) and resolve their settings
through the same step (:func:`fgood_bench.tools.settings.resolve_settings`): a fgood-bench checkpoint
(its path, or the model :func:`load_model` read from it) scores exactly as ``fgood-bench evaluate``
on that checkpoint; a bare ``nn.Module`` at the benchmark recipe's geometry (or its timm
pretrained config), recorded as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.evaluate import EvaluateRequest, evaluate
from fgood_bench.evaluation.scorers import Scorer
from fgood_bench.tools.models import load_classifier
from fgood_bench.tools.settings import Requested

DEFAULT_SCORERS = ("msp", "odin", "energy", "maxlogit")


def load_model(checkpoint: str | Path, arch: str | None = None) -> nn.Module:
    """The classifier of a fgood-bench checkpoint (``train``'s classifier.pt), with what it recorded of its
    training, so that :func:`evaluate_model` scores it exactly as ``fgood-bench evaluate --checkpoint``."""
    return load_classifier(checkpoint, None, arch)[0]


def evaluate_model(
    model: nn.Module | str | Path, benchmark: str | Path, root: str | Path, *, scorers: Sequence[str] = DEFAULT_SCORERS,
    transform: Callable | None = None, ood: Sequence[str] = ("holdout",), ood_roots: dict[str, str | Path] | None = None,
    out: str | Path | None = None, image_size: int | None = None, resize_mode: str | None = None,
    batch_size: int = 32, device: str = "auto", workers: int | None = None, amp: bool | None = None,
    protocol: str | None = None, base_rate: float | None = None, convention: str | None = None, repeats: int | None = None,
    seed: int = 0, odin_epsilon: float | None = None, gram_orders: int | None = None, feature_layers: str | None = None,
    decode: str | None = None, arch: str | None = None, progress: bool = False,
) -> dict:
    """Evaluate a classifier of the benchmark's K ID classes (in label order) and return the results
    ``fgood-bench evaluate`` writes to results.json (``metrics[ood_set][scorer]``).

    ``model``: a ``torch.nn.Module``, or the path of a fgood-bench checkpoint (as ``--checkpoint``;
    ``arch`` names a bare state dict's architecture). ``benchmark``: the benchmark's manifest
    (build-splits); ``root``: its dataset folder. ``ood``: as the CLI's ``--ood``, ``"holdout"`` or
    ``"NAME=MANIFEST"``; ``ood_roots``: NAME -> dataset folder (default ``root``). Every other keyword
    is the CLI option of the same name, None where the CLI's default applies: the checkpoint's
    geometry (``image_size``, ``resize_mode``), else the model's timm pretrained config, else the
    benchmark recipe's; ``protocol="paper"`` (or ``base_rate`` and ``convention``, the CLI's
    ``--metrics``) for the paper's Appendix C numbers. ``transform``: PIL image -> normalised input
    tensor (e.g. torchvision transforms v2) instead of fgood-bench's decoding and test transform.
    ``out``: also write the CLI's reports and scores.parquet there. ``amp``: as the CLI's ``--amp``,
    a float16 backbone on CUDA (faster, not exact); default strict float32. Feature scorers
    (mahalanobis, gram) need a ResNet-style model with ``layer1``..``layer4`` or a timm model
    (its ``feature_info``; gram refuses a vision transformer's tokens).
    """
    checkpoint = None
    if isinstance(model, (str, Path)):
        checkpoint, model = Path(model), None
    elif not isinstance(model, nn.Module):
        raise FgoodError(f"evaluate_model needs a torch.nn.Module or a checkpoint path, not {type(model).__name__}; "
                         "for a score function use evaluate_scores")
    requested = Requested(image_size=image_size, resize_mode=resize_mode, decode=decode, amp=amp, protocol=protocol,
                          base_rate=base_rate, repeats=repeats, metric_convention=convention, feature_layers=feature_layers,
                          odin_epsilon=odin_epsilon, gram_orders=gram_orders)
    request = _request(benchmark, root, list(scorers), transform, ood, ood_roots, out, requested, batch_size, device,
                       workers, seed, progress, checkpoint=checkpoint, arch=arch)
    return evaluate(request, model=model)


def evaluate_scores(
    score_fn: Callable[[torch.Tensor], torch.Tensor], benchmark: str | Path, root: str | Path, *, name: str = "score",
    transform: Callable | None = None, ood: Sequence[str] = ("holdout",), ood_roots: dict[str, str | Path] | None = None,
    out: str | Path | None = None, image_size: int | None = None, resize_mode: str | None = None, batch_size: int = 32,
    device: str = "cpu", workers: int | None = None, protocol: str | None = None, base_rate: float | None = None,
    convention: str | None = None, repeats: int | None = None, seed: int = 0, decode: str | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate any callable that maps a batch of inputs (B, C, H, W) on ``device`` to B *ID scores*
    (higher = more in-distribution), e.g. ``lambda x: -detector.predict(x)`` for a pytorch-ood
    detector, whose scores are outlier scores. The results are ``evaluate``'s, with one scorer
    ``name``; ``id_accuracy`` is None (a score function makes no class predictions). Other arguments
    as :func:`evaluate_model` (``protocol``, ``base_rate``, ``convention``: the CLI's ``--protocol``,
    ``--base-rate``, ``--metrics``); the inputs are the benchmark recipe's geometry unless
    ``image_size`` says otherwise; batches are built on ``device``, where ``score_fn``'s model must be.
    """
    if not callable(score_fn):
        raise FgoodError(f"evaluate_scores needs a callable mapping a batch to scores, not {type(score_fn).__name__}")
    requested = Requested(image_size=image_size, resize_mode=resize_mode, decode=decode, protocol=protocol,
                          base_rate=base_rate, repeats=repeats, metric_convention=convention)
    request = _request(benchmark, root, [name], transform, ood, ood_roots, out, requested, batch_size, device, workers,
                       seed, progress)
    return evaluate(request, model=ScoreFunction(score_fn), scorers=[ScoreColumn(name)])


def _request(benchmark, root, scorers, transform, ood, ood_roots, out, requested: Requested, batch_size, device, workers,
             seed, progress, checkpoint: Path | None = None, arch: str | None = None) -> EvaluateRequest:
    return EvaluateRequest(
        checkpoint=checkpoint, manifest=Path(benchmark), root=Path(root), out=None if out is None else Path(out),
        ood=list(ood), ood_roots={name: Path(path) for name, path in (ood_roots or {}).items()}, scorers=scorers,
        requested=requested, arch=arch, batch_size=batch_size, device=device, workers=workers, seed=seed, plots=False,
        progress=progress, transform=transform,
    )


class ScoreFunction(nn.Module):
    """A score function seen as a model with one output per image, so that evaluate's forward pass runs it."""

    def __init__(self, score_fn: Callable):
        super().__init__()
        self.score_fn = score_fn
        self.description = getattr(score_fn, "__qualname__", type(score_fn).__name__)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        scores = self.score_fn(inputs)
        scores = scores.detach().to(inputs.device) if torch.is_tensor(scores) else torch.as_tensor(np.asarray(scores), device=inputs.device)
        if scores.numel() != len(inputs):
            raise FgoodError(f"the score function returned {scores.numel()} values for a batch of {len(inputs)} images")
        return scores.reshape(-1, 1).float()


class ScoreColumn(Scorer):
    """The score function's values, read back from the forward pass's one-column outputs."""

    def __init__(self, name: str):
        self.name = name

    def score(self, outputs):
        return np.asarray(outputs["logits"], np.float64)[:, 0]
