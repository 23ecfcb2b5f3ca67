"""Ctrl-C that answers within a moment, even in the middle of a long CPU step.

Python runs a signal handler only between bytecodes of the main thread, and ``loss.backward()``
is one call into C++ that can last many seconds on a CPU: a plain ``KeyboardInterrupt`` waits
for the step to end. During training the first Ctrl-C therefore only sets a flag, and hooks that
run all along the forward and the backward pass (a forward pre-hook on every module, a hook on
every parameter's gradient) raise ``KeyboardInterrupt`` as soon as they see it; a second Ctrl-C
raises at once. The hooks are set on the CPU only: a CUDA step ends within moments, and they would
cost a Python call per layer on every step of its hot path. Loader workers ignore SIGINT (:func:`ignore_sigint`): the main process shuts
them down, rather than finding them dead and reporting a crash.

Commands record what survives an interruption as they go (:func:`keep`: a checkpoint, finished
stages); the CLI's Ctrl-C line says it and how to continue (:func:`interrupted_message`; the rule is
in docs/outputs.md, "Interrupting and resuming").
"""

from __future__ import annotations

import functools
import inspect
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch stays unimported for the commands that do not need it
    from torch import nn

RESUME_HINT = "run the same command with --resume to continue"
RERUN_HINT = "run the same command again to continue"  # audit-leakage: a rerun reuses its --hash-cache
RERUN_OR_RESUME_HINT = "run the same command again (--resume optional) to continue"  # study, sweep: a rerun resumes
NOTHING_KEPT = "nothing was kept yet: run the same command again to start over"

# What the running command has kept so far, so that Ctrl-C can say it (docs/outputs.md, "Interrupting
# and resuming"): a place (a path) -> one clause, "epoch 3 of 30 is kept in WORK/checkpoint.pt".
_KEPT: dict[str, str] = {}


def keep(place: str | object, what: str) -> None:
    """Record that ``what`` (a clause naming where it is) survives an interruption from now on."""
    _KEPT.pop(str(place), None)
    _KEPT[str(place)] = what


def forget() -> None:
    """Drop every record (a new command starts; a finished stage's record replaces its parts')."""
    _KEPT.clear()


def interrupted_message(how_to_continue: str = RESUME_HINT) -> str:
    """The line Ctrl-C prints: what was kept and how to continue from it, or that nothing was kept."""
    if not _KEPT:
        return f"interrupted; {NOTHING_KEPT}"
    return f"interrupted; {'; '.join(_KEPT.values())}: {how_to_continue}"


def ignore_sigint(*_) -> None:
    """Worker initialiser (DataLoader ``worker_init_fn``, process pools): leave Ctrl-C to the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StopOnInterrupt:
    """While active, Ctrl-C stops ``model``'s forward or backward pass at its next layer."""

    def __init__(self, model: nn.Module, layer_hooks: bool = True):
        self.model = model
        self.layer_hooks = layer_hooks  # False: Ctrl-C stops at the end of the current step
        self.requested = False
        self.handles: list = []
        self.previous = None

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C: now
            raise KeyboardInterrupt
        self.requested = True

    def check(self, *_) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __enter__(self) -> "StopOnInterrupt":
        in_charge = threading.current_thread() is threading.main_thread()
        if in_charge and signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not under another handler
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        if not self.layer_hooks:
            return self
        for module in self.model.modules():
            self.handles.append(module.register_forward_pre_hook(self.check))
        for parameter in self.model.parameters():
            if parameter.requires_grad:
                self.handles.append(parameter.register_hook(self.check))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def interruptible(train):
    """Decorates a training function with arguments ``model`` and ``runtime`` (see the module's doc)."""
    signature = inspect.signature(train)

    @functools.wraps(train)
    def wrapper(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs).arguments
        runtime = arguments.get("runtime")
        with StopOnInterrupt(arguments["model"], layer_hooks=runtime is None or not runtime.cuda):
            return train(*args, **kwargs)

    return wrapper
