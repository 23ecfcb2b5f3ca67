"""Image pipeline for training and inference: JPEG on disk -> uint8 tensor -> normalised on the device.

The paper's preprocessing (Appendix D.1, as the MixOE code does it) is ``Resize((512, 512))``
then ``CenterCrop(448)`` (test) or ``RandomCrop(448)`` + horizontal flip + ``ColorJitter(
brightness=32/255, saturation=0.5)`` (train), then ``ToTensor`` + ``Normalize``. Here:

* decoding is libjpeg-turbo through ``torchvision.io`` and the resize torchvision's uint8
  antialiased bilinear kernel, which matches PIL's to a fraction of a level, at several times
  the speed of the PIL + float reference (``scripts/bench_pipeline.py``);
* every image is decoded at full scale by default, so that the input equals torchvision's PIL
  path within rounding; ``reduced_decode`` (an explicit fast option where exact pixels do not
  matter, e.g. a ranking) decodes JPEGs at least twice the resize at 1/2, 1/4 or 1/8 scale
  (PIL ``Image.draft``), which moves large images' pixels by several grey levels;
* tensors stay uint8 until they reach the device, where conversion, colour jitter and
  normalisation run batched (``DeviceBatch``).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image

try:  # deprecated in torchvision 0.29 in favour of TorchCodec, still the fastest decoder at hand
    from torchvision.io import ImageReadMode, decode_image
except ImportError:  # a future torchvision without it: PIL decodes everything
    decode_image = None

warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning)

from fgood_bench import paper
from fgood_bench.errors import FgoodError
from fgood_bench.inputs import read_regular
from fgood_bench.interrupt import ignore_sigint
from fgood_bench.tools.geometry import Geometry

IMAGENET_MEAN, IMAGENET_STD = paper.IMAGENET_MEAN, paper.IMAGENET_STD
BRIGHTNESS, SATURATION = paper.JITTER_BRIGHTNESS, paper.JITTER_SATURATION  # the reference's ColorJitter


class UnreadableImage(FgoodError):
    """An image file that cannot be decoded (the message names it)."""


def load_image(path: str | Path, geometry: Geometry, offset: tuple[int, int] | None = None, flip: bool = False,
               position: tuple[float, float] | None = None, reduced_decode: bool = False) -> torch.Tensor:
    """Decode ``path`` into the ``crop x crop`` RGB uint8 tensor (3, H, W) of the paper's transform.

    ``offset`` is the crop's (left, top) corner in the resized frame; ``position`` gives it instead
    as fractions in [0, 1) of the free span (a random crop whose frame depends on the image, as
    with ``mode='shorter'``); the centre when both are None, as ``RandomCrop`` / ``CenterCrop``
    pick it. libjpeg-turbo decoding and the uint8 antialiased resize of torchvision do the work;
    with ``reduced_decode`` JPEGs at least twice the resize in both sides are decoded at reduced
    scale by PIL instead (faster, inexact); PIL also reads what torchvision cannot.
    """
    resize, crop = geometry.resize, geometry.crop
    try:
        data = _read(path)
        big_jpeg = False
        if reduced_decode:
            with Image.open(io.BytesIO(data)) as header:
                big_jpeg = header.format == "JPEG" and min(header.size) >= 2 * resize
        image = None if big_jpeg else _decode_torchvision(data)
        if image is None:
            image = _decode_pil(data, resize if big_jpeg else None)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImage(f"{path}: unreadable image ({type(err).__name__}: {err})") from None
    height, width = geometry.resized_size(*image.shape[-2:])
    image = F.resize(image, [height, width], antialias=True)
    if offset is None and position is not None:  # RandomCrop: uniform over the free span
        offset = (int(position[0] * (width - crop + 1)), int(position[1] * (height - crop + 1)))
    if offset is None:  # CenterCrop's rounding
        offset = (int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0)))
    left, top = offset
    image = image[:, top:top + crop, left:left + crop]
    return image.flip(-1) if flip else image


def _read(path: str | Path) -> bytes:
    """The file's bytes; a missing file, a folder or a FIFO is an unreadable image (never waited on)."""
    try:
        return read_regular(path, "image")
    except FgoodError as err:
        raise UnreadableImage(f"{path}: unreadable image ({str(err).removeprefix(f'{path}: ')})") from None


