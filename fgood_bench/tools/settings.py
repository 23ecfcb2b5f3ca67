"""One resolution of every setting a number depends on, as timm's ``resolve_data_config`` does.

Each setting is taken, in this order, from
1. the arguments the user gave (the command line or the Python API: the same names),
2. what the checkpoint recorded when it was trained (its geometry),
3. the model's own pretrained configuration (timm's ``pretrained_cfg``: input size, crop
   fraction, mean and std), for a model handed over in memory,
4. the benchmark's recipe (:mod:`fgood_bench.paper`: Appendix D.1, or H.2 for INet-A/B), and
   the paper's protocol and scorer defaults.

The result is one frozen :class:`Settings` that every path takes (``evaluate`` from the command
line and from Python, ``study``, ``sweep``, ``cam``, ``publish`` and both exports), and records:
``Settings.record()`` names the source of every value, so a results file says where each came
from. This module imports no torch.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from fgood_bench import paper
from fgood_bench.errors import FgoodError
from fgood_bench.metrics import check_convention
from fgood_bench.tools.geometry import Geometry

# What Mahalanobis and Gram read: the four residual stages' outputs (the default, cheapest), every
# residual block's output (Appendix D.2: "the feature maps of each residual block"; --protocol paper),
# or Lee et al.'s five (their ResNet ``feature_list``: the stem and the four stages)
FEATURE_LAYERS = ("stages", "blocks", "lee")
PAPER_FEATURE_LAYERS = "blocks"  # Appendix D.2
DECODES = ("full", "reduced")
PROTOCOLS = ("paper",)

ARGUMENT = "argument"
CHECKPOINT = "checkpoint"
MODEL_CONFIG = "the model's pretrained config (timm)"
DEFAULT = "default"


@dataclass(frozen=True)
class Settings:
    """Every setting an evaluation's numbers depend on, and where each value came from (``sources``)."""

    geometry: Geometry
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    decode: str  # 'full': exact pixels; 'reduced': big JPEGs decoded at 1/2..1/8 scale (fast, inexact)
    amp: bool  # a float16 backbone on CUDA (evaluate --amp); default strict float32
    base_rate: float | None  # ID:OOD by seeded subsampling; None: every image of each set
    repeats: int
    metric_convention: str
    feature_layers: str
    odin_temperature: float
    odin_epsilon: float
    energy_temperature: float
    gram_orders: int
    sources: tuple[tuple[str, str], ...] = ()

    def source(self, name: str) -> str:
        return dict(self.sources).get(name, DEFAULT)

    @property
    def protocol(self) -> str:
        paper_protocol = self.base_rate == paper.PAPER_BASE_RATE and self.metric_convention == paper.PAPER_CONVENTION
        return "paper" if paper_protocol else "custom"

    def record(self) -> dict:
        """Every value with its source, for results.json."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
        values["geometry"] = asdict(self.geometry)
        values["mean"], values["std"] = list(self.mean), list(self.std)
        return {name: {"value": value, "source": self.source(name)} for name, value in values.items()}


def recipe_geometry(recipe: paper.Recipe) -> Geometry:
    return Geometry(crop=recipe.image_size, resize=recipe.resize, mode=recipe.resize_mode)


def benchmark_recipe(benchmark: tuple[str, str] | None) -> tuple[paper.Recipe, str]:
    """The recipe of a benchmark given as (name, dataset id), and the words that say so."""
    recipe = paper.recipe_of_manifest(*benchmark) if benchmark else paper.FINE_GRAINED
    section = "Appendix H.2" if recipe is paper.INET else "Appendix D.1"
    return recipe, f"the benchmark's recipe ({recipe.name}, {section})"


def checkpoint_geometry(payload: Mapping[str, Any], where: str) -> Geometry | None:
    """The resize and crop a fgood-bench checkpoint recorded, or None (a bare state dict)."""
    if isinstance(payload.get("geometry"), dict):
        try:
            return Geometry(**payload["geometry"])
        except TypeError:
            expected = ", ".join(f.name for f in fields(Geometry))
            raise FgoodError(f"{where}: unknown resize rule {payload['geometry']} (expected the fields {expected})") from None
    if payload.get("image_size"):
        return Geometry.for_crop(int(payload["image_size"]), payload.get("resize_mode", "square"))
    return None


def model_config(model: Any) -> dict | None:
    """A timm model's pretrained configuration as geometry and normalisation, or None.

    timm's data config: ``input_size`` (C, H, W), ``crop_pct`` (the crop is that fraction of the
    resize, the shorter side, as ``timm.data.resolve_data_config`` / ``create_transform`` do),
    ``mean``, ``std``."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, Mapping) or "input_size" not in cfg:
        return None
    crop = int(cfg["input_size"][-1])
    crop_pct = float(cfg.get("crop_pct") or 0.875)
    mode = "square" if cfg.get("crop_mode") == "squash" else "shorter"  # timm's 'squash': both sides to the size
    geometry = Geometry(crop=crop, resize=int(crop / crop_pct), mode=mode)  # timm: math.floor(size / crop_pct)
    return {"geometry": geometry, "mean": tuple(cfg.get("mean", paper.IMAGENET_MEAN)),
            "std": tuple(cfg.get("std", paper.IMAGENET_STD))}


