"""GPU correctness check (part 2 of scripts/gpu_check.sh): the pipeline's CUDA paths, not its speed.

1. Scoring precision: a ResNet-50 at 448 scores the same images in strict fp32 (TF32 off: the
   default of ``tools/precision.py``), in PyTorch's default fp32 (TF32 convolutions: cuDNN's
   ``allow_tf32``, on by default), under
   full bf16 autocast, and with the backbone in bf16 or in fp16 (``evaluate --amp``) but the head
   and all score arithmetic in fp32; prints the logit error and
   the rank agreement of MSP, MaxLogit and Energy with fp32 (Spearman), and the AUROC change on an
   ID/OOD split of the images.
2. ``fgood-bench demo --device cuda``: build-splits, filter-outliers, train (standard, MixupOE) and
   evaluate on the GPU (training in bf16, scores in strict fp32).
3. ``torchrun`` with 1 process, and with 2 processes (NCCL), of build-splits on the demo's birds.
   Two NCCL ranks on one GPU are refused by NCCL itself; the line says so when that happens.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from scipy.special import logsumexp, softmax
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import natural_jpeg  # noqa: E402

from fgood_bench.metrics import ood_metrics  # noqa: E402
from fgood_bench.tools.images import DeviceBatch, Geometry, ImageDataset, make_loader  # noqa: E402
from fgood_bench.tools.precision import strict_float32  # noqa: E402


def precision_study(device: torch.device, count: int = 256, workers: int = 8) -> None:
    scratch = Path(tempfile.mkdtemp())
    paths = []
    for k in range(count):
        (scratch / f"{k}.jpg").write_bytes(natural_jpeg(500, 375, k))
        paths.append(f"{k}.jpg")
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=200).to(device).eval()
    loader = make_loader(ImageDataset(scratch, paths, np.zeros(count), Geometry()), 64, workers=workers)
    to_input = DeviceBatch(device)
    backbone = torch.nn.Sequential(*list(model.children())[:-1])
    outputs = {"fp32": [], "tf32": [], "bf16": [], "bf16 backbone, fp32 head": [], "fp16 backbone, fp32 head": []}
    with torch.inference_mode():
        for images, _, _ in loader:
            x = to_input(images)
            with strict_float32():
                outputs["fp32"].append(model(x).double().cpu())
            saved, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, True  # PyTorch's default for convolutions
            try:
                outputs["tf32"].append(model(x).double().cpu())
            finally:
                torch.backends.cudnn.allow_tf32 = saved
            with torch.autocast(device.type, torch.bfloat16):
                outputs["bf16"].append(model(x).double().cpu())
            for dtype, name in ((torch.bfloat16, "bf16"), (torch.float16, "fp16")):
                with torch.autocast(device.type, dtype):
                    features = backbone(x)
                outputs[f"{name} backbone, fp32 head"].append(model.fc(features.float().flatten(1)).double().cpu())
    logits = {k: torch.cat(v).numpy() for k, v in outputs.items()}
    is_ood = np.arange(count) % 2 == 1  # an arbitrary ID/OOD labelling: only the change matters
    scores = {name: {"msp": softmax(l, 1).max(1), "maxlogit": l.max(1), "energy": logsumexp(l, 1)} for name, l in logits.items()}
    for name in ("tf32", "bf16", "bf16 backbone, fp32 head", "fp16 backbone, fp32 head"):
        error = np.abs(logits[name] - logits["fp32"]).max()
        parts = []
        for scorer, value in scores[name].items():
            reference = scores["fp32"][scorer]
            rho = spearmanr(value, reference).statistic
            auroc = ood_metrics(value[~is_ood], value[is_ood])["auroc"]
            auroc_ref = ood_metrics(reference[~is_ood], reference[is_ood])["auroc"]
            parts.append(f"{scorer}: spearman {rho:.6f}, |dAUROC| {abs(auroc - auroc_ref):.1e}, {len(np.unique(value))} distinct")
        print(f"[precision] {name:<25} max |logit - fp32| {error:.2e}; " + "; ".join(parts))


def run(command: list[str], label: str) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    print(f"[{label}] exit {done.returncode} in {time.perf_counter() - started:.1f} s {'' if done.returncode == 0 else '| ' + last}")
    return done


def main() -> int:
    assert torch.cuda.is_available(), "no CUDA device"
    device = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name()} | torch {torch.__version__} | NCCL {torch.cuda.nccl.version()}")
    precision_study(device)
    work = Path(tempfile.mkdtemp()) / "demo"
    demo = run([sys.executable, "-m", "fgood_bench", "demo", "--device", "cuda", "--workdir", str(work)], "demo --device cuda")
    if demo.returncode:
        print(demo.stdout[-3000:], demo.stderr[-3000:])
    else:
        print("\n".join(line for line in demo.stdout.splitlines() if line.startswith(("|", "[", "outliers"))))
    birds = work / "data" / "birds"
    tiny = ["--num-id", "8", "--arch", "resnet18", "--weights", "none", "--image-size", "64", "--epochs", "2",
            "--batch-size", "16", "--workers", "2"]
    for processes in (1, 2):
        out = work.parent / f"torchrun{processes}"
        done = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
                    "-m", "fgood_bench", "build-splits", "bird", "--root", str(birds), "--out", str(out), *tiny],
                   f"torchrun {processes} process(es), build-splits, NCCL when > 1")
        if done.returncode and "Duplicate GPU" in done.stderr + done.stdout:
            print("  (NCCL refuses two ranks on one GPU: the multi-GPU path needs a machine with several GPUs)")
        elif done.returncode:
            print(done.stderr[-4000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
