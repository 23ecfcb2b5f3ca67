"""``fgood-bench cam``: class activation maps of several classifiers on the same images (paper
section 5.3, Figures 7 and 11).

The paper compares where the Standard, OE and MixupOE models look, with Class Activation Mapping
(Zhou et al. 2016, "Learning Deep Features for Discriminative Localization", its reference [44])
"computed w.r.t. the predicted class", on ID and holdout OOD images. For a network that ends in
global average pooling and a linear head, the logit of class c is

    S_c = sum_k w_{c,k} * mean_{x,y} f_k(x, y) + b_c,

with f_k the k-th channel of the last convolutional feature map; the class activation map
M_c(x, y) = sum_k w_{c,k} f_k(x, y) (Zhou et al., section 2) is the spatial layout of that sum
(its mean plus b_c is the logit). The torchvision ResNets the trainer builds have this form
(``layer4`` -> ``avgpool`` -> ``fc``); other architectures are refused (no Grad-CAM fallback).

For display each map is min-max normalised to [0, 1] and upsampled bilinearly to the model's
input crop (as Zhou et al.'s code, zhoubolei/CAM ``pytorch_CAM.py``), then drawn over the image
with the jet colour map of their figures, blended as their code does (heat map * 0.3 + image * 0.5).

``render_cams`` draws one split of one benchmark: a row per image, the image then a column per
model. :mod:`fgood_bench.evaluation.cam_figure7` draws Figure 7's layout from the same maps.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from fgood_bench import __version__
from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.plots import METHOD_NAMES
from fgood_bench.manifests.image_sets import load_benchmark_manifest
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.outputs import clear_outputs, json_bytes, run_folder, sha256_file, write_files
from fgood_bench.tools.figures import PNG, FigureFormat, every_format, render_figure
from fgood_bench.tools.images import DeviceBatch, Geometry, load_image
from fgood_bench.tools.models import load_checked_classifier
from fgood_bench.tools.precision import strict_float32
from fgood_bench.tools.runtime import setup_runtime
from fgood_bench.tools.settings import Settings, resolve_settings

CAM_FILES = (*every_format("cam"), "cam.json")  # cam.json last: written when the figure is
SPLIT_ALIASES = {"holdout": "ood_test"}  # evaluate's name for the benchmark's ood_test split
# One row per image: beyond this the figure is unreadable (and Agg refuses images over 65,536
# pixels, near 250 rows); draw several figures with other seeds instead.
MAX_IMAGES = 100
PANEL_INCHES, CAPTION_INCHES, DPI = 2.0, 0.45, 100
BATCH = 16


@dataclass
class CamRequest:
    checkpoints: list[Path]
    manifest: Path
    root: Path
    out: Path | None  # None: compute and draw, write nothing
    split: str = "id_test"  # a split of the manifest (holdout = ood_test)
    num: int = 8
    seed: int = 0
    labels: list[str] = field(default_factory=list)  # column names (default: each checkpoint's method / folder)
    arch: str | None = None  # of a bare state dict; a fgood-bench checkpoint names its own
    device: str = "auto"
    pdf: bool = False  # also cam.pdf: the figure as PNG and PDF (besides ``figures``' formats)
    overwrite: bool = False
    figures: FigureFormat = PNG  # the figure's formats and dpi (default: PNG at 100 dpi)


def figure_format_of(figures: FigureFormat, pdf: bool) -> FigureFormat:
    """``figures`` with PNG and PDF added when ``pdf`` (``--pdf``, an alias of ``--figure-format png,pdf``)."""
    return FigureFormat((*figures.formats, "png", "pdf"), figures.dpi) if pdf else figures


@dataclass
class CamModel:
    label: str
    checkpoint: Path
    model: nn.Module
    payload: dict
    settings: Settings

    @property
    def geometry(self) -> Geometry:
        return self.settings.geometry


# ------------------------------------------------------------------------------- computation
def cam_layers(model: nn.Module, what: str = "the model") -> tuple[nn.Module, nn.Linear]:
    """The global pooling whose input is the last feature map, and the linear class head.

    Only torchvision ResNets (ResNet, ResNeXt, Wide ResNet: ``layer4`` -> ``avgpool`` -> ``fc``) and timm
    CNNs whose head is global average pooling then one linear layer (timm's ``global_pool`` and
    ``get_classifier()``: ResNets, EfficientNets, RegNets, ...) are accepted: other models put more than
    a pooling between their feature map and their head (ConvNeXt's norm), or give tokens (ViTs)."""
    from fgood_bench.evaluation.forward import gives_tokens, model_name, timm_feature_info

    if timm_feature_info(model) is not None:  # a timm model: timm is there
        from timm.layers import ClassifierHead, SelectAdaptivePool2d

        refusal = f"{what}: class activation maps need a CNN whose head is global average pooling then one linear layer; "
        if gives_tokens(model):
            raise FgoodError(refusal + f"{model_name(model)} gives tokens")
        head = getattr(model, "head", None)
        pool = getattr(head if isinstance(head, ClassifierHead) else model, "global_pool", None)
        classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
        if not isinstance(pool, SelectAdaptivePool2d) or not isinstance(pool.pool, nn.AdaptiveAvgPool2d):
            kind = type(head).__name__ if isinstance(head, nn.Module) else "its head"
            raise FgoodError(refusal + f"{model_name(model)} has more than an average pooling before its classifier ({kind})")
        if not isinstance(classifier, nn.Linear):
            raise FgoodError(refusal + f"{model_name(model)}'s classifier is a {type(classifier).__name__}")
        if isinstance(getattr(model, "conv_head", None), nn.Module):  # MobileNetV3, GhostNet, ...: pool, conv, classifier
            raise FgoodError(refusal + f"{model_name(model)} has a convolution (conv_head) between its pooling and its classifier")
        return pool, classifier
    pool, head = getattr(model, "avgpool", None), getattr(model, "fc", None)
    if (not isinstance(model, torchvision.models.ResNet) or not isinstance(pool, nn.AdaptiveAvgPool2d)
            or pool.output_size not in (1, (1, 1)) or not isinstance(head, nn.Linear)):
        raise FgoodError(f"{what}: class activation maps need a torchvision ResNet or a timm CNN (global average pooling "
                         f"and a linear head), not {type(model).__name__}; Grad-CAM for other architectures is not implemented")
    return pool, head


def class_activation_maps(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """CAMs (B, h, w) at the feature map's resolution for the ``target`` classes (default: the
    predicted ones), and the logits (B, K), from one forward pass in float32."""
    pool, head = cam_layers(model)
    captured = {}
    hook = pool.register_forward_hook(lambda module, args, output: captured.__setitem__("features", args[0]))
    try:
        with torch.inference_mode():
            logits = model(inputs).float()
    finally:
        hook.remove()
    target = logits.argmax(dim=1) if target is None else target
    with torch.inference_mode():
        if captured["features"].shape[1] != head.in_features:  # more than a pooling between map and head
            raise FgoodError(f"class activation maps need the last feature map to feed the classifier: "
                             f"{captured['features'].shape[1]} channels, the classifier takes {head.in_features}")
        cams = torch.einsum("bk,bkhw->bhw", head.weight[target].float(), captured["features"].float())
    return cams, logits


def saliency(cams: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """CAMs (B, h, w) min-max normalised to [0, 1] per map, then upsampled bilinearly to ``size``, in
    the order of Zhou et al.'s ``returnCAM`` (zhoubolei/CAM, pytorch_CAM.py). A constant map (a 1 x 1
    feature map, or spread below float32 rounding) is all 0."""
    cams = cams.double()
    low = cams.amin(dim=(1, 2), keepdim=True)
    span = cams.amax(dim=(1, 2), keepdim=True) - low
    flat = span <= 1e-6 * cams.abs().amax(dim=(1, 2), keepdim=True)
    normalised = torch.where(flat, torch.zeros_like(cams), (cams - low) / torch.where(flat, torch.ones_like(span), span))
    maps = F.interpolate(normalised[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    return maps.clamp(0.0, 1.0)


def choose_images(count: int, num: int, seed: int, split: str = "the split") -> list[int]:
    """``num`` distinct row indices of ``count``, drawn from ``seed``, in the split's order."""
    if num > count:
        raise FgoodError(f"--num {num}: {split} has only {count} images")
    if num > MAX_IMAGES:
        raise FgoodError(f"--num {num}: at most {MAX_IMAGES} images (one row each) per figure; draw several with other --seed")
    return sorted(np.random.default_rng(seed).choice(count, size=num, replace=False).tolist())


def resolve_split(manifest: Manifest, split: str) -> str:
    name = SPLIT_ALIASES.get(split, split)
    if name not in manifest.split_names:
        raise FgoodError(f"--split {split!r}: {manifest.path} has the splits {', '.join(manifest.split_names)} "
                         "(holdout = ood_test)")
    return name


def model_labels(checkpoints: list[Path], payloads: list[dict], labels: list[str]) -> list[str]:
    """Column names: ``labels`` if given, else the method in the paper's spelling (the folder's name
    for a checkpoint without one), with the folder added where two would read the same."""
    if labels:
        if len(labels) != len(checkpoints):
            raise FgoodError(f"--label given {len(labels)} times for {len(checkpoints)} --checkpoint: give one per checkpoint, or none")
        return list(labels)
    folders = [Path(c).expanduser().resolve().parent.name for c in checkpoints]
    names = [METHOD_NAMES.get(p.get("method"), p.get("method")) or folder for p, folder in zip(payloads, folders)]
    return [f"{name}, {folder}" if names.count(name) > 1 and name != folder else name for name, folder in zip(names, folders)]


def load_models(request: CamRequest, benchmark: Manifest) -> list[CamModel]:
    models, payloads = [], []
    for path in request.checkpoints:
        model, payload, arch = load_checked_classifier(path, benchmark.id_class_names, "the benchmark's ID classes",
                                                       request.arch)
        cam_layers(model, f"{path} ({arch})")
        settings = resolve_settings(checkpoint=payload, checkpoint_name=str(path), benchmark=(benchmark.name, benchmark.dataset))
        models.append(CamModel("", Path(path), model.eval(), payload, settings))
        payloads.append(payload)
    for model, label in zip(models, model_labels(request.checkpoints, payloads, request.labels)):
        model.label = label
    return models


def images_for(root: Path, paths: list[str], settings: Settings) -> torch.Tensor:
    """uint8 (N, 3, crop, crop): the evaluation transform's decoding, resize and centre crop."""
    reduced = settings.decode == "reduced"
    return torch.stack([load_image(root / path, settings.geometry, reduced_decode=reduced) for path in paths])


def model_cams(cam_model: CamModel, images: torch.Tensor, device: torch.device) -> dict:
    """Per image: the normalised saliency map at the crop size, the predicted class and its softmax."""
    model = cam_model.model.to(device)
    to_input = DeviceBatch(device, mean=cam_model.settings.mean, std=cam_model.settings.std)
    maps, predicted, confidence = [], [], []
    for start in range(0, len(images), BATCH):
        with strict_float32():  # TF32 off, as in every scoring pass
            cams, logits = class_activation_maps(model, to_input(images[start:start + BATCH]))
        maps.append(saliency(cams, tuple(images.shape[-2:])).cpu())
        probabilities = torch.softmax(logits.double(), dim=1)
        best = probabilities.max(dim=1)
        predicted.append(best.indices.cpu())
        confidence.append(best.values.cpu())
    return {"maps": torch.cat(maps).numpy(), "predicted": torch.cat(predicted).tolist(),
            "confidence": torch.cat(confidence).tolist()}


# ------------------------------------------------------------------------------------ figure
def caption(text: str, width: int = 24) -> str:
    """At most two lines of ``width`` characters (long class names are shortened with …)."""
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > 2:
        lines = [lines[0], lines[1][:width - 1] + "…"]
    return "\n".join(lines)


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, 3, H, W) -> (N, H, W, 3) for imshow."""
    return images.permute(0, 2, 3, 1).numpy()


HEAT_WEIGHT, IMAGE_WEIGHT = 0.3, 0.5  # Zhou et al. 2016's CAM code: heatmap * 0.3 + image * 0.5


def cam_overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3): the saliency map in the jet colour map blended over the image as Zhou et al.'s
    CAM code draws it (``heatmap * 0.3 + img * 0.5``, clipped to the pixel range)."""
    from matplotlib import colormaps

    colours = colormaps["jet"](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    return np.clip(HEAT_WEIGHT * colours + IMAGE_WEIGHT * image.astype(np.float64), 0, 255).round().astype(np.uint8)


def cam_figure(images: np.ndarray, image_captions: list[str], columns: list[dict], title: str = "",
               image_title: str = "image"):
    """One row per image, the image then one panel per model (``columns``: dicts of ``label``,
    ``images`` (N, H, W, 3), ``maps`` (N, H, W) in [0, 1] and ``captions``); each panel's caption
    below it. Returns the matplotlib figure: rows x (1 + models) axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(images), 1 + len(columns)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * PANEL_INCHES, rows * (PANEL_INCHES + CAPTION_INCHES) + 0.3),
                             dpi=DPI, squeeze=False, layout="constrained")
    for row in range(rows):
        panels = [(images[row], None, image_captions[row])]
        panels += [(column["images"][row], column["maps"][row], column["captions"][row]) for column in columns]
        for ax, (image, heat, caption) in zip(axes[row], panels):
            ax.imshow(image if heat is None else cam_overlay(image, heat), interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(caption, fontsize=8)
    for ax, name in zip(axes[0], [image_title, *(column["label"] for column in columns)]):
        ax.set_title(name, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def figure_files(fig, figures: FigureFormat = PNG) -> dict[str, bytes]:
    """``cam.KIND`` -> the figure's bytes in each of ``figures``' formats, the same bytes on every run
    (tools/figures.py); closes the figure."""
    return render_figure(fig, "cam", figures)


# ------------------------------------------------------------------------------------ command
CAM_RECORD = {"saliency": "CAM (Zhou et al. 2016): sum_k w[c,k] f_k(x,y), f = the last feature map (layer4), "
                          "w = the fc weights of the predicted class c",
              "display": "min-max normalised to [0, 1] per map, then bilinear upsampling to the input crop",
              "confidence": "softmax probability of the predicted class"}


def render_cams(request: CamRequest) -> tuple[dict, object]:
    """Compute every model's CAMs on the chosen images, draw the figure, write it (unless ``out`` is
    None). Returns the record written as ``cam.json`` and the figure (closed once written)."""
    if not request.checkpoints:
        raise FgoodError("cam needs at least one --checkpoint")
    benchmark = load_benchmark_manifest(request.manifest, "cam")
    split = resolve_split(benchmark, request.split)
    rows = benchmark.split(split)
    root = benchmark.dataset_root(request.root)
    chosen = choose_images(len(rows.paths), request.num, request.seed, f"{benchmark.name} {split}")
    paths = [rows.paths[i] for i in chosen]
    check_inside_root(root, paths)
    models = load_models(request, benchmark)
    images = [{"path": rows.paths[i], "label": rows.labels[i], "class": rows.class_names[i]} for i in chosen]
    if request.out is None:
        return _render(request, benchmark, split, root, images, models)
    with run_folder(Path(request.out), "cam", reuse=request.overwrite, owned=CAM_FILES):
        return _render(request, benchmark, split, root, images, models)


def _render(request: CamRequest, benchmark: Manifest, split: str, root: Path, images: list[dict],
            models: list[CamModel]) -> tuple[dict, object]:
    classes = benchmark.id_class_names
    runtime = setup_runtime(request.device)
    paths = [image["path"] for image in images]
    columns, records, first_images = [], [], None
    for cam_model in models:
        pixels = images_for(root, paths, cam_model.settings)
        first_images = pixels if first_images is None else first_images
        result = model_cams(cam_model, pixels, runtime.device)
        predictions = [{"class": classes[c], "label": c, "confidence": p} for c, p in zip(result["predicted"], result["confidence"])]
        columns.append({"label": cam_model.label, "images": to_pixels(pixels), "maps": result["maps"],
                        "captions": [f"{caption(p['class'])}\n{p['confidence']:.2f}" for p in predictions]})
        records.append({"label": cam_model.label, "checkpoint": str(cam_model.checkpoint),
                        "checkpoint_sha256": sha256_file(cam_model.checkpoint),
                        "method": cam_model.payload.get("method"), "arch": cam_model.payload.get("arch", request.arch),
                        "geometry": asdict(cam_model.geometry), "predictions": predictions})
    shown = "holdout" if split == "ood_test" else split
    fig = cam_figure(to_pixels(first_images), [caption(image["class"]) for image in images], columns,
                     title=f"{benchmark.name}, {split}: class activation maps of the predicted class",
                     image_title=f"image ({shown})")
    figures = figure_format_of(request.figures, request.pdf)
    record = {
        "toolkit": f"fgood-bench {__version__}",
        "cam": CAM_RECORD,
        "benchmark": {"name": benchmark.name, "manifest_sha256": sha256_file(benchmark.path)},
        "split": split, "num": request.num, "seed": request.seed,
        "figure": {"rows": len(images), "columns": 1 + len(models),
                   "files": [*figures.names("cam"), "cam.json"]},
        "images": images,
        "models": records,
    }
    if request.out is None:
        return record, fig
    out = Path(request.out)
    files = figure_files(fig, figures)
    files["cam.json"] = json_bytes(record)
    clear_outputs(out, CAM_FILES)  # a PDF of an earlier run must not stay beside a new PNG
    write_files(out, files)
    return record, fig
