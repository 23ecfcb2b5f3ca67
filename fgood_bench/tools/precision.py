"""The numeric precision of inference (ranking predictions and evaluation scores).

**Scores are strict float32 by default**, on the CPU and on CUDA. OOD metrics are rank statistics,
and reduced precision reorders nearby scores: against strict float32, a float16 backbone with a
float32 head moved AUROC by up to 4.3e-4 and MSP's Spearman to 0.998 on a briefly trained
ResNet-18, bf16 by up to 2e-3 (``scripts/precision_check.py``, docs/evaluation.md). Scoring is a
small part of a run's compute (one pass over the test sets, against tens of training epochs), and
at 448 px it is bound by JPEG decoding on the CPU more than by the GPU, so exact scores cost little.
PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa) by default on Ampere and later GPUs;
:func:`strict_float32` turns it off while scoring.

``amp=True`` (``evaluate --amp``) is the fast path: the backbone under **float16** autocast, which
keeps 11 significant bits to bf16's 8 at the same tensor-core rate (NVIDIA A100 and H100 data
sheets), and the global average pooling and linear heads recomputed in float32 from the
backbone's output (:func:`float32_head`). A batch whose float16 outputs are not finite is
recomputed in float32 and counted. Training runs under bf16 autocast (engine.py), whose range
needs no loss scaling.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F
from torch import nn

INFERENCE_DTYPE = torch.float16


def classification_heads(model: nn.Module) -> list[nn.Linear]:
    """The class head (the last ``nn.Linear`` outside the rotation head) and the rotation head's linear layer."""
    linear = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    heads = [m for name, m in linear if not name.startswith("rotation_head.")][-1:]
    return heads + [m for name, m in linear if name.startswith("rotation_head.")]


@contextmanager
def float32_head(model: nn.Module):
    """Under autocast, recompute the classification heads and the global average pooling that
    feeds them (``avgpool`` of torchvision ResNets and most CNNs) in float32 from the backbone's
    reduced-precision output: the backbone keeps the speed, the logits lose a rounding step."""

    def exact(function):
        def hook(module, args, output):
            with torch.autocast(args[0].device.type, enabled=False):
                return function(module, args[0].float())
        return hook

    def linear(module, x):
        return F.linear(x, module.weight.float(), None if module.bias is None else module.bias.float())

    hooks = [head.register_forward_hook(exact(linear)) for head in classification_heads(model)]
    pool = getattr(model, "avgpool", None)
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        hooks.append(pool.register_forward_hook(exact(lambda m, x: F.adaptive_avg_pool2d(x, m.output_size))))
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()


@contextmanager
def strict_float32():
    """float32 convolutions and matrix products on CUDA: no TF32 while inside."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def describe(amp: bool, cuda: bool) -> str:
    """The precision of :class:`Inference` (``amp`` on CUDA only), as results.json records it."""
    if amp:
        return "float16 autocast backbone; float32 pooling, classification head, features and scorers"
    return "float32 (TF32 off)" if cuda else "float32"


class Inference:
    """``with Inference(model, device, amp) as infer: logits = infer(inputs)``.

    Strict float32 unless ``amp``: the backbone under float16 autocast, the heads in float32
    (module docstring). ``fallbacks`` counts the batches recomputed in float32 because
    their float16 outputs were not finite.
    """

    def __init__(self, model: nn.Module, device: torch.device, amp: bool):
        self.model, self.device, self.amp, self.fallbacks = model, torch.device(device), amp, 0
        self._stack = ExitStack()

    def __enter__(self) -> "Inference":
        self._stack.enter_context(float32_head(self.model) if self.amp else strict_float32())
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
        if self.fallbacks:
            print(f"warning: {self.fallbacks} batch(es) overflowed float16 and were scored in float32", file=sys.stderr)

    def __call__(self, inputs: torch.Tensor):
        """The model's output for ``inputs`` (no gradient)."""
        with torch.inference_mode():
            if not self.amp:
                return self.model(inputs)
            with torch.autocast(self.device.type, dtype=INFERENCE_DTYPE):
                output = self.model(inputs)
            logits = output.logits if hasattr(output, "logits") else output
            if bool(torch.isfinite(logits).all()):
                return output
            self.fallbacks += 1
            with strict_float32():
                return self.model(inputs)
