#!/usr/bin/env bash
# GPU check (about 5 minutes on one H100/H200).
# Part 1, speed: ResNet-50 at 448 in bf16 + channels_last.
#  1. model-only inference on synthetic uint8 batches already on the GPU (images/s), bf16, fp16 (evaluate --amp)
#     and strict fp32 with TF32 off (the default of scoring: tools/precision.py)
#  2. end-to-end inference from JPEG files through fgood-bench's loader (images/s), and its ratio to 1
#  3. training steps/s (batch 32, SGD, bf16 autocast) on synthetic data
#  4. MixupOE steps/s (32 ID + 32 outliers, two forward passes) with fgood-bench's step (bf16, channels_last,
#     mixing on the device) against a faithful re-implementation of the reference loop (fp32, no AMP,
#     NCHW), same GPU, same run; target >= 3x
# Part 2, correctness of the CUDA paths (scripts/gpu_pipeline_check.py): bf16 / fp16 scoring precision against fp32,
# the demo pipeline with --device cuda, build-splits under torchrun (1 process; 2 NCCL ranks).
# Prints one summary block with the GPU's name; record it in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - "$@" <<'PY'
import os, sys, tempfile, time
from pathlib import Path
import numpy as np, torch, torchvision
sys.path.insert(0, "scripts")
from bench_pipeline import natural_jpeg
from fgood_bench.tools.images import DeviceBatch, Geometry, ImageDataset, jitter_factors, make_loader

assert torch.cuda.is_available(), "no CUDA device"
device = torch.device("cuda")
torch.backends.cudnn.benchmark = True
model = torchvision.models.resnet50(num_classes=200).to(device).to(memory_format=torch.channels_last).eval()
to_input = DeviceBatch(device, channels_last=True)
batch = 256

def timed(fn, seconds=10.0):
    fn(); torch.cuda.synchronize()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += fn(); torch.cuda.synchronize()
    return count / (time.perf_counter() - start)

synthetic = torch.randint(0, 256, (batch, 3, 448, 448), dtype=torch.uint8, device=device)
@torch.inference_mode()
def model_only(dtype=torch.bfloat16):
    with torch.autocast("cuda", dtype):
        model(to_input(synthetic))
    return batch
model_rate = timed(model_only)
fp16_rate = timed(lambda: model_only(torch.float16))  # evaluate --amp (tools/precision.py)
from fgood_bench.tools.precision import strict_float32
@torch.inference_mode()
def model_only_fp32():
    with strict_float32():
        model(to_input(synthetic))
    return batch
fp32_rate = timed(model_only_fp32)  # the default precision of scores

scratch = Path(tempfile.mkdtemp())
paths = []
for k in range(2048):
    (scratch / f"{k}.jpg").write_bytes(natural_jpeg(500 if k % 4 else 375, 375 if k % 4 else 500, k % 64))
    paths.append(f"{k}.jpg")
workers = min(16, len(os.sched_getaffinity(0)))
# batch 64, as evaluate (2 x the training batch): 32 batches a pass, so every worker is busy (with 8 batches of
# 256 a pass, half of 16 workers idled and the first run measured 0.30 of model-only)
loader = make_loader(ImageDataset(scratch, paths, np.zeros(len(paths)), Geometry()), 64, workers=workers, pin_memory=True)
@torch.inference_mode()
def end_to_end():
    n = 0
    for images, _, _ in loader:
        with torch.autocast("cuda", torch.bfloat16):
            model(to_input(images))
        n += images.shape[0]
    return n
e2e_rate = timed(end_to_end, seconds=20.0)

train_model = torchvision.models.resnet50(num_classes=200).to(device).to(memory_format=torch.channels_last).train()
optimizer = torch.optim.SGD(train_model.parameters(), lr=1e-3, momentum=0.9)
images, labels = synthetic[:32], torch.randint(0, 200, (32,), device=device)
factors = jitter_factors(0, 0, range(32))
def train_step():
    with torch.autocast("cuda", torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(train_model(to_input(images, factors)), labels)
    optimizer.zero_grad(set_to_none=True); loss.backward(); optimizer.step()
    return 1
steps = timed(train_step)

from fgood_bench.training.methods import Hyper, method_loss
hyper, mixing = Hyper(), torch.Generator().manual_seed(0)
outliers = synthetic[32:64]
def mixupoe_step():
    with torch.autocast("cuda", torch.bfloat16):
        loss, _ = method_loss("mixupoe", train_model, to_input(images, factors), labels, to_input(outliers, factors),
                              200, hyper, mixing)
    optimizer.zero_grad(set_to_none=True); loss.backward(); optimizer.step()
    return 1
ours = timed(mixupoe_step)
reference_model = torchvision.models.resnet50(num_classes=200).to(device).train()
reference_optimizer = torch.optim.SGD(reference_model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
x_in = (images.float() / 255 - 0.45) / 0.225
x_out = (outliers.float() / 255 - 0.45) / 0.225
def reference_step():  # as the MixOE reference: fp32, ID pass then mixed pass, soft targets
    lam = float(np.random.beta(1.0, 1.0))
    logits = reference_model(x_in)
    mixed = reference_model(lam * x_in + (1 - lam) * x_out)
    target = lam * torch.nn.functional.one_hot(labels, 200).float() + (1 - lam) / 200
    loss = torch.nn.functional.cross_entropy(logits, labels) - 5.0 * (target * mixed.log_softmax(1)).sum(1).mean()
    reference_optimizer.zero_grad(); loss.backward(); reference_optimizer.step()
    return 1
reference = timed(reference_step)

print(f"GPU: {torch.cuda.get_device_name()} | torch {torch.__version__} | loader workers {workers}")
print(f"model-only inference, bf16, batch {batch}: {model_rate:8.0f} img/s")
print(f"model-only inference, fp16, batch {batch}: {fp16_rate:8.0f} img/s  ({fp16_rate / model_rate:.2f} of bf16)")
print(f"model-only inference, fp32, TF32 off:     {fp32_rate:8.0f} img/s  ({fp32_rate / model_rate:.2f} of bf16, "
      f"{fp32_rate / e2e_rate:.2f} of the end-to-end rate below)")
print(f"end-to-end from 500x375 JPEGs:           {e2e_rate:8.0f} img/s  ({e2e_rate / model_rate:.2f} of model-only; target >= 0.8)")
print(f"training, batch 32 at 448, bf16:         {steps:8.1f} steps/s ({steps * 32:.0f} img/s)")
print(f"MixupOE step, 32 + 32 at 448: ours {ours:6.1f} steps/s, reference loop (fp32) {reference:6.1f} steps/s "
      f"-> {ours / reference:.2f}x (target >= 3x)")
PY
python3 scripts/gpu_pipeline_check.py
