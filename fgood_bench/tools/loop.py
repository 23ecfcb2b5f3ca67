"""Training and inference loops: one GPU, several through ``torchrun`` (DDP), or the CPU.

Launched with ``torchrun --nproc-per-node N -m fgood_bench ...`` the same code trains with
DistributedDataParallel (NCCL on GPUs, gloo on CPUs) and shards inference, gathering the
results on rank 0. On CUDA training runs in bf16 autocast with channels_last tensors, and
inference in strict float32 (:mod:`fgood_bench.tools.precision`).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from fgood_bench import paper
from fgood_bench.errors import FgoodError
from fgood_bench.interrupt import interruptible, keep
from fgood_bench.progress import SlowRunNotice, progress as progress_bar
from fgood_bench.tools.images import DeviceBatch, Geometry, ImageDataset, jitter_factors, make_loader
from fgood_bench.tools.models import atomic_torch_save, unwrap
from fgood_bench.tools.precision import Inference
from fgood_bench.tools.runtime import PhaseTimes, Runtime, compiled, seed_everything, timed_iter


@dataclass
class TrainConfig:
    """How a classifier is trained; the defaults are the fine-grained recipe (:data:`fgood_bench.paper.FINE_GRAINED`)."""

    arch: str = paper.FINE_GRAINED.arch
    weights: str | None = paper.FINE_GRAINED.weights
    epochs: int = 30
    lr: float = paper.FINE_GRAINED.lr
    momentum: float = 0.9
    nesterov: bool = True  # SGD as in the OE code lineage the paper builds on
    weight_decay: float = paper.FINE_GRAINED.weight_decay
    batch_size: int = paper.FINE_GRAINED.batch_size
    image_size: int = paper.FINE_GRAINED.image_size
    resize_mode: str = paper.FINE_GRAINED.resize_mode  # 'square' (Appendix D.1) or 'shorter' (H.2), see Geometry
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    amp: bool = True
    channels_last: bool = True
    # Decode JPEGs of at least twice the resize at 1/2, 1/4 or 1/8 scale (faster, not the exact
    # pixels of torchvision's PIL path): an explicit opt-in (build-splits --fast-decode)
    reduced_decode: bool = False
    # torch.compile the model for training and inference (--compile; eager with one warning line where
    # compiling is not available): the same computation, so resuming with or without it is the same run
    compile: bool = False

    @property
    def geometry(self) -> Geometry:
        return Geometry.for_crop(self.image_size, self.resize_mode)

    def record(self) -> dict:
        """The settings a trained model depends on, as checkpoints and manifests record them (not where it
        ran: device, workers); ``reduced_decode`` and ``compile`` only when asked, so that the records of runs
        without them do not change."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("device", "workers") and not (k in ("reduced_decode", "compile") and not v)}


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
    batch_size: int = paper.FINE_GRAINED.outlier_batch_size


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


def cosine_factor(steps: int, final: float):
    """The learning-rate factor of a per-step cosine schedule from 1 down to ``final`` (the reference's
    ``cosine_annealing(step, total_steps, 1, 1e-6 / lr)``: it ends at an absolute lr of 1e-6, not 0)."""
    return lambda step: final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))


class Objective:
    """What a training step minimises: cross-entropy on the ID batch (standard training).

    The training stage's methods (OE, EnergyOE, MixupOE, Rotation) subclass it
    (:mod:`fgood_bench.training.methods`), so that this loop knows no method.
    """

    key = ""  # recorded in the checkpoint's data key: --resume refuses a run of another objective
    needs_outliers = False

    def prepare(self, model: nn.Module) -> nn.Module:
        """Called once on the model before it moves to the device (e.g. to add a head)."""
        return model

    def loss(self, net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, out_inputs: torch.Tensor | None,
             mixing: torch.Generator) -> tuple[torch.Tensor, dict]:
        loss = nn.functional.cross_entropy(logits_of(net(inputs)), targets)
        return loss, {"ce": loss.item()}


@dataclass
class TrainData:
    """The labelled images a classifier trains on."""

    root: Path
    paths: Sequence[str]
    labels: Sequence[int]