def resolve_protocol(protocol: str | None, base_rate: float | None, convention: str | None) -> tuple[float | None, str, str]:
    """(base rate, metric convention, source) of ``--protocol`` / ``--base-rate`` / ``--metrics``."""
    if protocol is None:
        source = ARGUMENT if base_rate is not None or convention is not None else DEFAULT
        return base_rate, check_convention(convention or paper.PAPER_CONVENTION), source
    if protocol not in PROTOCOLS:
        raise FgoodError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if base_rate is not None and base_rate != paper.PAPER_BASE_RATE:
        raise FgoodError(f"--protocol paper evaluates at ID:OOD = {paper.PAPER_BASE_RATE:g}:1 (Appendix C); --base-rate {base_rate:g} contradicts it")
    if convention is not None and convention != paper.PAPER_CONVENTION:
        raise FgoodError(f"--protocol paper uses the paper's metric convention (Appendix C); --metrics {convention} contradicts it")
    return paper.PAPER_BASE_RATE, paper.PAPER_CONVENTION, "protocol paper (Appendix C)"


@dataclass(frozen=True)
class Requested:
    """What the user asked for; None everywhere it did not say. The command line and the Python API
    fill the same fields, so both resolve to the same :class:`Settings`."""

    image_size: int | None = None
    resize_mode: str | None = None
    decode: str | None = None
    amp: bool | None = None
    protocol: str | None = None
    base_rate: float | None = None
    repeats: int | None = None
    metric_convention: str | None = None
    feature_layers: str | None = None
    odin_epsilon: float | None = None
    gram_orders: int | None = None


