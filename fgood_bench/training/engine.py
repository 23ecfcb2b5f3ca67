"""Training and inference loops: one GPU, several through ``torchrun`` (DDP), or the CPU.

Launched with ``torchrun --nproc-per-node N -m fgood_bench ...`` the same code trains with
DistributedDataParallel (NCCL on GPUs, gloo on CPUs) and shards inference, gathering the
results on rank 0. On CUDA training runs in bf16 autocast with channels_last tensors, and
inference in strict float32 (:mod:`fgood_bench.training.precision`).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from fgood_bench.errors import FgoodError
from fgood_bench.interrupt import interruptible
from fgood_bench.progress import SlowRunNotice, progress as progress_bar
from fgood_bench.training.data import DeviceBatch, Geometry, ImageDataset, jitter_factors, make_loader
from fgood_bench.training.models import atomic_torch_save, unwrap
from fgood_bench.training.precision import Inference, classification_heads


@dataclass
class TrainConfig:
    """Standard (cross-entropy) training; defaults are the paper's recipe (Appendix D.1)."""

    arch: str = "resnet50"
    weights: str | None = "IMAGENET1K_V1"  # the MixOE reference's resnet50(pretrained=True)
    epochs: int = 30
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = True  # SGD as in the OE code lineage the paper builds on
    weight_decay: float = 1e-5  # the MixOE reference's --decay default (train/train_*.py)
    batch_size: int = 32
    image_size: int = 448
    resize_mode: str = "square"  # 'square' (Appendix D.1) or 'shorter' (H.2), see data.Geometry
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    amp: bool = True
    channels_last: bool = True

    @property
    def geometry(self) -> Geometry:
        return Geometry.for_crop(self.image_size, self.resize_mode)