@dataclass
class LoopOptions:
    resume: bool = False  # continue from work_dir/checkpoint.pt (a finished run returns at once)
    progress: bool = True
    max_steps: int | None = None  # stop early (smoke runs)
    log: Path | None = None  # one JSON line per epoch (and every 50 steps)
    times: PhaseTimes | None = None  # wall time of each phase (setup, data wait, compute, checkpoints) added here


@dataclass
class _State:
    """Where a run stands: its step, the outlier stream's position at the start of the epoch, the mixing generator."""

    step: int = 0
    outlier_position: int = 0
    mixing_state: torch.Tensor | None = None


@interruptible  # Ctrl-C stops within the current step
def train_classifier(model: nn.Module, data: TrainData, config: TrainConfig, runtime: Runtime, work_dir: Path, *,
                     objective: Objective | None = None, outliers: Outliers | None = None,
                     options: LoopOptions | None = None) -> nn.Module:
    """Train with SGD and a per-step cosine schedule; a checkpoint after every epoch.

    ``objective`` gives the loss (cross-entropy by default); one that needs outliers draws
    ``outliers.batch_size`` of them per step from a seeded stream. ``work_dir/checkpoint.pt`` holds
    the model, optimiser, schedule, every rank's RNG states and the outlier stream's position; with
    ``options.resume`` training continues from it at the exact step.
    """
    objective, options = objective or Objective(), options or LoopOptions()
    setup_start = time.perf_counter()
    if objective.needs_outliers and outliers is None:
        raise FgoodError(f"method {objective.key.split(':')[0]} needs an outlier set (--outliers)")
    seed_everything(config.seed)
    model = objective.prepare(model).to(runtime.device)
    if config.channels_last and runtime.cuda:
        model = model.to(memory_format=torch.channels_last)
    sampler = EpochSampler(len(data.paths), runtime.rank, runtime.world, config.seed)
    per_rank_batch = max(1, config.batch_size // runtime.world)
    loader = make_loader(ImageDataset(data.root, data.paths, data.labels, config.geometry, train=True,
                                      reduced_decode=config.reduced_decode),
                         per_rank_batch, sampler=sampler, drop_last=len(sampler) > per_rank_batch,
                         workers=config.workers, seed=config.seed, pin_memory=runtime.cuda)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov, weight_decay=config.weight_decay)
    steps_per_epoch = len(loader)
    steps = max(1, config.epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(steps, min(1.0, paper.COSINE_FINAL_LR / config.lr)))
    checkpoint = work_dir / "checkpoint.pt"
    data_key = _data_key(data.paths, data.labels) + (f"+{objective.key}" if objective.key else "")
    if outliers is not None:
        data_key += "+" + _data_key(outliers.paths, [0] * len(outliers.paths))
    state = _State()
    if options.resume and checkpoint.is_file():
        state = _resume(checkpoint, model, optimizer, schedule, config, data_key, runtime, steps_per_epoch)
        keep(checkpoint, f"epoch {state.step // steps_per_epoch} of {config.epochs} is kept in {checkpoint}")
    net = nn.parallel.DistributedDataParallel(model) if runtime.world > 1 else model
    if config.compile:
        net = compiled(net, runtime.device)
    if options.times is not None:
        options.times.add("training_setup", time.perf_counter() - setup_start)
    epoch_run = _EpochRun(net, model, objective, loader, sampler, optimizer, schedule, config, runtime, outliers, options,
                          steps_per_epoch, steps, per_rank_batch)
    start, done_in_epoch = divmod(state.step, steps_per_epoch)  # resume at the exact step, mid-epoch included
    epoch_run.slow_run = (SlowRunNotice(runtime.device.type, min(steps, options.max_steps or steps) - state.step)
                          if runtime.is_main else None)
    for epoch in range(start, config.epochs):
        epoch_run.run(epoch, done_in_epoch if epoch == start else 0, state)
        saving = time.perf_counter()
        rng_states = _rng_states(runtime)  # every rank's, gathered: all ranks take part
        if runtime.is_main:
            _save_checkpoint(checkpoint, model, optimizer, schedule, config, data_key, state, steps_per_epoch, rng_states)
            keep(checkpoint, f"epoch {state.step // steps_per_epoch} of {config.epochs} is kept in {checkpoint}")
            if options.log is not None:
                _log(options.log, {"epoch": epoch + 1, "step": state.step, "lr": schedule.get_last_lr()[0],
                                   **{f"mean_{k}": v for k, v in epoch_run.means.items()}})
        runtime.barrier()
        if options.times is not None:
            options.times.add("checkpointing", time.perf_counter() - saving)
        if options.max_steps is not None and state.step >= options.max_steps:
            break
    return model


