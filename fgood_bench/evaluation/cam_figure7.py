"""``fgood-bench cam --layout figure7``: the paper's Figure 7 in one command (section 5.3).

A column per benchmark; for one ID image (id_test) and one OOD image (ood_test, the holdout
classes) of each, drawn with the seed, the image row, then a CAM row per model. The benchmarks, their
manifests, roots and one checkpoint per model come from a YAML spec (docs/evaluation.md); the maps are
:mod:`fgood_bench.evaluation.cam`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from fgood_bench import __version__
from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.cam import (
    CAM_FILES, CAM_RECORD, CAPTION_INCHES, DPI, PANEL_INCHES, CamRequest, caption, cam_overlay, choose_images,
    figure_files, images_for, load_models, model_cams, to_pixels,
)
from fgood_bench.inputs import cut, expand_user, read_yaml
from fgood_bench.manifests.image_sets import load_benchmark_manifest
from fgood_bench.outputs import clear_outputs, json_bytes, run_folder, sha256_file, write_files
from fgood_bench.tools.figures import PNG, FigureFormat
from fgood_bench.tools.runtime import setup_runtime

FIGURE7_KINDS = (("ID", "id_test"), ("OOD", "ood_test"))  # one image of each per benchmark (OOD: the holdout classes)
FIGURE7_KEYS = ("manifest", "root", "checkpoints")


@dataclass
class Figure7Request:
    """``cam --layout figure7``: the paper's Figure 7 from a YAML ``spec`` (docs/evaluation.md)."""

    spec: Path
    out: Path | None  # None: compute and draw, write nothing
    seed: int = 0  # the draw of each benchmark's ID and OOD image
    arch: str | None = None  # of bare state dicts
    device: str = "auto"
    figures: FigureFormat = PNG
    overwrite: bool = False


@dataclass
class Figure7Benchmark:
    name: str
    manifest: Path
    root: Path
    checkpoints: list[Path]  # one per model, in the order of the spec's first benchmark


def read_figure7_spec(path: Path) -> tuple[list[str], list[Figure7Benchmark]]:
    """The model labels and the benchmarks of a Figure 7 spec::

        benchmarks:
          NAME:                      # a column of the figure (e.g. Bird)
            manifest: PATH           # the benchmark's manifest (build-splits)
            root: PATH               # its dataset's folder
            checkpoints:             # one per model (a row each), the same labels for every benchmark
              LABEL: PATH

    Relative paths are read from the spec's folder; ``~`` is expanded. A bad key is one line naming
    the file and the key."""
    path = Path(path)
    document = read_yaml(path, "figure spec")

    def fail(key: str, what: str) -> FgoodError:
        return FgoodError(f"{path}: {key}: {what}")

    def mapping(value, key: str) -> dict:
        if not isinstance(value, dict) or not value:
            raise fail(key, f"expected a non-empty mapping, got {cut(value)}")
        for name in value:
            if not isinstance(name, str) or not name.strip() or len(name) > 80:
                raise fail(key, f"{cut(name)} is not a usable name (text of 1 to 80 characters)")
        return value

    def file(value, key: str) -> Path:
        if not isinstance(value, str) or not value or "\x00" in value or len(value) > 4096:
            raise fail(key, f"expected a path, got {cut(value)}")
        try:
            resolved = path.parent / expand_user(value)
        except FgoodError as err:
            raise fail(key, str(err)) from None
        if not resolved.exists():
            raise fail(key, f"{resolved} does not exist")
        return resolved

    if not isinstance(document, dict):
        raise FgoodError(f"{path}: expected a mapping with the key benchmarks, got {cut(document)}")
    unknown = [k for k in document if k != "benchmarks"]
    if unknown:
        name = unknown[0] if isinstance(unknown[0], str) and len(unknown[0]) <= 80 else cut(unknown[0])
        raise fail(name, "unknown key (expected benchmarks)")
    if "benchmarks" not in document:
        raise fail("benchmarks", "missing (a mapping of benchmark name -> manifest, root, checkpoints)")
    labels, benchmarks = None, []
    for name, entry in mapping(document["benchmarks"], "benchmarks").items():
        key = f"benchmarks.{name}"
        entry = mapping(entry, key)
        for item in entry:
            if item not in FIGURE7_KEYS:
                raise fail(f"{key}.{item}", f"unknown key (expected one of {', '.join(FIGURE7_KEYS)})")
        for item in FIGURE7_KEYS:
            if item not in entry:
                raise fail(f"{key}.{item}", "missing")
        checkpoints = mapping(entry["checkpoints"], f"{key}.checkpoints")
        if labels is None:
            labels = list(checkpoints)
        elif set(checkpoints) != set(labels):
            raise fail(f"{key}.checkpoints", f"names the models {', '.join(checkpoints)}; every benchmark "
                       f"names the same ones ({', '.join(labels)})")
        benchmarks.append(Figure7Benchmark(
            name, file(entry["manifest"], f"{key}.manifest"), file(entry["root"], f"{key}.root"),
            [file(checkpoints[label], f"{key}.checkpoints.{label}") for label in labels]))
    return labels, benchmarks


