"""How far reduced-precision scoring moves OOD metrics from float32 (docs/evaluation.md, "Precision").

ResNet-18 at 32 x 32, 2,000 images (1,000 ID, 1,000 OOD), four seeds; the backbone under bf16 or
float16 autocast with the pooling and classification head in float32 (tools/precision.py), against
strict float32. Two networks per seed: random-init (logits of all images nearly equal: the worst
case for rank statistics) and briefly trained (30 SGD steps on 8 synthetic classes, OOD = 8 unseen
classes; confident, so MSP's ranking hangs on small differences of large logit gaps). Prints, per
network and precision, the worst over seeds and scorers (MSP, MaxLogit, Energy).

    python3 scripts/precision_check.py [--device cuda] [--seeds 4]

About 2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import spearmanr

from fgood_bench.evaluation.scorers import MSP, Energy, MaxLogit
from fgood_bench.metrics import ood_metrics
from fgood_bench.tools import precision
from fgood_bench.tools.models import build_model

COUNT, CLASSES = 2000, 8


def synthetic_classes(count: int, generator: torch.Generator, ood: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised noise images tinted by their class's colour; OOD images use 8 colours never trained on."""
    colours = torch.rand(2 * CLASSES, 3, 1, 1, generator=torch.Generator().manual_seed(123))
    labels = torch.randint(0, CLASSES, (count,), generator=generator)
    images = 0.6 * torch.rand(count, 3, 32, 32, generator=generator) + 0.4 * colours[labels + (CLASSES if ood else 0)]
    return (images - 0.45) / 0.225, labels


def networks(seed: int, device: torch.device):
    """(name, eval-mode model, inputs: the first half ID, the second OOD) for one seed."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model("resnet18", CLASSES).to(device)
    images = torch.cat([synthetic_classes(COUNT // 2, generator)[0], synthetic_classes(COUNT // 2, generator, ood=True)[0]])
    yield "random-init", model.eval(), images
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(30):
        x, y = synthetic_classes(64, generator)
        loss = torch.nn.functional.cross_entropy(model(x.to(device)), y.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    yield "trained 30 steps", model.eval(), images


def logits(model, images: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> np.ndarray:
    precision.INFERENCE_DTYPE = dtype or torch.float16
    with precision.Inference(model, device, amp=dtype is not None) as infer:
        return torch.cat([infer(batch.to(device)).float().cpu() for batch in images.split(250)]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    device, half = torch.device(args.device), COUNT // 2
    worst: dict[tuple[str, str], list[float]] = {}
    for seed in range(args.seeds):
        for network, model, images in networks(seed, device):
            exact = logits(model, images, device, None)
            for dtype in (torch.bfloat16, torch.float16):
                reduced = logits(model, images, device, dtype)
                row = worst.setdefault((network, str(dtype).removeprefix("torch.")), [1.0, 0.0, 0.0, 0.0])
                for scorer in (MSP(), MaxLogit(), Energy()):
                    ours, reference = scorer.score({"logits": reduced}), scorer.score({"logits": exact})
                    a, b = ood_metrics(ours[:half], ours[half:]), ood_metrics(reference[:half], reference[half:])
                    rho = spearmanr(ours, reference)[0] if np.ptp(reference) > 0 else 1.0
                    deltas = [abs(a[k] - b[k]) for k in ("auroc", "aupr_out", "fpr95")]
                    row[:] = [min(row[0], rho), *(max(x, d) for x, d in zip(row[1:], deltas))]
    print(f"worst over {args.seeds} seeds and MSP / MaxLogit / Energy, {COUNT} images, against strict float32 ({args.device})")
    print("| network | backbone | min Spearman | max ΔAUROC | max ΔAUPR | max ΔFPR95 (ID images) |\n|---|---|---|---|---|---|")
    for (network, dtype), (rho, auroc, aupr, fpr95) in worst.items():
        print(f"| {network} | {dtype} | {rho:.5f} | {auroc:.1e} | {aupr:.1e} | {round(fpr95 * half)} |")


if __name__ == "__main__":
    main()
