"""Progress of long loops: a tqdm bar on a terminal, a line at a bounded rate anywhere else.

Under ``nohup``, SLURM or a CI runner stderr is a file, where a bar's carriage returns make no
readable log; there a line such as ``epoch 3/30: 120/375 (32%), loss 1.234, 57.1 img/s, 0:02:05
elapsed, 0:04:26 left`` is written at most once every ``FGOOD_BENCH_PROGRESS_SECONDS`` seconds
(default 30) over all loops of the process (short loops add no line of their own). Long commands
made of stages (a study's splits, a sweep's grid points, a release's stages) name the stage each
line belongs to (:class:`Stages`), and say when a stage starts, with the time left estimated from
the stages done. The same module warns once when a run on the CPU would take hours (the paper's
recipe is meant for a GPU).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterable, Iterator

from tqdm.auto import tqdm

INTERVAL_VARIABLE = "FGOOD_BENCH_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0
SLOW_RUN_SECONDS = 3600.0  # a CPU run estimated longer than this gets a notice
STEPS_BEFORE_ESTIMATE = 3  # the first steps include the loader's start: estimate after a few


_last_line = [time.monotonic()]  # when any loop of this process last wrote a line
_stages: list[str] = []  # the stages the running loops belong to, outermost first (Stages.stage)
MIN_TIMED_STAGE = 1.0  # seconds: stages done earlier (read back, not run) do not count in the estimate


def stage_prefix() -> str:
    """``[split 3 of 20 · grid point 2 of 9] `` for the lines of loops inside those stages."""
    return f"[{' · '.join(_stages)}] " if _stages else ""


class Stages:
    """A command's position in a sequence of long stages, for people reading its log.

    ``with stages.stage(i, label):`` around stage ``i`` (0-based) names it in every progress line
    written inside, and writes one line when it starts: which stage of how many, and the time left
    estimated from the stages that ran so far (stages that were already done and only read back,
    under :data:`MIN_TIMED_STAGE`, do not count). Lines go to stderr whether or not it is a terminal.
    """

    def __init__(self, what: str, total: int, enabled: bool = True, stream=None):
        self.what, self.total, self.enabled = what, total, enabled
        self.stream = stream or sys.stderr
        self.durations: list[float] = []

    def estimate(self, remaining: int) -> str:
        if not self.durations:
            return ""
        return f", about {duration(sum(self.durations) / len(self.durations) * remaining)} left"

    @contextlib.contextmanager
    def stage(self, index: int, label: str = ""):
        name = f"{self.what} {index + 1} of {self.total}"
        if self.enabled:
            print(f"fgood-bench: {name}{f' ({label})' if label else ''}: started{self.estimate(self.total - index)}",
                  file=self.stream, flush=True)
        _stages.append(name)
        started = time.monotonic()
        try:
            yield
        finally:
            _stages.pop()
            elapsed = time.monotonic() - started
            if elapsed >= MIN_TIMED_STAGE:
                self.durations.append(elapsed)


def line_interval() -> float:
    """Seconds between two progress lines (``FGOOD_BENCH_PROGRESS_SECONDS``, default 30)."""
    text = os.environ.get(INTERVAL_VARIABLE, "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL


def on_terminal(stream=None) -> bool:
    """Whether progress goes to a person watching (a terminal or a notebook) rather than a log."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules


def duration(seconds: float) -> str:
    """``H:MM:SS`` (with days when needed)."""
    seconds = int(round(max(0.0, seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


class LineProgress:
    """Iterates like tqdm (``set_postfix``, ``close``); after a step, or at its end, writes a line
    when ``interval`` seconds have passed since the process's last progress line.

    ``items_per_step`` turns the step rate into images per second; ``overall`` = (steps done
    before this loop, steps of the whole run) adds the run's step count and time left.
    """

    def __init__(self, iterable: Iterable, *, desc: str, total: int | None = None, unit: str = "batch",
                 items_per_step: int | None = None, overall: tuple[int, int] | None = None,
                 stream=None, interval: float | None = None):
        self.iterable = iterable
        self.desc = desc
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.unit = unit
        self.items_per_step = items_per_step
        self.overall = overall
        self.stream = stream or sys.stderr
        self.interval = line_interval() if interval is None else interval
        self.postfix: dict[str, object] = {}
        self.n = 0
        self.started = time.monotonic()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator:
        self.started = time.monotonic()
        for item in self.iterable:
            yield item
            self.n += 1
            if self.n != self.total:  # the last step's line waits for the loop's end
                self._maybe_write()
        self._maybe_write()

    def _maybe_write(self) -> None:
        now = time.monotonic()
        if now - _last_line[0] >= self.interval:
            self.write(now)

    def write(self, now: float) -> None:
        _last_line[0] = now
        elapsed = now - self.started
        rate = self.n / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.desc}: {self.n}/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total
                 else f"{self.desc}: {self.n} {self.unit}"]
        parts += [f"{key} {value}" for key, value in self.postfix.items()]
        if self.overall is not None:
            parts.append(f"step {self.overall[0] + self.n}/{self.overall[1]}")
        if rate:
            parts.append(f"{rate * self.items_per_step:.1f} img/s" if self.items_per_step else f"{rate:.2f} {self.unit}/s")
        timing = f"{duration(elapsed)} elapsed"
        if rate and self.total:
            timing += f", {duration((self.total - self.n) / rate)} left"
            if self.overall is not None:
                timing += f" (run: {duration((self.overall[1] - self.overall[0] - self.n) / rate)} left)"
        parts.append(timing)
        print(stage_prefix() + ", ".join(parts), file=self.stream, flush=True)


def progress(iterable: Iterable, *, desc: str, enabled: bool = True, total: int | None = None, unit: str = "batch",
             items_per_step: int | None = None, overall: tuple[int, int] | None = None):
    """A tqdm bar when stderr is a terminal, :class:`LineProgress` lines when it is a file or pipe,
    nothing when ``enabled`` is false. Use like tqdm: iterate it, ``set_postfix(loss=...)``."""
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if on_terminal():
        return tqdm(iterable, desc=stage_prefix() + desc, total=total, unit=unit)
    return LineProgress(iterable, desc=desc, total=total, unit=unit, items_per_step=items_per_step, overall=overall)


class SlowRunNotice:
    """Says once, after the first steps, that a run on the CPU will take hours, and how long."""

    def __init__(self, device_type: str, steps_left: int, what: str = "training"):
        self.active = device_type == "cpu" and steps_left > STEPS_BEFORE_ESTIMATE
        self.steps_left = steps_left
        self.what = what
        self.steps = 0
        self.started = time.monotonic()

    def step(self) -> None:
        if not self.active:
            return
        self.steps += 1
        if self.steps < STEPS_BEFORE_ESTIMATE:
            return
        self.active = False  # once
        per_step = (time.monotonic() - self.started) / self.steps
        estimate = per_step * self.steps_left
        if estimate >= SLOW_RUN_SECONDS:
            print(f"fgood-bench: note: {self.what} runs on the CPU at {per_step:.1f} s a step: about "
                  f"{duration(estimate)} for its {self.steps_left:,} steps. The paper's recipe (ResNet-50 at 448 px) "
                  "is meant for a GPU (--device cuda); for a trial run on the CPU use a smaller --image-size or --arch.",
                  file=sys.stderr, flush=True)
