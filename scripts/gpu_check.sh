#!/usr/bin/env bash
# GPU check (at most 8 minutes on one H100/H200 with 16 cores: Parts 1 and 2 about 4 minutes, Part 3 the rest; the
# optional compiled run of Part 3 only where the 8 minutes allow it).
# Usage: bash scripts/gpu_check.sh [--quick] [--parts 123] [--compile | --no-compile]
#   --quick       every step of Part 3 at a tiny scale on the CPU (under 3 minutes on 2 cores); Parts 1-2 need CUDA
#                 and are skipped with a line saying so
#   --parts 3     run only these parts (e.g. 3, or 12)
#   --compile     always add Part 3's build-splits --compile run (default: only if it fits the budget, never in --quick)
#   environment:  FGOOD_GPU_SCRATCH (default a new folder under $TMPDIR: the generated data, ~3.8 GB at full size),
#                 FGOOD_GPU_BUDGET_S (default 480: the compiled run is skipped when it would end after it)
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
# Part 3, build-splits dog end to end (docs/performance.md, "Preparing the end-to-end measurement"): writes a
# Tsinghua Dogs download of the real size and layout (65,228 + 5,200 JPEGs of 500 x 375, scripts/make_thudogs_like.py)
# on the local disk (timed), then times `fgood-bench build-splits dog` with the paper's recipe (ResNet-50 at 448,
# batch 32) for 1 epoch instead of 30 (one device call is limited to 10 minutes), prints each phase's time from
# the work folder's timings.json, and an extrapolation to 30 epochs, labelled as such.
# Prints one summary block with the GPU's name; record it in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the package of this checkout, installed or not
QUICK=0 PARTS=123 COMPILE=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --parts) PARTS="${2:?--parts needs a value, e.g. 3}"; shift ;;
    --compile) COMPILE=yes ;;
    --no-compile) COMPILE=no ;;
    *) echo "gpu_check.sh: unknown option $1 (use --quick, --parts N, --compile, --no-compile)" >&2; exit 2 ;;
  esac
  shift