@dataclass
class Runtime:
    """Where this process runs: its rank among ``world`` processes and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup_runtime(device: str = "auto") -> Runtime:
    """Join the ``torchrun`` process group if launched by it; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FgoodError("--device cuda asked for, but PyTorch sees no CUDA device")
        if world > 1 and local_rank >= torch.cuda.device_count():
            # one process per GPU: NCCL refuses two ranks on one device
            raise FgoodError(f"torchrun started more processes on this node than the {torch.cuda.device_count()} CUDA "
                             f"device(s) PyTorch sees: use --nproc-per-node {torch.cuda.device_count()} (or fewer)")
        torch_device = torch.device("cuda", local_rank if world > 1 else torch.device(device).index or 0)
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch_device.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return Runtime(rank=rank, world=world, device=torch_device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffles per epoch and rank (as ``DistributedSampler``) and hands each item its own seed.

    Items are ``(index, seed)`` pairs, so the random crop of an image depends on the run's seed,
    the epoch and the image only: not on the number of loader workers, and the same after
    ``--resume``.
    """

    def __init__(self, size: int, rank: int, world: int, seed: int):
        self.inner = torch.utils.data.DistributedSampler(range(size), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        self.seed = seed
        self.epoch = 0
        self.skip = 0  # items of this epoch already trained on (a run resumed mid-epoch)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner) - self.skip

    def __iter__(self):
        base = (self.seed * 1_000_003 + self.epoch) * 10_000_019
        return ((index, base + index) for index in list(self.inner)[self.skip:])


def _autocast(runtime: Runtime, enabled: bool):
    return torch.autocast(device_type=runtime.device.type, dtype=torch.bfloat16, enabled=enabled and runtime.cuda)


@dataclass
class Outliers:
    """The outlier images of outlier-exposure methods and how many each step draws."""

    root: Path
    paths: list[str]
    batch_size: int = 32


class OutlierStream(torch.utils.data.Sampler):
    """An endless, seeded stream of outlier indices (a fresh permutation per pass over the set),
    read from ``start`` on; this rank takes every ``world``-th item. Items are ``(index, seed)``."""

    def __init__(self, size: int, start: int, count: int, rank: int, world: int, seed: int):
        self.size, self.start, self.count, self.rank, self.world, self.seed = size, start, count, rank, world, seed

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        position = self.start + self.rank
        permutation, permutation_pass = None, -1
        for _ in range(self.count):
            current = position // self.size
            if current != permutation_pass:
                permutation = np.random.default_rng([self.seed, 7, current]).permutation(self.size)
                permutation_pass = current
            yield int(permutation[position % self.size]), (self.seed * 1_000_003 + 7) * 10_000_019 + position
            position += self.world


@interruptible  # Ctrl-C stops within the current step
def train_classifier(
    model: nn.Module, root: Path, paths: Sequence[str], labels: Sequence[int], config: TrainConfig,
    runtime: Runtime, work_dir: Path, resume: bool = False, progress: bool = True, *,
    method: str = "standard", hyper=None, outliers: Outliers | None = None, max_steps: int | None = None,
    log: Path | None = None,
) -> nn.Module:
    """Train with SGD and a per-step cosine schedule; a checkpoint after every epoch.

    ``method`` is one of :data:`fgood_bench.training.methods.METHODS` (cross-entropy by default);
    outlier-exposure methods draw ``outliers.batch_size`` outliers per step from a seeded stream.
    ``work_dir/checkpoint.pt`` holds the model, optimiser, schedule, every rank's RNG states and
    the outlier stream's position; with ``resume`` training continues from it (a finished run
    returns at once). ``max_steps`` stops early (smoke runs); ``log`` receives one JSON line per
    epoch (and every 50 steps).
    """
    from fgood_bench.training.methods import Hyper, attach_rotation_head, method_loss

    hyper = hyper or Hyper()
    hyper.check()
    if method not in ("standard", "rotation") and outliers is None:
        raise FgoodError(f"method {method} needs an outlier set (--outliers)")
    seed_everything(config.seed)
    num_classes = classification_heads(model)[0].out_features  # not the rotation head's 4
    if method == "rotation":
        attach_rotation_head(model)
    model = model.to(runtime.device)
    if config.channels_last and runtime.cuda:
        model = model.to(memory_format=torch.channels_last)
    dataset = ImageDataset(root, paths, labels, config.geometry, train=True)
    sampler = EpochSampler(len(dataset), runtime.rank, runtime.world, config.seed)
    per_rank_batch = max(1, config.batch_size // runtime.world)
    loader = make_loader(dataset, per_rank_batch, sampler=sampler, drop_last=len(sampler) > per_rank_batch,
                         workers=config.workers, seed=config.seed, pin_memory=runtime.cuda)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov, weight_decay=config.weight_decay)
    steps_per_epoch = len(loader)
    steps = max(1, config.epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    checkpoint = work_dir / "checkpoint.pt"
    data_key = _data_key(paths, labels) + (f"+{method}:{hyper}" if method != "standard" else "")
    if outliers is not None:
        data_key += "+" + _data_key(outliers.paths, [0] * len(outliers.paths))
    step, outlier_position, mixing_state = 0, 0, None
    if resume and checkpoint.is_file():
        step, outlier_position, mixing_state = _resume(checkpoint, model, optimizer, schedule, config, data_key, runtime,
                                                       steps_per_epoch)
    net = nn.parallel.DistributedDataParallel(model) if runtime.world > 1 else model
    to_input = DeviceBatch(runtime.device, config.channels_last and runtime.cuda)
    mixing = torch.Generator().manual_seed(config.seed)
    start, done_in_epoch = divmod(step, steps_per_epoch)  # resume at the exact step, mid-epoch included
    slow_run = SlowRunNotice(runtime.device.type, min(steps, max_steps or steps) - step) if runtime.is_main else None
    for epoch in range(start, config.epochs):
        skip = done_in_epoch if epoch == start else 0
        sampler.set_epoch(epoch, skip * per_rank_batch)
        mixing.manual_seed(config.seed * 1_000_003 + epoch)
        if skip and mixing_state is not None:
            mixing.set_state(mixing_state)
        net.train()
        out_iter = None
        if outliers is not None:
            out_per_rank = max(1, outliers.batch_size // runtime.world)
            stream = OutlierStream(len(outliers.paths), outlier_position + skip * out_per_rank * runtime.world,
                                   (steps_per_epoch - skip) * out_per_rank,
                                   runtime.rank, runtime.world, config.seed)
            out_loader = make_loader(ImageDataset(outliers.root, outliers.paths, np.zeros(len(outliers.paths), np.int64),
                                                  config.geometry, train=True),
                                     out_per_rank, sampler=stream, workers=config.workers, pin_memory=runtime.cuda)
            out_iter = iter(out_loader)
        bar = progress_bar(loader, desc=f"epoch {epoch + 1}/{config.epochs}", enabled=progress and runtime.is_main,
                           items_per_step=config.batch_size, overall=(epoch * steps_per_epoch, steps))
        totals: dict[str, float] = {}
        for batch, (images, targets, rows) in enumerate(bar):
            inputs = to_input(images, jitter_factors(config.seed, epoch, rows))
            targets = targets.to(runtime.device, non_blocking=True)
            out_inputs = None
            if out_iter is not None:
                out_images, _, out_rows = next(out_iter)
                out_inputs = to_input(out_images, jitter_factors(config.seed, epoch, out_rows, stream=1))
            with _autocast(runtime, config.amp):
                loss, logs = method_loss(method, net, inputs, targets, out_inputs, num_classes, hyper, mixing, logits_of)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if slow_run is not None:
                slow_run.step()
            logs["loss"] = loss.item()
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value
            bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)
            if log is not None and runtime.is_main and step % 50 == 0:
                _log(log, {"epoch": epoch + 1, "step": step, "lr": schedule.get_last_lr()[0], **logs})
            if max_steps is not None and step >= max_steps:
                break
        if outliers is not None and step % steps_per_epoch == 0:  # the epoch is complete (not cut by max_steps)
            outlier_position += steps_per_epoch * outliers.batch_size
        rng_states = _rng_states(runtime)  # every rank's, gathered: all ranks take part
        if runtime.is_main:
            _save_checkpoint(checkpoint, model, optimizer, schedule, config, data_key, step, steps_per_epoch, rng_states,
                             outlier_position, mixing.get_state())
            if log is not None:
                _log(log, {"epoch": epoch + 1, "step": step, "lr": schedule.get_last_lr()[0],
                           **{f"mean_{k}": v / max(1, batch + 1) for k, v in totals.items()}})
        runtime.barrier()
        if max_steps is not None and step >= max_steps:
            break
    return model


def _log(path: Path, record: dict) -> None:
    from fgood_bench.outputs import append_line, strict_json

    append_line(path, strict_json(record))


def logits_of(output):
    """Logits from a model's output (GoogLeNet and Inception return a tuple with auxiliary logits)."""
    return output.logits if hasattr(output, "logits") else output