def _decode_torchvision(data: bytes) -> torch.Tensor | None:
    if decode_image is None:
        return None
    try:
        return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError:  # a format or variant torchvision does not decode: let PIL try
        return None


def _decode_pil(data: bytes, draft: int | None) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as image:
        if draft is not None:
            image.draft("RGB", (draft, draft))  # big JPEGs: decode at 1/2, 1/4 or 1/8 scale
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


class ImageDataset(torch.utils.data.Dataset):
    """Images of a sample table as ``(uint8 CHW tensor, label, row index)``.

    ``train=True`` draws a random crop and flip per item, from the item's own seed when the
    sampler gives one (reproducible whatever the number of workers), else from torch's RNG.
    """

    def __init__(self, root: str | Path, paths: Sequence[str], labels: Sequence[int], geometry: Geometry, train: bool = False,
                 reduced_decode: bool = False):
        self.root = Path(root)
        self.reduced_decode = reduced_decode
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.geometry = geometry
        self.train = train

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        """``key`` is a row index, or ``(row index, seed)`` from ``EpochSampler`` for a seeded crop."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        offset, position, flip = None, None, False
        if self.train:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            if self.geometry.mode == "square":
                span = self.geometry.resize - self.geometry.crop + 1
                offset = tuple(torch.randint(0, span, (2,), generator=generator).tolist())
            else:  # the frame's size depends on the image's aspect ratio
                position = tuple(torch.rand(2, generator=generator).tolist())
            flip = bool(torch.rand((), generator=generator) < 0.5)
        image = load_image(self.root / self.paths[index], self.geometry, offset, flip, position, self.reduced_decode)
        return image, int(self.labels[index]), index


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers() -> int:
    """Loader processes per training process: the CPUs shared among the ``torchrun`` ranks, at most 16."""
    return max(1, min(16, available_cpus() // int(os.environ.get("WORLD_SIZE", "1"))))


def make_loader(
    dataset: torch.utils.data.Dataset, batch_size: int, *, sampler=None, shuffle: bool = False,
    drop_last: bool = False, workers: int | None = None, seed: int = 0, pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    workers = default_workers() if workers is None else workers
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else False, sampler=sampler,
        drop_last=drop_last, num_workers=workers, pin_memory=pin_memory, generator=generator,
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=ignore_sigint,  # Ctrl-C is the main process's to handle (fgood_bench.interrupt)
    )


class DeviceBatch:
    """Moves uint8 batches to the device and turns them into normalised float inputs there."""

    def __init__(self, device: torch.device, channels_last: bool = False,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.device = device
        self.channels_last = channels_last
        self.mean = torch.tensor(tuple(mean), device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(tuple(std), device=device).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor, jitter: torch.Tensor | None = None) -> torch.Tensor:
        """``jitter``: per-image (brightness, saturation) factors from :func:`jitter_factors`, or None."""
        x = images.to(self.device, non_blocking=True).float().div_(255)
        if jitter is not None:
            x = color_jitter(x, jitter.to(self.device))
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def jitter_factors(seed: int, epoch: int, indices, stream: int = 0) -> torch.Tensor:
    """Per-image ``ColorJitter(brightness=32/255, saturation=0.5)`` factors, (B, 2), drawn from
    (seed, epoch, stream, image index) alone: the same whatever the rank, worker or resume."""
    u = np.array([np.random.default_rng([seed, epoch, stream, int(i)]).random(2) for i in indices], np.float32).reshape(-1, 2)
    spans = np.array([BRIGHTNESS, SATURATION], np.float32)
    return torch.from_numpy(1 - spans + 2 * spans * u)


def color_jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness then saturation jitter of a float batch in [0, 1] with per-image ``factors``
    (torchvision's ColorJitter draws the order at random; the factors' ranges are the same)."""
    brightness = factors[:, 0].view(-1, 1, 1, 1)
    saturation = factors[:, 1].view(-1, 1, 1, 1)
    x = (x * brightness).clamp_(0, 1)
    gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return (gray + saturation * (x - gray)).clamp_(0, 1)
