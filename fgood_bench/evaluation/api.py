"""Score any classifier, or any score function, on a benchmark from Python.

Both functions run ``fgood-bench evaluate``'s own pipeline (:func:`fgood_bench.evaluation.evaluate.evaluate`:
the same image sets, forward pass, scorers, metrics and results table); they only replace the
checkpoint by a model in memory, or the scorers by the user's score function.
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
from fgood_bench.training.engine import TrainConfig

DEFAULT_SCORERS = ("msp", "odin", "energy", "maxlogit")


def evaluate_model(
    model: nn.Module, benchmark: str | Path, root: str | Path, *, scorers: Sequence[str] = DEFAULT_SCORERS,
    transform: Callable | None = None, ood: Sequence[str] = ("holdout",), ood_roots: dict[str, str | Path] | None = None,
    out: str | Path | None = None, image_size: int = 448, batch_size: int = 32, device: str = "auto",
    workers: int | None = None, amp: bool = False, base_rate: float | None = None, repeats: int = 10, seed: int = 0,
    odin_epsilon: float = 0.0, gram_orders: int = 10, progress: bool = False,
) -> dict:
    """Evaluate any ``torch.nn.Module`` classifier of the benchmark's K ID classes (in label order) and
    return the results ``fgood-bench evaluate`` writes to results.json (``metrics[ood_set][scorer]``).

    ``benchmark``: the benchmark's manifest (build-splits); ``root``: its dataset folder. ``ood``: as the
    CLI's ``--ood``, ``"holdout"`` or ``"NAME=MANIFEST"``; ``ood_roots``: NAME -> dataset folder (default
    ``root``). ``transform``: PIL image -> normalised input tensor (e.g. torchvision transforms v2); by
    default the paper's test transform at ``image_size`` (resize to 512/448 of it, centre crop, ImageNet
    normalisation), exactly as the CLI. ``out``: also write the CLI's reports and scores.parquet there.
    ``amp``: as the CLI's ``--amp``, a float16 backbone on CUDA (faster, not exact); default strict float32.
    Feature scorers (mahalanobis, gram) need a ResNet-style model with ``layer1``..``layer4``.
    """
    if not isinstance(model, nn.Module):
        raise FgoodError(f"evaluate_model needs a torch.nn.Module, not {type(model).__name__}; for a score function "
                         "use evaluate_scores")
    request = _request(benchmark, root, list(scorers), transform, ood, ood_roots, out, image_size, batch_size, device,
                       workers, amp, base_rate, repeats, seed, odin_epsilon, gram_orders, progress)
    return evaluate(request, model=model)


def evaluate_scores(
    score_fn: Callable[[torch.Tensor], torch.Tensor], benchmark: str | Path, root: str | Path, *, name: str = "score",
    transform: Callable | None = None, ood: Sequence[str] = ("holdout",), ood_roots: dict[str, str | Path] | None = None,
    out: str | Path | None = None, image_size: int = 448, batch_size: int = 32, device: str = "cpu",
    workers: int | None = None, base_rate: float | None = None, repeats: int = 10, seed: int = 0, progress: bool = False,
) -> dict:
    """Evaluate any callable that maps a batch of inputs (B, C, H, W) on ``device`` to B *ID scores*
    (higher = more in-distribution), e.g. ``lambda x: -detector.predict(x)`` for a pytorch-ood
    detector, whose scores are outlier scores. The results are ``evaluate``'s, with one scorer
    ``name``; ``id_accuracy`` is None (a score function makes no class predictions). Other arguments
    as :func:`evaluate_model`; batches are built on ``device``, where ``score_fn``'s model must be.
    """
    if not callable(score_fn):
        raise FgoodError(f"evaluate_scores needs a callable mapping a batch to scores, not {type(score_fn).__name__}")
    request = _request(benchmark, root, [name], transform, ood, ood_roots, out, image_size, batch_size, device,
                       workers, False, base_rate, repeats, seed, 0.0, 10, progress)
    return evaluate(request, model=ScoreFunction(score_fn), scorers=[ScoreColumn(name)])


def _request(benchmark, root, scorers, transform, ood, ood_roots, out, image_size, batch_size, device, workers, amp,
             base_rate, repeats, seed, odin_epsilon, gram_orders, progress) -> EvaluateRequest:
    config = TrainConfig(weights=None, batch_size=batch_size, image_size=image_size, device=device, workers=workers)
    return EvaluateRequest(
        checkpoint=None, manifest=Path(benchmark), root=Path(root), out=None if out is None else Path(out), ood=list(ood),
        ood_roots={name: Path(path) for name, path in (ood_roots or {}).items()}, scorers=scorers, config=config, amp=amp,
        image_size=image_size, base_rate=base_rate, repeats=repeats, seed=seed, odin_epsilon=odin_epsilon, gram_orders=gram_orders,
        plots=False, progress=progress, transform=transform,
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