def _rng_states(runtime: Runtime) -> list:
    """This rank's CPU and device generator states, gathered from every rank (rank order)."""
    state = (torch.random.get_rng_state(), torch.cuda.get_rng_state(runtime.device) if runtime.cuda else None)
    if runtime.world == 1:
        return [state]
    states = [None] * runtime.world
    dist.all_gather_object(states, state)
    return states


def _save_checkpoint(path: Path, model, optimizer, schedule, config: TrainConfig, data_key: str, step: int,
                     steps_per_epoch: int, rng_states: list, outlier_position: int, mixing_state: torch.Tensor) -> None:
    """The exact position: ``step`` (the epoch and the batch within it), the outlier stream's position at
    the start of that epoch, the mixing generator, every rank's RNG states, model, optimiser and schedule."""
    atomic_torch_save({
        "epochs_done": step // steps_per_epoch,
        "step": step,
        "steps_per_epoch": steps_per_epoch,
        "mixing_rng": mixing_state,
        "outlier_position": outlier_position,
        "config": _config_key(config),
        "data": data_key,
        "model": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": rng_states,
    }, path)


def _resume(path: Path, model, optimizer, schedule, config: TrainConfig, data_key: str, runtime: Runtime,
            steps_per_epoch: int) -> tuple[int, int, torch.Tensor | None]:
    """Load ``path`` into the model, optimiser and schedule; returns (step, outlier position, mixing state)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        settings, data, rng = state["config"], state["data"], state["rng"]
    except Exception as err:  # a damaged file or one from another version
        raise FgoodError(f"{path}: not a readable training checkpoint ({type(err).__name__}: {err}); remove it") from None
    if settings != _config_key(config):
        changed = ", ".join(f"{key} {settings.get(key)!r} -> {value!r}" for key, value in _config_key(config).items()
                            if settings.get(key) != value)
        raise FgoodError(f"{path}: was written with other training settings ({changed}); "
                         "rerun with the checkpoint's settings, or start over (train --restart, build-splits --overwrite)")
    if data != data_key:
        raise FgoodError(f"{path}: was written for other {_data_difference(data, data_key)}; start over "
                         "(train --restart, build-splits --overwrite)")
    if len(rng) != runtime.world:
        raise FgoodError(f"{path}: was written by {len(rng)} processes, this run has {runtime.world}")
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    cpu_state, device_state = rng[runtime.rank]
    torch.random.set_rng_state(cpu_state)
    if device_state is not None and runtime.cuda:
        torch.cuda.set_rng_state(device_state, runtime.device)
    if state.get("steps_per_epoch", steps_per_epoch) != steps_per_epoch:
        raise FgoodError(f"{path}: was written with {state['steps_per_epoch']} steps per epoch, this run has {steps_per_epoch}")
    step = int(state.get("step", int(state["epochs_done"]) * steps_per_epoch))  # older checkpoints: whole epochs
    return step, int(state.get("outlier_position", 0)), state.get("mixing_rng")


def _data_difference(old: str, new: str) -> str:
    """What differs between two data keys (images+labels digest[+method:hyper][+outliers digest])."""
    old_parts, new_parts = old.split("+"), new.split("+")
    if old_parts[0] != new_parts[0]:
        return "training images or labels"
    old_method = next((p for p in old_parts[1:] if ":" in p), "standard")
    new_method = next((p for p in new_parts[1:] if ":" in p), "standard")
    if old_method != new_method:
        return f"method settings (checkpoint: {old_method}; now: {new_method})"
    return "outlier images"


def _config_key(config: TrainConfig) -> dict:
    """Settings that must match for a resumed run to be the same run."""
    return {k: v for k, v in asdict(config).items() if k not in ("device", "workers")}


def _data_key(paths: Sequence[str], labels: Sequence[int]) -> str:
    """A digest of the training images and labels, so that --resume cannot mix datasets."""
    digest = hashlib.sha256()
    for path, label in zip(paths, labels):
        digest.update(f"{path}\t{int(label)}\n".encode())
    return digest.hexdigest()


@torch.inference_mode()
def predict_logits(
    model: nn.Module, root: Path, paths: Sequence[str], config: TrainConfig, runtime: Runtime, progress: bool = True,
) -> np.ndarray | None:
    """Logits (float32, one row per path, in order) on rank 0; each rank scores a shard. None elsewhere."""
    model = model.to(runtime.device).eval()
    if config.channels_last and runtime.cuda:
        model = model.to(memory_format=torch.channels_last)
    shard = list(range(runtime.rank, len(paths), runtime.world))
    dataset = ImageDataset(root, [paths[i] for i in shard], np.zeros(len(shard), np.int64), config.geometry)
    loader = make_loader(dataset, config.batch_size * 2, workers=config.workers, pin_memory=runtime.cuda)
    to_input = DeviceBatch(runtime.device, config.channels_last and runtime.cuda)
    outputs = []
    with Inference(model, runtime.device, amp=False) as infer:  # strict float32 (training/precision.py)
        for images, _, _ in progress_bar(loader, desc="predicting", enabled=progress and runtime.is_main,
                                         items_per_step=config.batch_size * 2):
            outputs.append(logits_of(infer(to_input(images))).float().cpu())
    logits = torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), np.float32)
    if runtime.world == 1:
        return logits
    gathered = [None] * runtime.world if runtime.is_main else None
    dist.gather_object((shard, logits), gathered, dst=0)
    if not runtime.is_main:
        return None
    width = max((part.shape[1] for indices, part in gathered if len(indices)), default=0)
    result = np.empty((len(paths), width), np.float32)
    for indices, part in gathered:
        if len(indices):  # a rank with no image (fewer images than processes) sends nothing
            result[indices] = part
    return result
