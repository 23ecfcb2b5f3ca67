"""One forward pass per image, collecting everything the scorers read."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fgood_bench.errors import FgoodError
from fgood_bench.manifests.loading import ImageFiles
from fgood_bench.progress import progress as progress_bar
from fgood_bench.tools.images import DeviceBatch, ImageDataset, make_loader
from fgood_bench.tools.precision import Inference
from fgood_bench.tools.runtime import Runtime
from fgood_bench.tools.settings import FEATURE_LAYERS, Settings


def feature_layers(model: nn.Module, which: str = "stages") -> list[nn.Module]:
    """The modules whose outputs the feature-based scorers read: the four residual ``stages``
    (``layer1``..``layer4`` of a ResNet), every residual ``blocks`` (each BasicBlock / Bottleneck of
    those stages: 8 in a ResNet-18, 16 in a ResNet-50; Appendix D.2), or ``lee``: Lee et al.'s five
    (their ``feature_list``: the stem's ReLU output, before the max-pool, then the four stages)."""
    if which not in FEATURE_LAYERS:
        raise FgoodError(f"--feature-layers {which!r}: choose from {', '.join(FEATURE_LAYERS)}")
    if timm_feature_info(model) is not None:
        return _timm_feature_layers(model, which)
    stages = [getattr(model, f"layer{i}", None) for i in range(1, 5)]
    if not all(isinstance(stage, nn.Module) for stage in stages):
        raise FgoodError(f"feature-based scorers need a ResNet-style model with layer1..layer4 or a timm model, "
                         f"not {type(model).__name__}")
    if which == "lee":
        stem = getattr(model, "relu", None)
        if not isinstance(stem, nn.Module):
            raise FgoodError(f"--feature-layers lee needs a torchvision ResNet's stem (model.relu), not {type(model).__name__}")
        return [stem, *stages]
    return stages if which == "stages" else [block for stage in stages for block in stage.children()]


def timm_feature_info(model: nn.Module) -> list[dict] | None:
    """A timm model's ``feature_info`` (one dict per feature stage: its ``module`` name and ``reduction``), or None."""
    info = getattr(model, "feature_info", None)
    if getattr(model, "pretrained_cfg", None) is None or not isinstance(info, list) or not info:
        return None
    return info if all(isinstance(entry, dict) and "module" in entry for entry in info) else None


def model_name(model: nn.Module) -> str:
    """``timm/<name>.<tag>`` for a timm model, else the model's class name (for error messages)."""
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("architecture"):
        return "timm/" + cfg["architecture"] + (f".{cfg['tag']}" if cfg.get("tag") else "")
    return type(model).__name__


def gives_tokens(model: nn.Module) -> bool:
    """Whether the model's feature stages give tokens (B, N, C) rather than feature maps: a timm vision
    transformer (ViT, DeiT, BEiT, EVA, ... and CLIP / DINOv2 image towers: they carry ``num_prefix_tokens``)."""
    return timm_feature_info(model) is not None and getattr(model, "num_prefix_tokens", None) is not None


def _timm_feature_layers(model: nn.Module, which: str) -> list[nn.Module]:
    """A timm model's feature stages (``feature_info``: e.g. ``layer1``..``layer4`` of a ResNet, ``stages.0``..
    ``stages.3`` of a ConvNeXt, every ``blocks.i`` of a ViT), the stem's entry (stride 2) set apart: ``stages``
    those, ``blocks`` the blocks inside each stage, ``lee`` the stem then the stages (as Lee et al.'s ResNet)."""
    info = timm_feature_info(model)
    deepest = max(entry.get("reduction", 0) for entry in info)
    stem = [entry for entry in info if entry.get("reduction", 0) < min(4, deepest)]
    stages = [_submodule(model, entry["module"]) for entry in info if entry not in stem]
    if which == "lee":
        if not stem:
            raise FgoodError(f"--feature-layers lee needs the stem's feature map (a ResNet's); {model_name(model)} has "
                             "no stem stage in its feature_info: use stages or blocks")
        return [_submodule(model, stem[-1]["module"]), *stages]
    if which == "stages":
        return stages
    blocks, split = [], False
    for stage in stages:
        inner = getattr(stage, "blocks", stage)  # ConvNeXt-style stages: a downsample, then .blocks
        if isinstance(inner, (nn.Sequential, nn.ModuleList)):
            blocks += list(inner.children())
            split = True
        else:
            blocks.append(stage)
    if not split:  # RegNet, DenseNet, VGG, ...: no list of blocks to read, and "blocks" would silently mean stages
        raise FgoodError(f"--feature-layers blocks: {model_name(model)}'s stages hold no list of blocks to read "
                         "(--protocol paper reads blocks); use --feature-layers stages")
    return blocks


def _submodule(model: nn.Module, name: str) -> nn.Module:
    """The module a ``feature_info`` entry names, or a one-line refusal where timm names no module path
    (HRNet, Twins, MViTv2 list their features by other names)."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise FgoodError(f"feature-based scorers: {model_name(model)}'s feature_info names {name!r}, which is not one "
                         "of its modules; score it without mahalanobis and gram") from None


def _captured_tensor(output, model: nn.Module) -> torch.Tensor:
    """A hooked stage's output, which must be one tensor (PiT, TNT, CrossViT stages give tuples or lists)."""
    if not isinstance(output, torch.Tensor):
        raise FgoodError(f"feature-based scorers: a feature stage of {model_name(model)} gives a "
                         f"{type(output).__name__}, not one tensor; score it without mahalanobis and gram")
    return output


def _pooled(features: torch.Tensor, nhwc: bool) -> torch.Tensor:
    """(B, C) means of a feature map (B, C, H, W; B, H, W, C where ``nhwc``) or of tokens (B, N, C)."""
    if features.ndim == 3:
        return features.mean(dim=1)
    return features.mean(dim=(1, 2) if nhwc else (2, 3))


def _feature_map(features: torch.Tensor, nhwc: bool, model: nn.Module) -> torch.Tensor:
    """A feature map (B, C, H, W), or the one-line refusal of tokens."""
    if features.ndim != 4:
        raise FgoodError(f"--scorers gram needs spatial feature maps; {model_name(model)} gives tokens")
    return features.permute(0, 3, 1, 2) if nhwc else features


def gram_statistics(feature_maps: torch.Tensor, orders: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, orders, C): the row sums r of G = F^p (F^p)^T, as sign(r)|r|^(1/p) (Sastry &
    Oore's order: sum, then root), p = 1..orders. G's row sums are F^p times the column sums of
    F^p, so the C x C matrix (2048 x 2048 per image at a ResNet-50's last stage) is never formed."""
    flat = feature_maps.flatten(2).double()
    result = []
    for p in range(1, orders + 1):
        powered = flat**p
        rows = torch.bmm(powered, powered.sum(dim=1).unsqueeze(2)).squeeze(2)
        result.append(rows.sign() * rows.abs().pow(1.0 / p))
    return torch.stack(result, dim=1)


def forward_outputs(
    model: nn.Module, root: Path, paths: Sequence[str], runtime: Runtime, needs: set[str], settings: Settings, *,
    batch_size: int = 64, workers: int | None = None, odin: bool = False, progress: bool = True, desc: str = "scoring",
    transform: Callable | None = None,
) -> dict:
    """``logits`` always; ``pooled`` / ``gram`` (one array per feature layer: ``settings.feature_layers``
    is ``stages`` or ``blocks``, see :func:`feature_layers`) when ``needs`` says so; ``odin_logits`` when
    ``odin`` and ``settings.odin_epsilon`` > 0 (ODIN's input perturbation, which needs a gradient). The
    images are decoded, resized, cropped and normalised as ``settings`` says; ``transform``: a user's
    PIL image -> normalised input tensor transform instead.

    The pass is strict float32 unless ``settings.amp`` (evaluate asks it on CUDA only): then the backbone
    runs under float16 autocast, and the heads, the pooling before them and everything the scorers compute stay float32
    (:mod:`fgood_bench.tools.precision`).
    """
    layers, gram_orders = settings.feature_layers, settings.gram_orders
    odin_epsilon = settings.odin_epsilon if odin else 0.0
    amp = settings.amp
    model = model.to(runtime.device).eval()
    modules, captured, hooks = [], {}, []
    if "gram" in needs and gives_tokens(model):
        raise FgoodError(f"--scorers gram needs spatial feature maps; {model_name(model)} gives tokens")
    nhwc = getattr(model, "output_fmt", None) == "NHWC"  # timm models whose stages give (B, H, W, C) maps
    if needs & {"pooled", "gram"}:
        modules = feature_layers(model, layers)
        for i, module in enumerate(modules):
            hooks.append(module.register_forward_hook(lambda module, args, output, i=i: captured.__setitem__(i, output)))
    if transform is None:
        dataset = ImageDataset(root, paths, np.zeros(len(paths), np.int64), settings.geometry,
                               reduced_decode=settings.decode == "reduced")
        to_input = DeviceBatch(runtime.device, mean=settings.mean, std=settings.std)
    else:  # the user's transform makes the normalised input itself
        if odin_epsilon > 0:  # ODIN's step is in pixel units: it needs the normalisation's std
            raise FgoodError("ODIN's input perturbation needs fgood-bench's own transform (its step is divided by the "
                             "normalisation std); leave transform unset, or score without --odin-epsilon")
        dataset, to_input = ImageFiles(root, list(paths), [0] * len(paths), transform), lambda x: x.to(runtime.device).float()
    loader = make_loader(dataset, batch_size, workers=workers, pin_memory=runtime.cuda)
    if "rotation" in needs and not hasattr(model, "rotation_head"):
        raise FgoodError("the rotation scorer needs a model trained with --method rotation (it has no rotation head)")
    collected: dict[str, list] = {"logits": [], "odin_logits": [], "rotation": [], **{f"pooled{i}": [] for i in range(len(modules))},
                                  **{f"gram{i}": [] for i in range(len(modules))}}
    try:
        with Inference(model, runtime.device, amp) as infer:
            for images, _, _ in progress_bar(loader, desc=desc, enabled=progress, items_per_step=batch_size):
                inputs = to_input(images)
                logits = infer(inputs)
                collected["logits"].append(logits.float().cpu())
                for i in range(len(modules)):
                    if "pooled" in needs:
                        collected[f"pooled{i}"].append(_pooled(_captured_tensor(captured[i], model).float(), nhwc).cpu())
                    if "gram" in needs:
                        maps = _feature_map(_captured_tensor(captured[i], model).float(), nhwc, model)
                        collected[f"gram{i}"].append(gram_statistics(maps, gram_orders).cpu())
                if odin_epsilon > 0:
                    collected["odin_logits"].append(
                        odin_perturbed(model, inputs, odin_epsilon, settings.odin_temperature, to_input.std).cpu())
                if "rotation" in needs:
                    collected["rotation"].append(_rotation_loss(model, inputs, infer).cpu())
    finally:
        for hook in hooks:
            hook.remove()
    outputs = {"logits": torch.cat(collected["logits"]).numpy()}
    if "pooled" in needs:
        outputs["pooled"] = [torch.cat(collected[f"pooled{i}"]).numpy() for i in range(len(modules))]
    if "gram" in needs:
        outputs["gram"] = [torch.cat(collected[f"gram{i}"]).numpy() for i in range(len(modules))]
    if odin_epsilon > 0:
        outputs["odin_logits"] = torch.cat(collected["odin_logits"]).numpy()
    if "rotation" in needs:
        outputs["rotation"] = torch.cat(collected["rotation"]).numpy()
    return outputs


def _rotation_loss(model: nn.Module, inputs: torch.Tensor, infer: Inference) -> torch.Tensor:
    """Per image: the rotation head's cross-entropy, averaged over the four rotations."""
    from fgood_bench.tools.models import rotations

    rotated, labels = rotations(inputs)
    infer(rotated)
    with torch.inference_mode():
        losses = F.cross_entropy(model.rotation_head().float(), labels, reduction="none")
    return losses.view(4, len(inputs)).mean(dim=0)


def odin_perturbed(model: nn.Module, inputs: torch.Tensor, epsilon: float, temperature: float,
                   std: torch.Tensor) -> torch.Tensor:
    """Logits after ODIN's step against the gradient of the temperature-scaled loss of the predicted class.

    ``inputs`` are normalised by the per-channel ``std``; the step eps * sign(grad) is divided by
    it, so that ``epsilon`` is a step in [0, 1] pixel units, as in ODIN's code (Liang et al. 2018,
    facebookresearch/odin), OpenOOD (``odin_postprocessor.py``) and pytorch-ood (``odin_preprocessing``
    with ``norm_std``). Runs in float32.
    """
    inputs = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(inputs) / temperature
        loss = F.cross_entropy(logits, logits.argmax(dim=1))
        (gradient,) = torch.autograd.grad(loss, inputs)
    step = gradient.sign() / std.view(1, -1, *([1] * (gradient.ndim - 2)))
    with torch.inference_mode():
        return model(inputs.detach() - epsilon * step).float()


def mixed_outputs(model: nn.Module, root_a: Path, paths_a: Sequence[str], root_b: Path, paths_b: Sequence[str],
                  weight: float, runtime: Runtime, settings: Settings, batch_size: int = 64,
                  workers: int | None = None) -> np.ndarray:
    """Logits of weight * x_a + (1 - weight) * x_b, pixel-wise, for pairs of images (paper Figure 4), in
    strict float32 (TF32 off) as every scoring pass."""
    model = model.to(runtime.device).eval()
    count = min(len(paths_a), len(paths_b))
    loaders = [make_loader(ImageDataset(root, list(paths)[:count], np.zeros(count, np.int64), settings.geometry,
                                        reduced_decode=settings.decode == "reduced"),
                           batch_size, workers=workers) for root, paths in ((root_a, paths_a), (root_b, paths_b))]
    to_input = DeviceBatch(runtime.device, mean=settings.mean, std=settings.std)
    logits = []
    with Inference(model, runtime.device, amp=False) as infer:
        for (a, _, _), (b, _, _) in zip(*loaders):
            mixed = weight * a.float() + (1 - weight) * b.float()
            logits.append(infer(to_input(mixed.round().clamp(0, 255).to(torch.uint8))).float().cpu())
    return torch.cat(logits).numpy()