def figure7_figure(columns: list[dict], labels: list[str], title: str = ""):
    """Figure 7: a column per benchmark (``columns``: dicts of ``name`` and, per kind ID / OOD, the
    ``image`` (H, W, 3), its ``caption`` and one ``panel`` per model: (image, map, caption)); rows: for
    each kind, the image, then a CAM per model (``labels``). Returns the figure: 2 (1 + models) x benchmarks axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row_names = [name for kind, _ in FIGURE7_KINDS
                 for name in (f"{kind} image" if kind == "ID" else f"{kind} image (holdout)", *(f"{kind}: {m}" for m in labels))]
    rows, cols = len(row_names), len(columns)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * PANEL_INCHES + 0.4, rows * (PANEL_INCHES + CAPTION_INCHES) + 0.3),
                             dpi=DPI, squeeze=False, layout="constrained")
    for col, column in enumerate(columns):
        panels = []
        for kind, _ in FIGURE7_KINDS:
            shown = column[kind]
            panels += [(shown["image"], None, shown["caption"]), *shown["panels"]]
        for row, (image, heat, text) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(image if heat is None else cam_overlay(image, heat), interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(text, fontsize=8)
        axes[0, col].set_title(column["name"], fontsize=10)
    for ax, name in zip(axes[:, 0], row_names):
        ax.set_ylabel(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def render_figure7(request: Figure7Request) -> tuple[dict, object]:
    """Figure 7 of the paper in one figure: per benchmark of the spec one ID image (id_test) and one
    OOD image (ood_test, the holdout classes) drawn with ``seed``, under each model's CAM. Writes
    OUT/cam.* and OUT/cam.json (unless ``out`` is None). Returns the record and the figure."""
    labels, benchmarks = read_figure7_spec(request.spec)
    loaded = []  # everything checked before anything is computed or written
    for entry in benchmarks:
        benchmark = load_benchmark_manifest(entry.manifest, f"cam (--spec {request.spec}: benchmarks.{entry.name}.manifest)")
        root = benchmark.dataset_root(entry.root)
        images = {}
        for kind, split in FIGURE7_KINDS:
            rows = benchmark.split(split)
            if not rows.paths:
                raise FgoodError(f"{request.spec}: benchmarks.{entry.name}: {benchmark.path} has no {split} image")
            i = choose_images(len(rows.paths), 1, request.seed, f"{benchmark.name} {split}")[0]
            images[kind] = {"split": split, "path": rows.paths[i], "label": rows.labels[i], "class": rows.class_names[i]}
        check_inside_root(root, [image["path"] for image in images.values()])
        loaded.append((entry, benchmark, root, images))
    if request.out is None:
        return _render_figure7(request, labels, loaded)
    with run_folder(Path(request.out), "cam", reuse=request.overwrite, owned=CAM_FILES):
        return _render_figure7(request, labels, loaded)


def _render_figure7(request: Figure7Request, labels: list[str], loaded: list) -> tuple[dict, object]:
    runtime = setup_runtime(request.device)
    columns, records = [], []
    for entry, benchmark, root, images in loaded:
        models = load_models(CamRequest(checkpoints=entry.checkpoints, manifest=entry.manifest, root=entry.root, out=None,
                                        labels=labels, arch=request.arch), benchmark)
        paths = [images[kind]["path"] for kind, _ in FIGURE7_KINDS]
        column = {"name": entry.name, **{kind: {"image": None, "caption": caption(images[kind]["class"]), "panels": []}
                                         for kind, _ in FIGURE7_KINDS}}
        model_records = []
        for cam_model in models:
            pixels = images_for(root, paths, cam_model.settings)
            result = model_cams(cam_model, pixels, runtime.device)
            shown_pixels = to_pixels(pixels)  # once per model, not per panel
            predictions = {}
            for k, (kind, _) in enumerate(FIGURE7_KINDS):
                c, p = result["predicted"][k], result["confidence"][k]
                predictions[kind] = {"class": benchmark.id_class_names[c], "label": c, "confidence": p}
                shown = column[kind]
                shown["image"] = shown_pixels[k] if shown["image"] is None else shown["image"]
                shown["panels"].append((shown_pixels[k], result["maps"][k], f"{caption(predictions[kind]['class'])}\n{p:.2f}"))
            model_records.append({"label": cam_model.label, "checkpoint": str(cam_model.checkpoint),
                                  "checkpoint_sha256": sha256_file(cam_model.checkpoint),
                                  "method": cam_model.payload.get("method"),
                                  "arch": cam_model.payload.get("arch", request.arch),
                                  "geometry": asdict(cam_model.geometry), "predictions": predictions})
        del models
        columns.append(column)
        records.append({"name": entry.name, "benchmark": benchmark.name, "manifest_sha256": sha256_file(benchmark.path),
                        "images": images, "models": model_records})
    fig = figure7_figure(columns, labels, title="Class activation maps of the predicted class on ID and holdout OOD images")
    record = {
        "toolkit": f"fgood-bench {__version__}",
        "layout": "figure7",
        "cam": CAM_RECORD,
        "spec": str(request.spec), "spec_sha256": sha256_file(request.spec), "seed": request.seed,
        "figure": {"rows": 2 * (1 + len(labels)), "columns": len(columns),
                   "row_labels": [ax.get_ylabel() for ax in fig.axes[::len(columns)]],
                   "column_labels": [column["name"] for column in columns],
                   "files": [*request.figures.names("cam"), "cam.json"]},
        "models": labels,
        "benchmarks": records,
    }
    if request.out is None:
        return record, fig
    out = Path(request.out)
    files = figure_files(fig, request.figures)
    files["cam.json"] = json_bytes(record)
    clear_outputs(out, CAM_FILES)
    write_files(out, files)
    return record, fig