done
START=$SECONDS
BUDGET=${FGOOD_GPU_BUDGET_S:-480}
SCRATCH=${FGOOD_GPU_SCRATCH:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$SCRATCH"
SUMMARY="$SCRATCH/summary.txt"
: > "$SUMMARY"
CUDA=$(python3 -c "import torch; print(int(torch.cuda.is_available()))")
if [ "$QUICK" = 0 ] && [ "$CUDA" = 0 ]; then
  echo "gpu_check.sh: no CUDA device; on a CPU run bash scripts/gpu_check.sh --quick" >&2
  exit 2
fi

if [[ $PARTS == *1* ]] && [ "$QUICK" = 1 ]; then
  echo "Part 1 (speed of the CUDA paths): skipped, needs CUDA (--quick runs on the CPU)" | tee -a "$SUMMARY"
elif [[ $PARTS == *1* ]]; then
python3 - "$SUMMARY" "$SCRATCH/loader_ratio" <<'PY'
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
contents = {}  # 64 different images (seed k % 64, whose k % 4 sets the orientation), each generated once
for k in range(2048):
    if k % 64 not in contents:
        contents[k % 64] = natural_jpeg(500 if k % 4 else 375, 375 if k % 4 else 500, k % 64)
    (scratch / f"{k}.jpg").write_bytes(contents[k % 64])
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

lines = [
    f"GPU: {torch.cuda.get_device_name()} | torch {torch.__version__} | loader workers {workers}",
    f"model-only inference, bf16, batch {batch}: {model_rate:8.0f} img/s",
    f"model-only inference, fp16, batch {batch}: {fp16_rate:8.0f} img/s  ({fp16_rate / model_rate:.2f} of bf16)",
    f"model-only inference, fp32, TF32 off:     {fp32_rate:8.0f} img/s  ({fp32_rate / model_rate:.2f} of bf16, "
    f"{fp32_rate / e2e_rate:.2f} of the end-to-end rate below)",
    f"end-to-end from 500x375 JPEGs:           {e2e_rate:8.0f} img/s  ({e2e_rate / model_rate:.2f} of model-only; target >= 0.8)",
    f"training, batch 32 at 448, bf16:         {steps:8.1f} steps/s ({steps * 32:.0f} img/s)",
    f"MixupOE step, 32 + 32 at 448: ours {ours:6.1f} steps/s, reference loop (fp32) {reference:6.1f} steps/s "
    f"-> {ours / reference:.2f}x (target >= 3x)",
]
print("\n".join(lines))
with open(sys.argv[1], "a") as summary:
    summary.write("Part 1:\n" + "\n".join(lines) + "\n")
Path(sys.argv[2]).write_text(f"{e2e_rate / model_rate:.2f} (end-to-end {e2e_rate:.0f} / model-only {model_rate:.0f} img/s, bf16, batch 256)")
PY
fi

if [[ $PARTS == *2* ]] && [ "$QUICK" = 1 ]; then
  echo "Part 2 (correctness of the CUDA paths): skipped, needs CUDA (--quick runs on the CPU)" | tee -a "$SUMMARY"
elif [[ $PARTS == *2* ]]; then
  python3 scripts/gpu_pipeline_check.py
  echo "Part 2: see its [precision], [demo] and [torchrun] lines above" >> "$SUMMARY"
fi

if [[ $PARTS == *3* ]]; then
  echo "== Part 3: build-splits dog end to end, 1 epoch, on generated Tsinghua Dogs-like data"
  DATA="$SCRATCH/thudogs-like"
  if [ "$QUICK" = 1 ]; then
    GENERATE=(--scale 0.002)  # 202 + 130 JPEGs of 500 x 375, every breed in both splits
    RECIPE=(--arch resnet18 --weights none --image-size 64 --batch-size 32 --workers 2 --device cpu)
    SCALE_NOTE="tiny scale on the CPU (--quick): checks the steps, measures nothing of the recipe"
  else
    GENERATE=(--distinct 4096)  # all 70,428 files; 4,096 different images written in turn (generation in seconds)
    # the paper's recipe for dog (ResNet-50 at 448, batch 32, lr 1e-3, SGD); ImageNet weights where cached (the
    # machine may reach no network; random weights cost the same time)
    WEIGHTS=$(python3 -c "import os, torch, torchvision; name = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url.rsplit('/', 1)[1]; print('IMAGENET1K_V1' if os.path.isfile(os.path.join(torch.hub.get_dir(), 'checkpoints', name)) else 'none')")
    RECIPE=(--batch-size 32 --weights "$WEIGHTS")
    SCALE_NOTE="full size: 65,228 + 5,200 JPEGs, ResNet-50 at 448, batch 32, weights $WEIGHTS"
  fi
  rm -rf "$DATA"
  GEN_START=$SECONDS
  python3 scripts/make_thudogs_like.py --out "$DATA" "${GENERATE[@]}" | tee -a "$SUMMARY"
  echo "data generation: $((SECONDS - GEN_START)) s wall" | tee -a "$SUMMARY"
  build() {  # build() LABEL [options]: one timed build-splits dog run; its timings.json summarised
    local label=$1; shift
    local out="$SCRATCH/out-$label" begin=$SECONDS
    rm -rf "$out"
    python3 -m fgood_bench build-splits dog --root "$DATA" --out "$out" --epochs 1 "${RECIPE[@]}" "$@"
    python3 - "$out/dog.work/timings.json" "$label" "$((SECONDS - begin))" "$SCALE_NOTE" "$SCRATCH/loader_ratio" <<'PY' | tee -a "$SUMMARY"
import json, sys
from pathlib import Path
timings, label, wall, note, ratio = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2], int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
phases = timings["phases"]
print(f"Part 3, build-splits dog, {label}, 1 epoch ({note}); device {timings['device']} {timings.get('device_name') or ''}".rstrip() + "; "
      f"compile {timings['compile']}{' (unavailable: ' + timings['compile_unavailable'] + ')' if timings.get('compile_unavailable') else ''}")
print(f"  command wall time {wall} s; phases sum {timings['total_seconds']:.1f} s (the rest: starting Python, importing torch)")
for name, seconds in phases.items():
    print(f"  {name:<24} {seconds:9.2f} s  ({timings['counts'][name]} x)")
epoch = sum(phases.get(k, 0.0) for k in ("training_loader_start", "training_data_wait", "training_compute", "checkpointing"))
once = timings["total_seconds"] - epoch
waiting = phases.get("training_data_wait", 0.0) / max(1e-9, phases.get("training_data_wait", 0.0) + phases.get("training_compute", 0.0))
print(f"  training: {timings['train_images'] / max(epoch, 1e-9):.0f} img/s over the epoch; the loop waited for data "
      f"{100 * waiting:.0f} % of its steady steps")
print(f"  EXTRAPOLATED, not measured: 30 epochs = {once:.0f} s once + 30 x {epoch:.0f} s per epoch = "
      f"{(once + 30 * epoch) / 60:.1f} min (goal: <= 15 min on one H100/H200)")
print(f"  loader vs model-only, inference at 448 (Part 1): {ratio.read_text() if ratio.is_file() else 'not measured in this run (Part 1 skipped)'}")
PY
    echo "$((SECONDS - begin))" > "$SCRATCH/wall-$label"
  }
  build eager
  ESTIMATE=$(( $(cat "$SCRATCH/wall-eager") + 150 ))  # compiling ResNet-50's training and inference graphs: ~2.5 min (a guess)
  LEFT=$(( BUDGET - (SECONDS - START) ))
  if [ "$COMPILE" = yes ] || { [ "$COMPILE" = auto ] && [ "$QUICK" = 0 ] && [ "$ESTIMATE" -lt "$LEFT" ]; }; then
    build compiled --compile || echo "Part 3, build-splits dog --compile: failed (see above)" | tee -a "$SUMMARY"
  elif [ "$QUICK" = 1 ] && [ "$COMPILE" = auto ]; then
    echo "Part 3, build-splits dog --compile: skipped in --quick (compiling takes minutes on a small CPU; tests/test_speed_prep.py checks the path; add --compile to run it)" | tee -a "$SUMMARY"
  else
    echo "Part 3, build-splits dog --compile: skipped (needs about ${ESTIMATE} s, ${LEFT} s left of the ${BUDGET} s budget); run: bash scripts/gpu_check.sh --parts 3 --compile" | tee -a "$SUMMARY"
  fi
  if [ "$QUICK" = 1 ]; then rm -rf "$DATA" "$SCRATCH"/out-*; fi  # the full-size data stays for a rerun's inspection
fi

echo
echo "==== summary ($((SECONDS - START)) s in all; scratch $SCRATCH) ===="
cat "$SUMMARY"
