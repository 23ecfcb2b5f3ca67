"""Argument types and option groups shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from fgood_bench.errors import FgoodError


def dataset_options(args: argparse.Namespace) -> dict:
    """The dataset options given (``--partition``, ``--variant``, ``--level``), for the adapters."""
    return {name: getattr(args, name) for name in ("partition", "variant", "level") if getattr(args, name) is not None}


def named(specs: list[str] | None, option: str, what: str) -> dict[str, Path]:
    """``NAME=VALUE`` options as a dict."""
    result = {}
    for spec in specs or []:
        name, _, value = spec.partition("=")
        if not name or not value:
            raise FgoodError(f"{option} {spec!r}: expected NAME={what}")
        result[name] = Path(value)
    return result


def add_exclusion_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", help="bird, dog, flower, car, aircraft, or none")
    parser.add_argument("--exclude-root", action="append", metavar="SYNSET",
                        help="also exclude the ImageNet-1k hyponyms of this WordNet synset (dog.n.01 or n02084071); repeatable")
    parser.add_argument("--exclude-wnid", action="append", metavar="WNID", help="also exclude this ImageNet-1k concept; repeatable")
    parser.add_argument("--exclude-all-benchmarks", action="store_true", help="exclude the union of the five benchmarks' sets")


def add_overwrite(parser: argparse.ArgumentParser, what: str, restart: bool = False) -> None:
    names = ("--overwrite", "--restart") if restart else ("--overwrite",)
    parser.add_argument(*names, dest="overwrite", action="store_true",
                        help=f"{what}; without it an existing output is never replaced (docs/outputs.md)")


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset options")
    group.add_argument("--partition", type=positive_int, help="minc2500: 1..5, dtd: 1..10 (default 1)")
    group.add_argument("--variant", help="thudogs: low|high (default: high if present); places365: 256|large (default 256)")
    group.add_argument("--level", help="fgvc_aircraft: variant|family|manufacturer (default variant)")


def add_model_options(parser: argparse.ArgumentParser, recipes: bool = False, several_archs: bool = False) -> None:
    """Model and training options; with ``recipes`` their defaults are the benchmark's recipe (train)."""
    title = ("model and training (defaults: the benchmark's recipe, Appendix D.1 or H.2 for inet-*)" if recipes
             else "model and training (defaults: the paper's recipe, Appendix D.1)")
    group = parser.add_argument_group(title)

    def default(value, text: str):
        return (None, "recipe: " + text) if recipes else (value, f"default {value}")

    value, text = default("resnet50", "resnet50; resnet18 for inet-*")
    if several_archs:  # build-splits: one ranking per architecture (and seed)
        group.add_argument("--arch", action="append", help=f"any torchvision classification model ({text}); "
                           "repeatable: --seeds rankings for each")
    else:
        group.add_argument("--arch", default=value, help=f"any torchvision classification model ({text})")
    value, text = default("IMAGENET1K_V1", "IMAGENET1K_V1; none for inet-*")
    group.add_argument("--weights", default=value,
                       help=f"torchvision weights name, a local state-dict file, or 'none' ({text}; "
                       "IMAGENET1K_V1 = the MixOE reference's pretrained=True)")
    group.add_argument("--epochs", type=positive_int, help="default: 60 for bird, car, aircraft; 30 for dog, flower"
                       + ("; 90 for inet-*; 10 when fine-tuning" if recipes else ""))
    value, text = default(1e-3, "1e-3; 0.1 for inet-* standard training")
    group.add_argument("--lr", type=positive_float, default=value, help=f"initial learning rate, cosine schedule ({text})")
    value, text = default(32, "32, rotation 16; 256 for inet-*")
    group.add_argument("--batch-size", type=positive_int, default=value, help=f"global batch size ({text})")
    value, text = default(448, "448; 224 for inet-*")
    group.add_argument("--image-size", type=positive_int, default=value,
                       help=f"crop size; images are first resized to 8/7 of it ({text})")
    value, text = default("square", "square; shorter for inet-*")
    group.add_argument("--resize-mode", choices=("square", "shorter"), default=value,
                       help=f"square: Resize((s, s)) as Appendix D.1; shorter: the shorter side to s, as H.2 ({text})")
    value, text = default(1e-5, "1e-5")
    group.add_argument("--weight-decay", type=non_negative_float, default=value,
                       help=f"SGD weight decay ({text}, the MixOE reference's)")
    group.add_argument("--device", type=device_name, default="auto", help="auto (default: CUDA when present), cuda, cuda:N or cpu")
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    group.add_argument("--workers", type=non_negative_int, help="data-loader processes per GPU (default: CPUs, at most 16)")
    group.add_argument("--no-amp", action="store_true", help="fp32 training on CUDA (default: bf16 autocast); "
                       "predictions are strict fp32 either way")


def model_settings(args: argparse.Namespace) -> dict:
    """The values of :func:`add_model_options` (None where the recipe decides), as ``train`` takes them."""
    return {"arch": args.arch, "weights": args.weights, "lr": args.lr, "batch_size": args.batch_size,
            "image_size": args.image_size, "resize_mode": args.resize_mode, "weight_decay": args.weight_decay,
            "seed": args.seed, "device": args.device, "workers": args.workers, "amp": not args.no_amp}


def _number(text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N: checked on the command line, before anything is read or written."""
    import torch

    if text != "auto":
        try:
            torch.device(text)
        except (RuntimeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}") from None
    return text


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value < float("inf"):  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
