"""Where a process runs: its device, its rank under ``torchrun``, and its seeds."""

from __future__ import annotations

import os
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from fgood_bench.errors import FgoodError, first_line


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


class PhaseTimes:
    """Wall-clock seconds per named phase of a run (``with times.phase("training_compute"): ...``),
    summed over repeats; ``add`` records a duration measured elsewhere. On CUDA a phase that ends with
    work still queued on the GPU is charged to the next one that waits for it (a step's ``loss.item()``
    synchronises, so each training step lands in its own phase)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, seconds: float, count: int = 1) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + max(0.0, seconds)
        self.counts[name] = self.counts.get(name, 0) + count

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def record(self) -> dict:
        """The phases in the order they first ran, with their totals."""
        return {"phases": {k: round(v, 6) for k, v in self.seconds.items()}, "counts": dict(self.counts),
                "total_seconds": round(sum(self.seconds.values()), 6)}


def timed_iter(iterable, times: PhaseTimes | None, name: str, first_name: str):
    """``iterable``'s items, the time spent waiting for each (the loader's decoding not hidden behind the
    model's work) added to ``times[name]``; the first item's wait (workers starting) to ``times[first_name]``."""
    iterator = iter(iterable)
    first = True
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        if times is not None:
            times.add(first_name if first else name, time.perf_counter() - start)
        first = False
        yield item


_COMPILE_STATE: dict[str, str | None] = {}  # device type -> None (compile works) or why it does not
_WARNED: set[str] = set()  # device types whose fallback to eager was reported


def compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here (no C++ compiler, an unsupported platform or
    Python), or None: a tiny function is compiled and run forward and backward once per process."""
    if device.type in _COMPILE_STATE:
        return _COMPILE_STATE[device.type]
    why = None
    try:
        probe = torch.compile(lambda x: (x * 2 + 1).relu().sum())
        x = torch.ones(8, device=device, requires_grad=True)
        probe(x).backward()
    except Exception as err:  # torch raises many kinds here (BackendCompilerFailed, RuntimeError, ...)
        why = f"{type(err).__name__}: {first_line(err)}"[:200]
    _COMPILE_STATE[device.type] = why
    return why


def compiled(module: torch.nn.Module, device: torch.device, what: str = "--compile"):
    """``torch.compile(module)``, or ``module`` itself with one warning line where compiling is not
    available here (:func:`compile_unavailable`) or fails at the first call."""
    why = compile_unavailable(device)
    if why is not None:
        if device.type not in _WARNED:  # one line per process, not one per model compiled
            _WARNED.add(device.type)
            print(f"warning: {what}: torch.compile is not available here ({why}); running eagerly", file=sys.stderr)
        return module
    # inductor's default mode (kernel fusion), not reduce-overhead (CUDA graphs): MixupOE makes two forward
    # passes per backward, whose outputs a replayed graph may overwrite
    return _EagerOnFailure(torch.compile(module), module, what)


class _EagerOnFailure:
    """A compiled module that runs the eager one from its first failing call on (one warning line): a
    failure may come at the first call or at a later recompile (a new batch shape: the last, shorter
    batch; MixupOE's mixed batch)."""

    def __init__(self, compiled_module, eager, what: str):
        self.compiled_module, self.eager, self.what = compiled_module, eager, what

    def __getattr__(self, name):  # train(), eval(), parameters(), ... of the module
        return getattr(self.eager, name)

    def __call__(self, *args, **kwargs):
        if self.compiled_module is None:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled_module(*args, **kwargs)
        except Exception as err:  # Ctrl-C is no Exception: it passes
            if isinstance(err, MemoryError):  # not the compiler's failure
                raise
            print(f"warning: {self.what}: torch.compile failed ({type(err).__name__}: {first_line(err)}"[:300]
                  + "); running eagerly", file=sys.stderr)
            self.compiled_module = None
            return self.eager(*args, **kwargs)