class _EpochRun:
    """One epoch of :func:`train_classifier`: the ID batches, the outliers drawn beside them, the steps."""

    def __init__(self, net, model, objective, loader, sampler, optimizer, schedule, config, runtime, outliers, options,
                 steps_per_epoch, steps, per_rank_batch):
        self.net, self.model, self.objective, self.loader, self.sampler = net, model, objective, loader, sampler
        self.optimizer, self.schedule, self.config, self.runtime = optimizer, schedule, config, runtime
        self.outliers, self.options = outliers, options
        self.steps_per_epoch, self.steps, self.per_rank_batch = steps_per_epoch, steps, per_rank_batch
        self.to_input = DeviceBatch(runtime.device, config.channels_last and runtime.cuda)
        self.mixing = torch.Generator().manual_seed(config.seed)
        self.slow_run = None
        self.means: dict[str, float] = {}
        self.first_step = True  # the run's first step: compiling, cuDNN's autotuning (timed apart)

    def _outlier_batches(self, epoch: int, skip: int, state: _State):
        if self.outliers is None:
            return None
        runtime, outliers = self.runtime, self.outliers
        out_per_rank = max(1, outliers.batch_size // runtime.world)
        stream = OutlierStream(len(outliers.paths), state.outlier_position + skip * out_per_rank * runtime.world,
                               (self.steps_per_epoch - skip) * out_per_rank, runtime.rank, runtime.world, self.config.seed)
        dataset = ImageDataset(outliers.root, outliers.paths, np.zeros(len(outliers.paths), np.int64), self.config.geometry,
                               train=True, reduced_decode=self.config.reduced_decode)
        return iter(make_loader(dataset, out_per_rank, sampler=stream, workers=self.config.workers, pin_memory=runtime.cuda))

    def run(self, epoch: int, skip: int, state: _State) -> None:
        config, runtime, options = self.config, self.runtime, self.options
        self.sampler.set_epoch(epoch, skip * self.per_rank_batch)
        self.mixing.manual_seed(config.seed * 1_000_003 + epoch)
        if skip and state.mixing_state is not None:
            self.mixing.set_state(state.mixing_state)
        self.net.train()
        out_iter = self._outlier_batches(epoch, skip, state)
        bar = progress_bar(self.loader, desc=f"epoch {epoch + 1}/{config.epochs}", enabled=options.progress and runtime.is_main,
                           items_per_step=config.batch_size, overall=(epoch * self.steps_per_epoch, self.steps))
        totals: dict[str, float] = {}
        batches = 0
        times = options.times
        for images, targets, rows in timed_iter(bar, times, "training_data_wait", "training_loader_start"):
            step_start = time.perf_counter()
            inputs = self.to_input(images, jitter_factors(config.seed, epoch, rows))
            targets = targets.to(runtime.device, non_blocking=True)
            out_inputs = None
            if out_iter is not None:
                out_images, _, out_rows = next(out_iter)
                out_inputs = self.to_input(out_images, jitter_factors(config.seed, epoch, out_rows, stream=1))
            with _autocast(runtime, config.amp):
                loss, logs = self.objective.loss(self.net, inputs, targets, out_inputs, self.mixing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            state.step += 1
            batches += 1
            if self.slow_run is not None:
                self.slow_run.step()
            logs["loss"] = loss.item()  # waits for the step's work on the device
            if times is not None:
                times.add("training_first_step" if self.first_step else "training_compute", time.perf_counter() - step_start)
            self.first_step = False
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value
            bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)
            if options.log is not None and runtime.is_main and state.step % 50 == 0:
                _log(options.log, {"epoch": epoch + 1, "step": state.step, "lr": self.schedule.get_last_lr()[0], **logs})
            if options.max_steps is not None and state.step >= options.max_steps:
                break
        if self.outliers is not None and state.step % self.steps_per_epoch == 0:  # the epoch is complete (not cut by max_steps)
            state.outlier_position += self.steps_per_epoch * self.outliers.batch_size
        state.mixing_state = self.mixing.get_state()
        self.means = {k: v / max(1, batches) for k, v in totals.items()}


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


def _save_checkpoint(path: Path, model, optimizer, schedule, config: TrainConfig, data_key: str, state: _State,
                     steps_per_epoch: int, rng_states: list) -> None:
    """The exact position: ``step`` (the epoch and the batch within it), the outlier stream's position at
    the start of that epoch, the mixing generator, every rank's RNG states, model, optimiser and schedule."""
    atomic_torch_save({
        "epochs_done": state.step // steps_per_epoch,
        "step": state.step,
        "steps_per_epoch": steps_per_epoch,
        "mixing_rng": state.mixing_state,
        "outlier_position": state.outlier_position,
        "config": _config_key(config),
        "data": data_key,
        "model": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": rng_states,
    }, path)


def _resume(path: Path, model, optimizer, schedule, config: TrainConfig, data_key: str, runtime: Runtime,
            steps_per_epoch: int) -> _State:
    """Load ``path`` into the model, optimiser and schedule; returns where the run stands."""
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
    return _State(step, int(state.get("outlier_position", 0)), state.get("mixing_rng"))


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
    """Settings that must match for a resumed run to be the same run (compiling or not computes the same)."""
    return {k: v for k, v in config.record().items() if k != "compile"}


def _data_key(paths: Sequence[str], labels: Sequence[int]) -> str:
    """A digest of the training images and labels, so that --resume cannot mix datasets."""
    digest = hashlib.sha256()
    for path, label in zip(paths, labels):
        digest.update(f"{path}\t{int(label)}\n".encode())
    return digest.hexdigest()


@torch.inference_mode()
def predict_logits(
    model: nn.Module, root: Path, paths: Sequence[str], config: TrainConfig, runtime: Runtime, progress: bool = True,
    times: PhaseTimes | None = None,
) -> np.ndarray | None:
    """Logits (float32, one row per path, in order) on rank 0; each rank scores a shard. None elsewhere.
    ``times`` gets the wall time of its phases (setup, loader start, data wait, first batch, compute)."""
    setup_start = time.perf_counter()
    model = model.to(runtime.device).eval()
    if config.channels_last and runtime.cuda:
        model = model.to(memory_format=torch.channels_last)
    shard = list(range(runtime.rank, len(paths), runtime.world))
    dataset = ImageDataset(root, [paths[i] for i in shard], np.zeros(len(shard), np.int64), config.geometry,
                           reduced_decode=config.reduced_decode)
    loader = make_loader(dataset, config.batch_size * 2, workers=config.workers, pin_memory=runtime.cuda)
    to_input = DeviceBatch(runtime.device, config.channels_last and runtime.cuda)
    outputs = []
    runner = compiled(model, runtime.device) if config.compile else model
    if times is not None:
        times.add("inference_setup", time.perf_counter() - setup_start)
    with Inference(runner, runtime.device, amp=False) as infer:  # strict float32 (tools/precision.py)
        batches = progress_bar(loader, desc="predicting", enabled=progress and runtime.is_main,
                               items_per_step=config.batch_size * 2)
        for images, _, _ in timed_iter(batches, times, "inference_data_wait", "inference_loader_start"):
            start = time.perf_counter()
            count = images.shape[0]
            if config.compile and count < config.batch_size * 2:  # one shape to compile: the last batch padded
                images = torch.cat([images, images.new_zeros((config.batch_size * 2 - count, *images.shape[1:]))])
            outputs.append(logits_of(infer(to_input(images)))[:count].float().cpu())  # rows are independent in eval mode
            if times is not None:
                times.add("inference_compute" if len(outputs) > 1 else "inference_first_batch", time.perf_counter() - start)
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