def resolve_settings(requested: Requested | None = None, *, checkpoint: Mapping[str, Any] | None = None,
                     checkpoint_name: str = "the checkpoint", model: Any = None,
                     benchmark: tuple[str, str] | None = None, warn: bool = True) -> Settings:
    """The one :class:`Settings` of an evaluation: ``requested`` values, then the ``checkpoint``'s
    record, then ``model``'s pretrained config, then the ``benchmark``'s (name, dataset) recipe."""
    requested = requested or Requested()
    sources: dict[str, str] = {}
    geometry, geometry_source, normalisation = _geometry(requested, checkpoint, checkpoint_name, model, benchmark, warn)
    sources["geometry"] = geometry_source
    mean, std = normalisation or (paper.IMAGENET_MEAN, paper.IMAGENET_STD)
    sources["mean"] = sources["std"] = MODEL_CONFIG if normalisation else "ImageNet's (torchvision weights; paper.py)"
    base_rate, convention, protocol_source = resolve_protocol(requested.protocol, requested.base_rate,
                                                              requested.metric_convention)
    sources["base_rate"] = sources["metric_convention"] = protocol_source
    if requested.decode is not None and requested.decode not in DECODES:
        raise FgoodError(f"decode {requested.decode!r}: choose from {', '.join(DECODES)}")
    paper_protocol = requested.protocol == "paper"
    layers = requested.feature_layers or (PAPER_FEATURE_LAYERS if paper_protocol else "stages")
    if paper_protocol and layers != PAPER_FEATURE_LAYERS:
        raise FgoodError(f"--protocol paper reads every residual block (Appendix D.2); --feature-layers {layers} "
                         "contradicts it")
    if layers not in FEATURE_LAYERS:
        raise FgoodError(f"--feature-layers {layers!r}: choose from {', '.join(FEATURE_LAYERS)}")
    chosen = {"decode": requested.decode, "amp": requested.amp, "repeats": requested.repeats, "feature_layers":
              requested.feature_layers, "odin_epsilon": requested.odin_epsilon, "gram_orders": requested.gram_orders}
    sources.update({name: ARGUMENT for name, value in chosen.items() if value is not None})
    if requested.feature_layers is None and paper_protocol:
        sources["feature_layers"] = "protocol paper (Appendix D.2: each residual block)"
    sources.setdefault("odin_epsilon", "paper Appendix D.2 (no perturbation)")
    sources.setdefault("gram_orders", "Sastry & Oore 2020")
    sources["odin_temperature"] = "paper Appendix D.3; Liang et al. 2018"
    sources["energy_temperature"] = "paper Appendix D.3; Liu et al. 2020"
    return Settings(
        geometry=geometry, mean=tuple(mean), std=tuple(std), decode=requested.decode or "full",
        amp=bool(requested.amp), base_rate=base_rate,
        repeats=requested.repeats if requested.repeats is not None else paper.PAPER_REPEATS,
        metric_convention=convention, feature_layers=layers, odin_temperature=paper.ODIN_TEMPERATURE,
        odin_epsilon=requested.odin_epsilon if requested.odin_epsilon is not None else paper.ODIN_EPSILON,
        energy_temperature=paper.ENERGY_TEMPERATURE,
        gram_orders=requested.gram_orders if requested.gram_orders is not None else paper.GRAM_ORDERS,
        sources=tuple(sorted(sources.items())),
    )


def _geometry(requested: Requested, checkpoint, checkpoint_name: str, model, benchmark, warn: bool):
    """(geometry, its source, the model config's (mean, std) or None)."""
    stored = checkpoint_geometry(checkpoint, checkpoint_name) if checkpoint else None
    config = model_config(model) if stored is None and model is not None else None
    recipe, recipe_words = benchmark_recipe(benchmark)
    normalisation = (config["mean"], config["std"]) if config else None
    if requested.image_size is None:
        if requested.resize_mode is not None:
            raise FgoodError("a resize mode needs an image size: give --image-size too")
        if stored is not None:
            return stored, CHECKPOINT, normalisation
        if config is not None:
            return config["geometry"], MODEL_CONFIG, normalisation
        return recipe_geometry(recipe), recipe_words, normalisation
    if stored is None:  # the recipe's resize ratio and rule at the size asked
        base = config["geometry"] if config else recipe_geometry(recipe)
        mode = requested.resize_mode or base.mode
        return replace(base, crop=requested.image_size, resize=round(requested.image_size * base.resize / base.crop),
                       mode=mode), ARGUMENT, normalisation
    if requested.image_size == stored.crop and requested.resize_mode in (None, stored.mode):
        return stored, CHECKPOINT, normalisation
    if warn:
        print(f"warning: {checkpoint_name} was trained at image size {stored.crop} ({stored.mode}); evaluating at "
              f"image size {requested.image_size} as asked, so the numbers are not those of the trained model's "
              "resolution", file=sys.stderr)
    resized = replace(stored, crop=requested.image_size, resize=round(requested.image_size * stored.resize / stored.crop),
                      mode=requested.resize_mode or stored.mode)
    return resized, ARGUMENT, normalisation
