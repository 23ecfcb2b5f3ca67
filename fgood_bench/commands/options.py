"""Argument types and option groups shared by several commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from fgood_bench import paper
from fgood_bench.errors import FgoodError


def dataset_options(args: argparse.Namespace) -> dict:
    """The dataset options given (``--partition``, ``--variant``, ``--level``), for the adapters."""
    return {name: getattr(args, name) for name in ("partition", "variant", "level") if getattr(args, name) is not None}


def named(specs: list[str] | None, option: str, what: str) -> dict[str, Path]:
    """``NAME=VALUE`` options as a dict; a NAME given twice is refused (one would silently replace the other)."""
    result = {}
    for spec in specs or []:
        name, _, value = spec.partition("=")
        if not name or not value:
            raise FgoodError(f"{option} {spec!r}: expected NAME={what}")
        if name in result:
            raise FgoodError(f"{option} {name!r}: the name is given twice (each name once)")
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

    fg, inet = paper.FINE_GRAINED, paper.INET  # every default and its source: fgood_bench/paper.py
    value, text = default(fg.arch, f"{fg.arch}; {inet.arch} for inet-*")
    if several_archs:  # build-splits: one ranking per architecture (and seed)
        group.add_argument("--arch", action="append", help=f"any torchvision classification model, or timm/NAME for a timm "
                           f"model (timm/convnext_tiny.fb_in22k) ({text}); repeatable: --seeds rankings for each")
    else:
        group.add_argument("--arch", default=value, help=f"any torchvision classification model, or timm/NAME for a timm "
                           f"model (timm/convnext_tiny.fb_in22k) ({text})")
    value, text = default(fg.weights, f"{fg.weights}; none for inet-*")
    group.add_argument("--weights", default=value,
                       help=f"torchvision weights name, a local state-dict file, or 'none' ({text}; "
                       "IMAGENET1K_V1 = the MixOE reference's pretrained=True); for timm/NAME: a .safetensors or "
                       "state-dict file, 'pretrained' (timm downloads it) or 'none'")
    epochs = {b.epochs: [n for n, o in paper.BENCHMARKS.items() if o.epochs == b.epochs] for b in paper.BENCHMARKS.values()}
    group.add_argument("--epochs", type=positive_int, help="default: " + "; ".join(f"{e} for {', '.join(names)}" for e, names in epochs.items())
                       + (f"; {inet.epochs} for inet-*; {fg.fine_tune_epochs} when fine-tuning" if recipes else ""))
    value, text = default(fg.lr, f"{fg.lr:g}; {inet.lr:g} for inet-* standard training")
    group.add_argument("--lr", type=positive_float, default=value, help=f"initial learning rate, cosine schedule ({text})")
    value, text = default(fg.batch_size, f"{fg.batch_size}, rotation {fg.rotation_batch_size}; {inet.batch_size} for inet-*")
    group.add_argument("--batch-size", type=positive_int, default=value, help=f"global batch size ({text})")
    value, text = default(fg.image_size, f"{fg.image_size}; {inet.image_size} for inet-*")
    group.add_argument("--image-size", type=positive_int, default=value,
                       help=f"crop size; images are first resized to 8/7 of it ({text})")
    value, text = default(fg.resize_mode, f"{fg.resize_mode}; {inet.resize_mode} for inet-*")
    group.add_argument("--resize-mode", choices=("square", "shorter"), default=value,
                       help=f"square: Resize((s, s)) as Appendix D.1; shorter: the shorter side to s, as H.2 ({text})")
    value, text = default(fg.weight_decay, f"{fg.weight_decay:g}, the MixOE reference's; {inet.weight_decay:g} for inet-* "
                          f"standard training, torchvision's ImageNet recipe")
    group.add_argument("--weight-decay", type=non_negative_float, default=value, help=f"SGD weight decay ({text})")
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
    """auto, cpu, cuda, cuda:N or mps: checked on the command line, before anything is read or written
    (by its spelling: importing torch to parse a command line would cost seconds)."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
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


def add_geometry_options(group) -> None:
    """How images become inputs, for commands that score a model (evaluate): None = resolved."""
    group.add_argument("--image-size", type=positive_int,
                       help="crop size (default: the checkpoint's training size and resize rule; the benchmark recipe's, "
                       "448 or 224 for inet-*, for a bare state dict); another size than the checkpoint's is used with a warning")
    group.add_argument("--resize-mode", choices=("square", "shorter"),
                       help="with --image-size: square = Resize((s, s)) as Appendix D.1, shorter = the shorter side to s as "
                       "H.2 (default: the checkpoint's, else the benchmark recipe's)")
    group.add_argument("--fast-decode", action="store_true",
                       help="decode JPEGs of at least twice the resize at reduced scale: faster, but the pixels differ from "
                       "torchvision's PIL path by several grey levels (default: exact, full-scale decoding); recorded in results")


def requested_settings(args: argparse.Namespace):
    """The settings a scoring command was asked for (None where not said), to be resolved once
    (:func:`fgood_bench.tools.settings.resolve_settings`); the Python API fills the same fields."""
    from fgood_bench.tools.settings import Requested

    def given(name):
        return getattr(args, name, None)

    return Requested(
        image_size=given("image_size"), resize_mode=given("resize_mode"),
        decode="reduced" if given("fast_decode") else None, amp=given("amp"), protocol=given("protocol"),
        base_rate=given("base_rate"), repeats=given("repeats"), metric_convention=given("metrics"),
        feature_layers=given("feature_layers"), odin_epsilon=given("odin_epsilon"), gram_orders=given("gram_orders"),
    )


def add_figure_options(parser, default_dpi: str = "each figure's own") -> None:
    """``--figure-format`` and ``--dpi`` of a command that draws (tools/figures.py saves the files)."""
    parser.add_argument("--figure-format", action="append", metavar="png|pdf|svg",
                        help="file format of the figures: png, pdf or svg; repeatable or comma-separated, e.g. "
                        "--figure-format png,pdf (default png). The files are byte-identical on every run")
    parser.add_argument("--dpi", type=positive_float,
                        help=f"resolution of the figures in dots per inch: the PNG's pixel size, and the raster images "
                        f"embedded in PDF and SVG (default {default_dpi})")


def figure_format(args: argparse.Namespace, also: tuple[str, ...] = ()):
    """The :class:`fgood_bench.tools.figures.FigureFormat` of :func:`add_figure_options`' values (and ``also``)."""
    from fgood_bench.tools.figures import FigureFormat

    given = [name for value in getattr(args, "figure_format", None) or [] for name in value.split(",") if name.strip()]
    return FigureFormat(formats=(*(given or ["png"]), *also), dpi=getattr(args, "dpi", None))
